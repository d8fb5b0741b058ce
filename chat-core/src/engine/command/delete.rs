//! `delete`: turn one's own message into a tombstone (its seq stays taken).

use super::edit::own_message;
use super::{Audience, Ctx, Event, Reply};
use crate::error::Result;
use crate::ids::{ConversationId, Seq};

pub(crate) async fn run(ctx: &Ctx<'_>, conversation: ConversationId, seq: Seq) -> Result<Reply> {
    let original = own_message(ctx, conversation, seq).await?;
    let message = ctx
        .store()
        .delete_message(conversation, seq, ctx.now())
        .await?;
    if !original.is_deleted() {
        ctx.publish(
            Audience::Conversation { conversation },
            ctx.skip_me(),
            Event::MessageDeleted {
                message: message.clone(),
            },
        )
        .await;
    }
    Ok(Reply::Message { message })
}
