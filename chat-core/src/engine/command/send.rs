//! `send`: append a message and fan it out after commit.

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::ConversationId;
use crate::model::{validate_body, validate_client_id, MessageKind, TypingChange};

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    body: String,
    client_id: Option<String>,
) -> Result<Reply> {
    validate_body(&body, ctx.limits().max_body_bytes)?;
    if let Some(id) = &client_id {
        validate_client_id(id)?;
    }
    let kind = ctx.member_kind(conversation).await?;
    if let Some(peer) = kind.peer_of(ctx.user) {
        let friendship = ctx.store().friendship(ctx.user, peer).await?;
        ctx.policy()
            .may_message_directly(ctx.user, peer, friendship.as_ref())?;
    }
    let message = ctx.new_message(conversation, MessageKind::User, body, client_id);
    let appended = ctx.append(message).await?;
    if appended.duplicate && appended.message.conversation != conversation {
        return Err(Error::conflict(
            "this client id was already used for a message in another conversation",
        ));
    }
    // A retry is fanned out again: the first attempt may have committed without its
    // fan-out (the ack was lost with the connection). Clients de-duplicate by seq.
    ctx.publish(
        Audience::Conversation { conversation },
        ctx.skip_me(),
        Event::Message {
            message: appended.message.clone(),
        },
    )
    .await;
    // Sending ends typing: the others are told right after the message.
    if ctx.set_typing(conversation, false) == TypingChange::Stopped {
        ctx.tell_typing(conversation, false).await;
    }
    Ok(Reply::Sent {
        message: appended.message,
        duplicate: appended.duplicate,
    })
}
