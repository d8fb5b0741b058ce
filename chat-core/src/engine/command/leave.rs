//! `leave`: stop being a member of a room.

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::ConversationId;

pub(crate) async fn run(ctx: &Ctx<'_>, conversation: ConversationId) -> Result<Reply> {
    let conv = ctx.member_of(conversation).await?;
    if !conv.is_room() {
        return Err(Error::invalid("a direct conversation cannot be left"));
    }
    let inner = &ctx.engine.inner;
    if !inner.store.remove_member(conversation, ctx.user).await? {
        return Err(super::not_member(&conv));
    }
    inner.unsubscribe_user(ctx.user, conversation).await;
    let _ = inner
        .typing
        .lock()
        .stop(conversation, ctx.user, inner.clock.now());
    ctx.publish(
        Audience::Conversation { conversation },
        ctx.skip_me(),
        Event::MemberLeft {
            conversation,
            user: ctx.user.clone(),
        },
    )
    .await;
    ctx.publish(
        Audience::User {
            user: ctx.user.clone(),
        },
        ctx.skip_me(),
        Event::ConversationRemoved { conversation },
    )
    .await;
    Ok(Reply::Ok)
}
