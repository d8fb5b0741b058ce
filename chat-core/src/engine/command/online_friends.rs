//! `online_friends`: which of my friends are online on any node.

use super::{Ctx, Reply};
use crate::error::Result;

pub(crate) async fn run(ctx: &Ctx<'_>) -> Result<Reply> {
    let friends: Vec<_> = ctx
        .friendships()
        .await?
        .into_iter()
        .filter(|f| f.is_friends())
        .map(|f| f.other(ctx.user).clone())
        .collect();
    Ok(Reply::Online {
        users: ctx.online(&friends).await?,
    })
}
