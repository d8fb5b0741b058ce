//! `open_direct`: the direct conversation with a user, created on first use. Needs what
//! the policy asks (by default an accepted friendship and no block).

use super::{Audience, Ctx, Event, Reply, Skip};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::NewDirect;

pub(crate) async fn run(ctx: &Ctx<'_>, peer: UserId) -> Result<Reply> {
    if &peer == ctx.user {
        return Err(Error::invalid("a direct conversation needs another user"));
    }
    let friendship = ctx.store().friendship(ctx.user, &peer).await?;
    ctx.policy()
        .may_message_directly(ctx.user, &peer, friendship.as_ref())?;
    let (conversation, created) = ctx
        .store()
        .open_direct(NewDirect {
            id: ctx.new_conversation_id(),
            user: ctx.user.clone(),
            peer: peer.clone(),
            created_at: ctx.now(),
        })
        .await?;
    ctx.follow(ctx.user, conversation.id).await;
    ctx.follow(&peer, conversation.id).await;
    if created {
        for (user, skip) in [(peer, Skip::Nobody), (ctx.user.clone(), ctx.skip_me())] {
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
