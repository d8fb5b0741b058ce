//! Friendships: one pair's record, applying an action to it, and a user's list.

use chat_core::model::{FriendAction, Friendship};
use chat_core::{Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

use crate::error::map_pg;
use crate::rows::{self, limit_param, pg_time};
use crate::sql;

/// The record of the pair `(a, b)` (in `direct_pair` order), if any.
pub(super) async fn load(c: &Object, a: &UserId, b: &UserId) -> CoreResult<Option<Friendship>> {
    let stmt = c.prepare_cached(sql::FRIENDSHIP).await.map_err(map_pg)?;
    c.query_opt(&stmt, &[&a.as_str(), &b.as_str()])
        .await
        .map_err(map_pg)?
        .map(|r| rows::friendship(&r))
        .transpose()
}

/// Applies `action` by `actor` to the pair's record (or an empty one) and saves the
/// result, in one transaction under the pair's advisory lock; an empty result deletes
/// the row.
pub(super) async fn apply(
    c: &mut Object,
    (a, b): (UserId, UserId),
    actor: &UserId,
    other: &UserId,
    action: FriendAction,
    at: DateTime<Utc>,
) -> CoreResult<Friendship> {
    let tx = c.transaction().await.map_err(map_pg)?;
    let lock = tx
        .prepare_cached(sql::LOCK_FRIENDSHIP_PAIR)
        .await
        .map_err(map_pg)?;
    tx.execute(&lock, &[&a.as_str(), &b.as_str()])
        .await
        .map_err(map_pg)?;
    let find = tx.prepare_cached(sql::FRIENDSHIP).await.map_err(map_pg)?;
    let current = match tx
        .query_opt(&find, &[&a.as_str(), &b.as_str()])
        .await
        .map_err(map_pg)?
    {
        Some(row) => rows::friendship(&row)?,
        None => Friendship::empty(actor, other, at)?,
    };
    let next = current.apply(actor, action, at)?;
    if next.is_empty() {
        let delete = tx
            .prepare_cached(sql::DELETE_FRIENDSHIP)
            .await
            .map_err(map_pg)?;
        tx.execute(&delete, &[&a.as_str(), &b.as_str()])
            .await
            .map_err(map_pg)?;
    } else {
        let (state, from) = rows::friend_state(&next.state);
        let save = tx
            .prepare_cached(sql::SAVE_FRIENDSHIP)
            .await
            .map_err(map_pg)?;
        tx.execute(
            &save,
            &[
                &next.a.as_str(),
                &next.b.as_str(),
                &state,
                &from,
                &next.a_blocks_b,
                &next.b_blocks_a,
                &next.updated_at,
            ],
        )
        .await
        .map_err(map_pg)?;
    }
    tx.commit().await.map_err(map_pg)?;
    Ok(Friendship {
        updated_at: pg_time(next.updated_at),
        ..next
    })
}

/// Every record involving `user`, ordered by the other user's id, at most `limit`.
/// `user`'s records whose other user sorts after `after` ("" for the first page),
/// ordered by the other user, at most `limit`.
pub(super) async fn list(
    c: &Object,
    user: &UserId,
    after: &str,
    limit: u32,
) -> CoreResult<Vec<Friendship>> {
    let stmt = c
        .prepare_cached(sql::FRIENDSHIPS_OF)
        .await
        .map_err(map_pg)?;
    c.query(&stmt, &[&user.as_str(), &limit_param(limit), &after])
        .await
        .map_err(map_pg)?
        .iter()
        .map(rows::friendship)
        .collect()
}

/// The friends (accepted) of several users in one statement, in the order of `users`.
pub(super) async fn friends_of_many(
    c: &Object,
    users: &[UserId],
    limit: u32,
) -> CoreResult<Vec<Vec<UserId>>> {
    let stmt = c
        .prepare_cached(sql::FRIENDS_OF_MANY)
        .await
        .map_err(map_pg)?;
    super::per_user(c, &stmt, users, limit, |r| rows::user_id(r, "friend")).await
}
