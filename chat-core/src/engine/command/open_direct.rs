//! `open_direct`: the direct conversation with a user, created on first use. Needs what
//! the policy asks (by default an accepted friendship and no block).

use super::{Audience, Ctx, Event, Reply};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::NewDirect;

pub(crate) async fn run(ctx: &Ctx<'_>, peer: UserId) -> Result<Reply> {
    if &peer == ctx.user {
        return Err(Error::invalid("a direct conversation needs another user"));
    }
    let inner = &ctx.engine.inner;
    let friendship = inner.store.friendship(ctx.user, &peer).await?;
    inner
        .policy
        .may_message_directly(ctx.user, &peer, friendship.as_ref())?;
    let (conversation, created) = inner
        .store
        .open_direct(NewDirect {
            id: inner.ids.conversation_id(),
            user: ctx.user.clone(),
            peer: peer.clone(),
            created_at: inner.clock.now(),
        })
        .await?;
    inner.subscribe_user(ctx.user, conversation.id).await;
    inner.subscribe_user(&peer, conversation.id).await;
    if created {
        for (user, skip) in [
            (peer, crate::engine::Skip::Nobody),
            (ctx.user.clone(), ctx.skip_me()),
        ] {
            ctx.publish(
                Audience::User { user },
                skip,
                Event::ConversationAdded {
                    conversation: conversation.clone(),
                },
            )
            .await;
        }
    }
    Ok(Reply::Direct {
        conversation,
        created,
    })
}
