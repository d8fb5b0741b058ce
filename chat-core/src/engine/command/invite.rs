//! `invite`: add a user to a room. Any member may invite to a public room; only owners
//! to a private one.

use super::{Audience, Ctx, Event, Reply, Skip};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::model::{ConversationKind, Role, Visibility};

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    user: UserId,
) -> Result<Reply> {
    let conv = ctx.member_of(conversation).await?;
    match &conv.kind {
        ConversationKind::Direct { .. } => {
            return Err(Error::invalid(
                "nobody can be invited to a direct conversation",
            ))
        }
        ConversationKind::Room {
            visibility: Visibility::Private,
            ..
        } => {
            let me = ctx.store().member(conversation, ctx.user).await?;
            if me.map(|m| m.role) != Some(Role::Owner) {
                return Err(Error::forbidden("only owners invite to a private room"));
            }
        }
        ConversationKind::Room { .. } => {}
    }
    if let Some(f) = ctx.store().friendship(ctx.user, &user).await? {
        if f.blocks(&user) {
            return Err(Error::forbidden("this user cannot be invited by you"));
        }
    }
    let (member, added) = ctx
        .store()
        .add_member(
            conversation,
            &user,
            Role::Member,
            ctx.now(),
            ctx.limits().max_room_members,
        )
        .await?;
    if !added {
        return Err(Error::conflict(format!("{user} is already a member")));
    }
    ctx.follow(&user, conversation).await;
    ctx.publish(
        Audience::User { user: user.clone() },
        Skip::Nobody,
        Event::ConversationAdded {
            conversation: conv.clone(),
        },
    )
    .await;
    ctx.publish(
        Audience::Conversation { conversation },
        ctx.skip_me(),
        Event::MemberJoined {
            conversation,
            user,
            role: member.role,
        },
    )
    .await;
    Ok(Reply::Room {
        conversation: conv,
        joined: false,
    })
}
