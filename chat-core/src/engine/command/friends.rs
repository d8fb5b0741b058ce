//! `list_friends`: my friends, pending requests (both ways) and my blocks.

use super::{Ctx, Reply};
use crate::error::Result;
use crate::model::FriendStatus;

pub(crate) async fn run(ctx: &Ctx<'_>) -> Result<Reply> {
    let friends = ctx
        .friendships()
        .await?
        .iter()
        .map(|f| f.view_for(ctx.user))
        .filter(|v| v.status != FriendStatus::None)
        .collect();
    Ok(Reply::Friends { friends })
}
