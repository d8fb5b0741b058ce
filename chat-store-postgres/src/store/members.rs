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
    let tx = c.transaction().await.map_err(map_pg)?;
    // Locking the conversation serializes concurrent joins, so the cap holds.
    let lock = tx
        .prepare_cached(sql::LOCK_CONVERSATION)
        .await
        .map_err(map_pg)?;
    if tx
        .query_opt(&lock, &[&conversation.0])
        .await
        .map_err(map_pg)?
        .is_none()
    {
        return Err(missing(conversation));
    }
    let find = tx.prepare_cached(sql::MEMBER).await.map_err(map_pg)?;
    if let Some(row) = tx
        .query_opt(&find, &[&conversation.0, &user.as_str()])
        .await
        .map_err(map_pg)?
    {
        return Ok((rows::member(&row)?, false));
    }
    let count = tx.prepare_cached(sql::MEMBER_COUNT).await.map_err(map_pg)?;
    let row = tx
        .query_one(&count, &[&conversation.0])
        .await
        .map_err(map_pg)?;
    if rows::count(&row, "members")? >= u64::from(max_members) {
        return Err(CoreError::conflict(format!(
            "the conversation has the maximum of {max_members} members"
        )));
    }
    let insert = tx
        .prepare_cached(sql::INSERT_MEMBER)
        .await
        .map_err(map_pg)?;
    tx.execute(
        &insert,
        &[&conversation.0, &user.as_str(), &role.as_str(), &joined_at],
    )
    .await
    .map_err(map_pg)?;
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
