//! `leave`: stop being a member of a room.

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::ConversationId;

pub(crate) async fn run(ctx: &Ctx<'_>, conversation: ConversationId) -> Result<Reply> {
    let conv = ctx.member_of(conversation).await?;
    if !conv.is_room() {
        return Err(Error::invalid("a direct conversation cannot be left"));
    }
    if !ctx.store().remove_member(conversation, ctx.user).await? {
        return Err(super::not_member(&conv));
    }
    ctx.unfollow(ctx.user, conversation).await;
    ctx.set_typing(conversation, false);
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
