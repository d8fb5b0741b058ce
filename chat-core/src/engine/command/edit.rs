//! `edit`: change the body of one's own message.

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, Seq};
use crate::model::{validate_body, Message, MessageKind};

/// Loads a message the actor may change: their own user message.
pub(crate) async fn own_message(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    seq: Seq,
) -> Result<Message> {
    ctx.member_of(conversation).await?;
    let message = ctx
        .store()
        .message(conversation, seq)
        .await?
        .ok_or_else(|| Error::not_found(format!("message {seq}")))?;
    if &message.sender != ctx.user || message.kind != MessageKind::User {
        return Err(Error::forbidden("only the sender may change a message"));
    }
    Ok(message)
}

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    seq: Seq,
    body: String,
) -> Result<Reply> {
    validate_body(&body, ctx.limits().max_body_bytes)?;
    own_message(ctx, conversation, seq).await?;
    let message = ctx
        .store()
        .edit_message(conversation, seq, &body, ctx.now())
        .await?;
    ctx.publish(
        Audience::Conversation { conversation },
        ctx.skip_me(),
        Event::MessageEdited {
            message: message.clone(),
        },
    )
    .await;
    Ok(Reply::Message { message })
}
