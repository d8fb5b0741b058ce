//! `send`: append a message and fan it out after commit.

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, Seq};
use crate::model::{
    validate_attachments, validate_body, validate_client_id, Attachment, MessageKind, TypingChange,
};

/// What a `send` carries.
pub(crate) struct Input {
    pub(crate) conversation: ConversationId,
    pub(crate) body: String,
    pub(crate) client_id: Option<String>,
    pub(crate) reply_to: Option<Seq>,
    pub(crate) attachments: Vec<Attachment>,
}

pub(crate) async fn run(ctx: &Ctx<'_>, input: Input) -> Result<Reply> {
    let Input {
        conversation,
        body,
        client_id,
        reply_to,
        attachments,
    } = input;
    validate_attachments(&attachments, ctx.limits().max_attachments)?;
    if attachments.is_empty() || !body.is_empty() {
        validate_body(&body, ctx.limits().max_body_bytes)?;
    }
    if let Some(id) = &client_id {
        validate_client_id(id)?;
    }
    let kind = ctx.member_kind(conversation).await?;
    if let Some(peer) = kind.peer_of(ctx.user) {
        let friendship = ctx.store().friendship(ctx.user, peer).await?;
        ctx.policy()
            .may_message_directly(ctx.user, peer, friendship.as_ref())?;
    }
    // A reply names a message of this conversation that is not deleted; it joins the
    // thread of that message (its root is the first message of the chain).
    let thread = match reply_to {
        None => None,
        Some(seq) => {
            let parent = ctx
                .store()
                .message(conversation, seq)
                .await?
                .filter(|m| !m.is_deleted())
                .ok_or_else(|| Error::not_found(format!("message {seq}")))?;
            Some(parent.thread.unwrap_or(parent.seq))
        }
    };
    let mut message = ctx.new_message(conversation, MessageKind::User, body, client_id);
    message.reply_to = reply_to;
    message.thread = thread;
    message.attachments = attachments;
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
