//! Members: joining and leaving, one membership, a conversation's members in pages, and
//! a user's conversations (their ids, and the summaries of the conversation list).

use chat_core::model::{Member, Role, Watermarks};
use chat_core::ports::ConversationSummary;
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::Row;

use super::conversations::{missing, require};
use crate::error::map_pg;
use crate::rows::{self, limit_param, pg_time};
use crate::sql::{self, list_col};

/// Adds a member unless they are one already (then returns them unchanged, with false).
/// `conflict` at `max_members`; `not_found` when the conversation does not exist.
pub(super) async fn add(
    c: &mut Object,
    conversation: ConversationId,
    user: &UserId,
    role: Role,
    joined_at: DateTime<Utc>,
    max_members: u32,
) -> CoreResult<(Member, bool)> {
    // READ COMMITTED whatever the connection's default: the statements below rely on
    // each taking its own snapshot after the lock is granted.
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(map_pg)?;
    let lock = tx
        .prepare_cached(sql::LOCK_CONVERSATION)
        .await
        .map_err(map_pg)?;
    let find = tx.prepare_cached(sql::MEMBER).await.map_err(map_pg)?;
    let insert = tx
        .prepare_cached(sql::INSERT_MEMBER_CAPPED)
        .await
        .map_err(map_pg)?;
    let cap = i64::from(max_members);
    // One round trip: the three statements are pipelined and run in order. Locking the
    // conversation serializes concurrent joins; the lookup and the capped insert run
    // after the lock is granted, each with a snapshot of its own (READ COMMITTED), so
    // they see every join committed before, and the cap holds. The lock is held for
    // this round trip and the commit only, not for one round trip per statement (a join
    // storm into one room queues on it).
    let user_str = user.as_str();
    let role_str = role.as_str();
    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&conversation.0];
    let find_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&conversation.0, &user_str];
    let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&conversation.0, &user_str, &role_str, &joined_at, &cap];
    let (locked, existing, inserted) = tokio::join!(
        tx.query_opt(&lock, &lock_params),
        tx.query_opt(&find, &find_params),
        tx.execute(&insert, &insert_params),
    );
    if locked.map_err(map_pg)?.is_none() {
        return Err(missing(conversation));
    }
    if let Some(row) = existing.map_err(map_pg)? {
        return Ok((rows::member(&row)?, false));
    }
    if inserted.map_err(map_pg)? == 0 {
        return Err(CoreError::conflict(format!(
            "the conversation has the maximum of {max_members} members"
        )));
    }
    tx.commit().await.map_err(map_pg)?;
    Ok((
        Member {
            conversation,
            user: user.clone(),
            role,
            watermarks: Watermarks::default(),
            joined_at: pg_time(joined_at),
        },
        true,
    ))
}

/// Removes a member; true when they were one. `not_found` when the conversation does not
/// exist.
pub(super) async fn remove(
    c: &Object,
    conversation: ConversationId,
    user: &UserId,
) -> CoreResult<bool> {
    let stmt = c.prepare_cached(sql::DELETE_MEMBER).await.map_err(map_pg)?;
    if c.execute(&stmt, &[&conversation.0, &user.as_str()])
        .await
        .map_err(map_pg)?
        > 0
    {
        return Ok(true);
    }
    require(c, conversation).await?;
    Ok(false)
}

/// One membership.
pub(super) async fn load(
    c: &Object,
    conversation: ConversationId,
    user: &UserId,
) -> CoreResult<Option<Member>> {
    let stmt = c.prepare_cached(sql::MEMBER).await.map_err(map_pg)?;
    c.query_opt(&stmt, &[&conversation.0, &user.as_str()])
        .await
        .map_err(map_pg)?
        .map(|r| rows::member(&r))
        .transpose()
}

/// Members by user id after `after` ("" for the first page), at most `limit`.
pub(super) async fn page(
    c: &Object,
    conversation: ConversationId,
    after: &str,
    limit: u32,
) -> CoreResult<Vec<Member>> {
    let stmt = c.prepare_cached(sql::MEMBERS_PAGE).await.map_err(map_pg)?;
    let found = c
        .query(&stmt, &[&conversation.0, &after, &limit_param(limit)])
        .await
        .map_err(map_pg)?
        .iter()
        .map(rows::member)
        .collect::<CoreResult<Vec<_>>>()?;
    if found.is_empty() {
        require(c, conversation).await?;
    }
    Ok(found)
}

/// The ids of every conversation the user is a member of.
pub(super) async fn conversations_of(
    c: &Object,
    user: &UserId,
    limit: u32,
) -> CoreResult<Vec<ConversationId>> {
    let stmt = c
        .prepare_cached(sql::CONVERSATIONS_OF)
        .await
        .map_err(map_pg)?;
    c.query(&stmt, &[&user.as_str(), &limit_param(limit)])
        .await
        .map_err(map_pg)?
        .iter()
        .map(|r| rows::conversation_id(r, "conversation"))
        .collect()
}

/// [`conversations_of`] for several users in one statement, in the order of `users`.
pub(super) async fn conversations_of_many(
    c: &Object,
    users: &[UserId],
    limit: u32,
) -> CoreResult<Vec<Vec<ConversationId>>> {
    let stmt = c
        .prepare_cached(sql::CONVERSATIONS_OF_MANY)
        .await
        .map_err(map_pg)?;
    super::per_user(c, &stmt, users, limit, |r| {
        rows::conversation_id(r, "conversation")
    })
    .await
}

/// The user's conversations, most recently active first, at most `limit`: one
/// statement, which orders and cuts the list itself.
pub(super) async fn list(
    c: &Object,
    user: &UserId,
    limit: u32,
) -> CoreResult<Vec<ConversationSummary>> {
    let stmt = c
        .prepare_cached(sql::LIST_CONVERSATIONS)
        .await
        .map_err(map_pg)?;
    c.query(&stmt, &[&user.as_str(), &limit_param(limit)])
        .await
        .map_err(map_pg)?
        .iter()
        .map(summary)
        .collect()
}

/// Reads one row of [`sql::LIST_CONVERSATIONS`].
fn summary(r: &Row) -> CoreResult<ConversationSummary> {
    let me = rows::member_at(r, list_col::MEMBER)?;
    Ok(ConversationSummary {
        conversation: rows::conversation_at(r, list_col::CONVERSATION)?,
        role: me.role,
        watermarks: me.watermarks,
        last_message: rows::message_at(r, list_col::LAST_MESSAGE)?,
        unread: rows::count(r, "unread")?,
    })
}
