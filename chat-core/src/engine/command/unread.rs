//! `unread_total`: my unread messages over every conversation.

use super::{Ctx, Reply};
use crate::error::Result;

pub(crate) async fn run(ctx: &Ctx<'_>) -> Result<Reply> {
    Ok(Reply::Unread {
        unread: ctx.store().unread_total(ctx.user).await?,
    })
}
