//! Friendships: one pair's record, applying an action to it, and a user's list.

use chat_core::model::{FriendAction, Friendship};
use chat_core::{Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::row::{self, map_err, ms};
use crate::sql;
use crate::writer::Ctx;

/// The record of the pair `(a, b)` (in `direct_pair` order), if any.
pub(super) fn load(conn: &Connection, a: &UserId, b: &UserId) -> CoreResult<Option<Friendship>> {
    conn.prepare_cached(sql::FRIENDSHIP)
        .and_then(|mut s| {
            s.query_row([a.as_str(), b.as_str()], row::friendship)
                .optional()
        })
        .map_err(map_err)
}

/// Applies `action` by `actor` to the pair's record (or an empty one) and saves the
/// result; an empty result deletes the row. `at` is already truncated to milliseconds.
pub(super) fn apply(
    ctx: &mut Ctx<'_>,
    (a, b): (UserId, UserId),
    actor: &UserId,
    action: FriendAction,
    at: DateTime<Utc>,
) -> CoreResult<Friendship> {
    let current = match load(ctx.conn, &a, &b)? {
        Some(f) => f,
        None => Friendship::empty(&a, &b, at)?,
    };
    let next = current.apply(actor, action, at)?;
    if next.is_empty() {
        ctx.conn
            .prepare_cached(sql::DELETE_FRIENDSHIP)
            .and_then(|mut s| s.execute([a.as_str(), b.as_str()]))
            .map_err(map_err)?;
    } else {
        let (state, from) = row::friend_state(&next.state);
        ctx.conn
            .prepare_cached(sql::SAVE_FRIENDSHIP)
            .and_then(|mut s| {
                s.execute(params![
                    a.as_str(),
                    b.as_str(),
                    state,
                    from,
                    next.a_blocks_b,
                    next.b_blocks_a,
                    ms(next.updated_at)
                ])
            })
            .map_err(map_err)?;
    }
    Ok(next)
}

/// Every record involving `user`, ordered by the other user's id, at most `limit`.
/// `user`'s records whose other user sorts after `after` ("" for the first page),
/// ordered by the other user, at most `limit`.
pub(super) fn list(
    conn: &Connection,
    user: &UserId,
    after: &str,
    limit: u32,
) -> CoreResult<Vec<Friendship>> {
    conn.prepare_cached(sql::FRIENDSHIPS_OF)
        .and_then(|mut s| {
            let p = params![user.as_str(), after, i64::from(limit)];
            s.query_map(p, row::friendship)?.collect()
        })
        .map_err(map_err)
}

/// The friends (accepted) of each user, in the order of `users`, at most `limit` each:
/// one statement per user, all on this one connection.
pub(super) fn friends_of_many(
    conn: &Connection,
    users: &[UserId],
    limit: u32,
) -> CoreResult<Vec<Vec<UserId>>> {
    let mut stmt = conn.prepare_cached(sql::FRIENDS_OF).map_err(map_err)?;
    users
        .iter()
        .map(|user| {
            stmt.query_map(params![user.as_str(), i64::from(limit)], |r| {
                row::user_at(r, 0)
            })
            .and_then(|rows| rows.collect())
            .map_err(map_err)
        })
        .collect()
}
