//! `mark_delivered` and `mark_read`: move my watermarks forward; the other members get
//! a receipt when they moved.

use super::{Audience, Ctx, Event, Reply, Skip};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, Seq};

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    delivered: Option<Seq>,
    read: Option<Seq>,
) -> Result<Reply> {
    ctx.member_of(conversation).await?;
    let before = ctx
        .store()
        .member(conversation, ctx.user)
        .await?
        .ok_or_else(|| Error::not_found(format!("conversation {conversation}")))?
        .watermarks;
    let after = ctx
        .store()
        .advance_watermarks(conversation, ctx.user, delivered, read)
        .await?;
    if after != before {
        ctx.publish(
            Audience::Conversation { conversation },
            Skip::User {
                user: ctx.user.clone(),
            },
            Event::Receipt {
                conversation,
                user: ctx.user.clone(),
                delivered_seq: after.delivered_seq,
                read_seq: after.read_seq,
            },
        )
        .await;
    }
    Ok(Reply::Marks {
        conversation,
        watermarks: after,
    })
}
