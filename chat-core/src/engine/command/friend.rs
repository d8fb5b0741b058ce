//! `friend_request`, `friend_accept`, `friend_decline`, `friend_cancel`,
//! `friend_remove`, `block`, `unblock`: one state machine
//! ([`Friendship::apply`](crate::model::Friendship::apply)), applied atomically by the
//! store. Both sides are told how things now stand from their side.

use super::{Audience, Ctx, Event, Reply, Skip};
use crate::error::Result;
use crate::ids::UserId;
use crate::model::{FriendAction, Presence};

pub(crate) async fn run(ctx: &Ctx<'_>, other: UserId, action: FriendAction) -> Result<Reply> {
    let friendship = ctx
        .store()
        .apply_friendship(ctx.user, &other, action, ctx.now())
        .await?;
    let mine = friendship.view_for(ctx.user);
    let theirs = friendship.view_for(&other);
    ctx.publish(
        Audience::User {
            user: ctx.user.clone(),
        },
        ctx.skip_me(),
        Event::Friend {
            friend: mine.clone(),
        },
    )
    .await;
    ctx.publish(
        Audience::User {
            user: other.clone(),
        },
        Skip::Nobody,
        Event::Friend { friend: theirs },
    )
    .await;
    if friendship.is_friends() {
        // New friends learn whether the other is online right away.
        let online = ctx
            .online(&[ctx.user.clone(), other.clone()])
            .await
            .unwrap_or_default();
        for (subject, to) in [(ctx.user, &other), (&other, ctx.user)] {
            if online.contains(subject) {
                ctx.publish(
                    Audience::User { user: to.clone() },
                    Skip::Nobody,
                    Event::Presence {
                        presence: Presence {
                            user: subject.clone(),
                            online: true,
                            last_seen: None,
                        },
                    },
                )
                .await;
            }
        }
    }
    Ok(Reply::Friend { friend: mine })
}
