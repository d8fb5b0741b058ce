//! `list_conversations`: mine, most recently active first, with unread counts.

use super::{Ctx, Reply};
use crate::error::Result;

pub(crate) async fn run(ctx: &Ctx<'_>, limit: Option<u32>) -> Result<Reply> {
    let limit = Ctx::page(limit, 50, ctx.limits().max_list_page)?;
    Ok(Reply::Conversations {
        conversations: ctx.store().list_conversations(ctx.user, limit).await?,
    })
}
