//! Watermarks and unread counts: moving a member's delivered and read marks forward, and
//! counting what others sent after the read mark.

use chat_core::model::Watermarks;
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, Seq, UserId};
use rusqlite::{params, Connection, OptionalExtension};

use super::members;
use crate::pool::snapshot;
use crate::row::{self, map_err, seq_sql};
use crate::sql;
use crate::writer::Ctx;

/// Moves the member's watermarks forward (never back), clamped to the last seq.
pub(super) fn advance(
    ctx: &mut Ctx<'_>,
    conversation: ConversationId,
    user: &UserId,
    delivered: Option<Seq>,
    read: Option<Seq>,
) -> CoreResult<Watermarks> {
    let last = ctx.last_seq(conversation)?;
    let now = ctx
        .conn
        .prepare_cached(sql::WATERMARKS)
        .and_then(|mut s| {
            s.query_row(
                params![conversation.0.as_bytes(), user.as_str()],
                row::watermarks_of,
            )
            .optional()
        })
        .map_err(map_err)?
        .ok_or_else(|| CoreError::not_found("not a member"))?;
    let next = now.advance(delivered, read, last);
    if next != now {
        ctx.conn
            .prepare_cached(sql::SET_WATERMARKS)
            .and_then(|mut s| {
                s.execute(params![
                    conversation.0.as_bytes(),
                    user.as_str(),
                    seq_sql(next.delivered_seq),
                    seq_sql(next.read_seq)
                ])
            })
            .map_err(map_err)?;
    }
    Ok(next)
}

/// The member's unread count in one conversation; `not_found` when not a member.
pub(super) fn unread(
    conn: &Connection,
    conversation: ConversationId,
    user: &UserId,
) -> CoreResult<u64> {
    snapshot(conn, |conn| {
        let m = members::load(conn, conversation, user)?
            .ok_or_else(|| CoreError::not_found("not a member"))?;
        conn.prepare_cached(sql::UNREAD)
            .and_then(|mut s| {
                s.query_row(
                    params![
                        conversation.0.as_bytes(),
                        seq_sql(m.watermarks.read_seq),
                        user.as_str()
                    ],
                    |r| row::count(r, "unread"),
                )
            })
            .map_err(map_err)
    })
}

/// The user's unread count across all their conversations.
pub(super) fn unread_total(conn: &Connection, user: &UserId) -> CoreResult<u64> {
    conn.prepare_cached(sql::UNREAD_TOTAL)
        .and_then(|mut s| s.query_row([user.as_str()], |r| row::count(r, "unread")))
        .map_err(map_err)
}
