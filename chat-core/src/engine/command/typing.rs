//! `typing`: a volatile lease; the others hear "started" once and "stopped" once.

use super::{Audience, Ctx, Event, Reply, Skip};
use crate::error::Result;
use crate::ids::ConversationId;
use crate::model::TypingChange;

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    typing: bool,
) -> Result<Reply> {
    let inner = &ctx.engine.inner;
    ctx.member_kind(conversation).await?;
    let now = inner.clock.now();
    let change = {
        let mut leases = inner.typing.lock();
        if typing {
            leases.start(conversation, ctx.user, now)
        } else {
            leases.stop(conversation, ctx.user, now)
        }
    };
    if matches!(change, TypingChange::Started | TypingChange::Stopped) {
        ctx.publish(
            Audience::Conversation { conversation },
            Skip::User {
                user: ctx.user.clone(),
            },
            Event::Typing {
                conversation,
                user: ctx.user.clone(),
                typing,
            },
        )
        .await;
    }
    Ok(Reply::Ok)
}
