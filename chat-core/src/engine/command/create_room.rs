//! `create_room`: a new room, its creator as owner.

use super::{Ctx, Reply};
use crate::error::Result;
use crate::model::{validate_room_name, NewRoom, Visibility};

pub(crate) async fn run(ctx: &Ctx<'_>, name: String, visibility: Visibility) -> Result<Reply> {
    validate_room_name(&name)?;
    let conversation = ctx
        .store()
        .create_room(NewRoom {
            id: ctx.new_conversation_id(),
            name,
            visibility,
            created_by: ctx.user.clone(),
            created_at: ctx.now(),
        })
        .await?;
    ctx.follow(ctx.user, conversation.id).await;
    ctx.publish(
        super::Audience::User {
            user: ctx.user.clone(),
        },
        ctx.skip_me(),
        super::Event::ConversationAdded {
            conversation: conversation.clone(),
        },
    )
    .await;
    Ok(Reply::Room {
        conversation,
        joined: true,
    })
}
