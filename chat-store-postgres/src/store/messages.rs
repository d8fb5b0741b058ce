//! Messages: history pages, one message, edits and tombstones. Appends go through the
//! batched writer (`crate::append`).

use chat_core::model::{HistoryPage, Message};
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, Seq};
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

use super::conversations::require;
use crate::error::map_pg;
use crate::rows::{self, limit_param, seq_param};
use crate::sql;

/// A page of history in ascending seq order; `not_found` when the conversation does not
/// exist.
pub(super) async fn history(
    c: &Object,
    conversation: ConversationId,
    page: HistoryPage,
    limit: u32,
) -> CoreResult<Vec<Message>> {
    let (stmt, from, newest_first) = match page {
        HistoryPage::Before(before) => (
            sql::HISTORY_BEFORE,
            before.map_or(i64::MAX, seq_param),
            true,
        ),
        HistoryPage::After(after) => (sql::HISTORY_AFTER, seq_param(after), false),
    };
    let stmt = c.prepare_cached(stmt).await.map_err(map_pg)?;
    let mut found = c
        .query(&stmt, &[&conversation.0, &from, &limit_param(limit)])
        .await
        .map_err(map_pg)?
        .iter()
        .map(rows::message)
        .collect::<CoreResult<Vec<_>>>()?;
    if newest_first {
        found.reverse();
    }
    if found.is_empty() {
        require(c, conversation).await?;
    }
    Ok(found)
}

/// A page of one thread in ascending seq order; `not_found` when the conversation does
/// not exist.
pub(super) async fn thread(
    c: &Object,
    conversation: ConversationId,
    root: Seq,
    page: HistoryPage,
    limit: u32,
) -> CoreResult<Vec<Message>> {
    let (stmt, from, newest_first) = match page {
        HistoryPage::Before(before) => {
            (sql::THREAD_BEFORE, before.map_or(i64::MAX, seq_param), true)
        }
        HistoryPage::After(after) => (sql::THREAD_AFTER, seq_param(after), false),
    };
    let stmt = c.prepare_cached(stmt).await.map_err(map_pg)?;
    let mut found = c
        .query(
            &stmt,
            &[
                &conversation.0,
                &from,
                &limit_param(limit),
                &seq_param(root),
            ],
        )
        .await
        .map_err(map_pg)?
        .iter()
        .map(rows::message)
        .collect::<CoreResult<Vec<_>>>()?;
    if newest_first {
        found.reverse();
    }
    if found.is_empty() {
        require(c, conversation).await?;
    }
    Ok(found)
}

/// One message by position.
pub(super) async fn load(
    c: &Object,
    conversation: ConversationId,
    seq: Seq,
) -> CoreResult<Option<Message>> {
    let stmt = c.prepare_cached(sql::MESSAGE).await.map_err(map_pg)?;
    c.query_opt(&stmt, &[&conversation.0, &seq_param(seq)])
        .await
        .map_err(map_pg)?
        .map(|r| rows::message(&r))
        .transpose()
}

/// Replaces a message's body; `conflict` for a tombstone, `not_found` when missing.
pub(super) async fn edit(
    c: &Object,
    conversation: ConversationId,
    seq: Seq,
    body: &str,
    at: DateTime<Utc>,
) -> CoreResult<Message> {
    if body.contains('\0') {
        return Err(CoreError::invalid("a message body must not contain NUL"));
    }
    let stmt = c.prepare_cached(sql::EDIT_MESSAGE).await.map_err(map_pg)?;
    if let Some(row) = c
        .query_opt(&stmt, &[&conversation.0, &seq_param(seq), &body, &at])
        .await
        .map_err(map_pg)?
    {
        return rows::message(&row);
    }
    match load(c, conversation, seq).await? {
        Some(_) => Err(CoreError::conflict("a deleted message cannot be edited")),
        None => Err(CoreError::not_found(format!("message {seq}"))),
    }
}

/// Turns a message into a tombstone; a tombstone is returned unchanged.
pub(super) async fn delete(
    c: &Object,
    conversation: ConversationId,
    seq: Seq,
    at: DateTime<Utc>,
) -> CoreResult<Message> {
    let stmt = c
        .prepare_cached(sql::DELETE_MESSAGE)
        .await
        .map_err(map_pg)?;
    if let Some(row) = c
        .query_opt(&stmt, &[&conversation.0, &seq_param(seq), &at])
        .await
        .map_err(map_pg)?
    {
        return rows::message(&row);
    }
    // Already a tombstone (returned unchanged), or missing.
    load(c, conversation, seq)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("message {seq}")))
}
