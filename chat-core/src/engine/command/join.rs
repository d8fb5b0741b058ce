//! `join`: become a member of a room, by id or name (optionally creating it).

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::model::{validate_room_name, NewRoom, Role, RoomRef, Visibility};

pub(crate) async fn run(ctx: &Ctx<'_>, room: RoomRef, create: bool) -> Result<Reply> {
    // Missing, private and direct conversations all get this one answer, naming only what
    // the caller gave, so a join reveals nothing the caller may not know.
    let missing = || match &room {
        RoomRef::Name(name) => Error::not_found(format!("room {name:?}")),
        RoomRef::Id(id) => Error::not_found(format!("conversation {id}")),
    };
    let found = match &room {
        RoomRef::Id(id) => ctx.store().conversation(*id).await?,
        RoomRef::Name(name) => ctx.store().room_by_name(name).await?,
    };
    let conversation = match (found, &room) {
        (Some(c), _) => c,
        (None, RoomRef::Name(name)) if create => {
            validate_room_name(name)?;
            let created = ctx
                .store()
                .create_room(NewRoom {
                    id: ctx.new_conversation_id(),
                    name: name.clone(),
                    visibility: Visibility::Public,
                    created_by: ctx.user.clone(),
                    created_at: ctx.now(),
                })
                .await;
            match created {
                Ok(c) => {
                    ctx.follow(ctx.user, c.id).await;
                    return Ok(Reply::Room {
                        conversation: c,
                        joined: true,
                    });
                }
                // Someone created it first: join theirs.
                Err(e) if e.code() == crate::ErrorCode::Conflict => {
                    ctx.store().room_by_name(name).await?.ok_or_else(missing)?
                }
                Err(e) => return Err(e),
            }
        }
        (None, _) => return Err(missing()),
    };
    // A member joining again (every reconnect through a room URL) is answered from a
    // read, without `add_member`'s write path (on PostgreSQL, the room's row lock, which
    // sends to the room also take).
    if ctx
        .store()
        .member(conversation.id, ctx.user)
        .await?
        .is_some()
    {
        ctx.follow(ctx.user, conversation.id).await;
        return Ok(Reply::Room {
            conversation,
            joined: false,
        });
    }
    if let Err(denied) = ctx.policy().may_join(ctx.user, &conversation) {
        // A private room or a direct conversation the caller cannot join does not
        // reveal itself: the same answer as a missing one.
        return Err(match denied.code() {
            crate::ErrorCode::Forbidden => missing(),
            _ => denied,
        });
    }
    let (member, added) = ctx
        .store()
        .add_member(
            conversation.id,
            ctx.user,
            Role::Member,
            ctx.now(),
            ctx.limits().max_room_members,
        )
        .await?;
    ctx.follow(ctx.user, conversation.id).await;
    if added {
        ctx.publish(
            Audience::User {
                user: ctx.user.clone(),
            },
            ctx.skip_me(),
            Event::ConversationAdded {
                conversation: conversation.clone(),
            },
        )
        .await;
        ctx.publish(
            Audience::Conversation {
                conversation: conversation.id,
            },
            ctx.skip_me(),
            Event::MemberJoined {
                conversation: conversation.id,
                user: ctx.user.clone(),
                role: member.role,
            },
        )
        .await;
    }
    Ok(Reply::Room {
        conversation,
        joined: added,
    })
}
