//! `online_friends`: which of my friends are online on any node.

use super::{Ctx, Reply};
use crate::error::Result;

pub(crate) async fn run(ctx: &Ctx<'_>) -> Result<Reply> {
    let inner = &ctx.engine.inner;
    let friends: Vec<_> =
        super::all_friendships(&inner.store, ctx.user, inner.limits.max_list_page)
            .await?
            .into_iter()
            .filter(|f| f.is_friends())
            .map(|f| f.other(ctx.user).clone())
            .collect();
    Ok(Reply::Online {
        users: inner.bus.online(&friends).await?,
    })
}
