//! `send`: append a message and fan it out after commit.

use std::sync::atomic::Ordering;

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::ConversationId;
use crate::model::{
    validate_body, validate_client_id, ConversationKind, MessageKind, NewMessage, TypingChange,
};

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    body: String,
    client_id: Option<String>,
) -> Result<Reply> {
    let inner = &ctx.engine.inner;
    validate_body(&body, inner.limits.max_body_bytes)?;
    if let Some(id) = &client_id {
        validate_client_id(id)?;
    }
    let kind = ctx.member_kind(conversation).await?;
    if let ConversationKind::Direct { a, b } = &*kind {
        let peer = if a == ctx.user { b } else { a };
        let friendship = inner.store.friendship(ctx.user, peer).await?;
        inner
            .policy
            .may_message_directly(ctx.user, peer, friendship.as_ref())?;
    }
    let appended = inner
        .append(NewMessage {
            id: inner.ids.message_id(),
            conversation,
            sender: ctx.user.clone(),
            client_id,
            kind: MessageKind::User,
            body,
            created_at: inner.clock.now(),
        })
        .await?;
    if appended.duplicate && appended.message.conversation != conversation {
        return Err(Error::conflict(
            "this client id was already used for a message in another conversation",
        ));
    }
    if !appended.duplicate {
        inner.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
        // Sending ends typing; the others learn it from the message itself.
        if !inner.typing.lock().is_empty() {
            let _: TypingChange =
                inner
                    .typing
                    .lock()
                    .stop(conversation, ctx.user, inner.clock.now());
        }
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
    Ok(Reply::Sent {
        message: appended.message,
        duplicate: appended.duplicate,
    })
}
