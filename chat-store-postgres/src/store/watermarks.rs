//! Watermarks and unread counts: moving a member's delivered and read marks forward, and
//! counting what others sent after the read mark.

use chat_core::model::Watermarks;
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, Seq, UserId};
use deadpool_postgres::Object;

use crate::error::map_pg;
use crate::rows::{self, seq_param};
use crate::sql;

/// Moves the member's watermarks forward (never back), clamped to the last seq, in one
/// statement; `not_found` when not a member.
pub(super) async fn advance(
    c: &Object,
    conversation: ConversationId,
    user: &UserId,
    delivered: Option<Seq>,
    read: Option<Seq>,
) -> CoreResult<Watermarks> {
    let stmt = c
        .prepare_cached(sql::ADVANCE_WATERMARKS)
        .await
        .map_err(map_pg)?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &conversation.0,
                &user.as_str(),
                &seq_param(delivered.unwrap_or(0)),
                &seq_param(read.unwrap_or(0)),
            ],
        )
        .await
        .map_err(map_pg)?
        .ok_or_else(|| CoreError::not_found("not a member"))?;
    rows::watermarks(&row)
}

/// The member's unread count in one conversation; `not_found` when not a member.
pub(super) async fn unread(
    c: &Object,
    conversation: ConversationId,
    user: &UserId,
) -> CoreResult<u64> {
    let stmt = c.prepare_cached(sql::UNREAD).await.map_err(map_pg)?;
    let row = c
        .query_opt(&stmt, &[&conversation.0, &user.as_str()])
        .await
        .map_err(map_pg)?
        .ok_or_else(|| CoreError::not_found("not a member"))?;
    rows::count(&row, "unread")
}

/// The user's unread count across all their conversations.
pub(super) async fn unread_total(c: &Object, user: &UserId) -> CoreResult<u64> {
    let stmt = c.prepare_cached(sql::UNREAD_TOTAL).await.map_err(map_pg)?;
    let row = c
        .query_one(&stmt, &[&user.as_str()])
        .await
        .map_err(map_pg)?;
    rows::count(&row, "unread")
}
