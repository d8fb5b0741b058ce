//! `members`: who belongs to a conversation I belong to.

use super::{Ctx, Reply};
use crate::error::Result;
use crate::ids::{ConversationId, UserId};

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    after: Option<UserId>,
    limit: Option<u32>,
) -> Result<Reply> {
    let limit = Ctx::page(limit, 100, ctx.limits().max_list_page)?;
    ctx.member_of(conversation).await?;
    Ok(Reply::Members {
        members: ctx
            .store()
            .members(conversation, after.as_ref(), limit)
            .await?,
    })
}
