//! Messages: appending (idempotent by sender and client id), history pages, one message,
//! edits and tombstones.

use chat_core::model::{Appended, HistoryPage, Message, NewMessage};
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, Seq};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::shared::require_conversation;
use crate::pool::snapshot;
use crate::row::{self, attachments_sql, map_err, ms, seq_sql, trunc};
use crate::sql;
use crate::writer::Ctx;

/// Appends `m` at the conversation's next seq, or returns the original of a retry.
pub(super) fn append(ctx: &mut Ctx<'_>, m: NewMessage) -> CoreResult<Appended> {
    // Insert first: a new client id (the common case) costs no lookup. A retried one
    // meets the unique index on (sender, client_id), inserts nothing, and only then is
    // the original read.
    let seq = match ctx.last_seq(m.conversation) {
        Ok(last) => last + 1,
        // A retry names a conversation that is gone: the original still answers it.
        Err(e) => return original(ctx.conn, &m)?.ok_or(e),
    };
    let inserted = ctx
        .conn
        .prepare_cached(sql::INSERT_MESSAGE)
        .and_then(|mut s| {
            s.execute(params![
                m.conversation.0.as_bytes(),
                seq_sql(seq),
                m.id.0.as_bytes(),
                m.sender.as_str(),
                m.client_id,
                m.kind.as_str(),
                m.body,
                ms(m.created_at),
                m.reply_to.map(seq_sql),
                m.thread.map(seq_sql),
                attachments_sql(&m.attachments)
            ])
        })
        .map_err(map_err)?;
    if inserted == 0 {
        return original(ctx.conn, &m)?.ok_or_else(|| {
            CoreError::internal(format!(
                "seq {seq} of conversation {} is already taken",
                m.conversation
            ))
        });
    }
    if let Some(root) = m.thread {
        add_reply_count(ctx.conn, m.conversation, root, 1)?;
    }
    ctx.appended(m.conversation, seq);
    Ok(Appended {
        message: Message {
            id: m.id,
            conversation: m.conversation,
            seq,
            sender: m.sender,
            client_id: m.client_id,
            kind: m.kind,
            body: m.body,
            created_at: trunc(m.created_at),
            edited_at: None,
            deleted_at: None,
            reply_to: m.reply_to,
            thread: m.thread,
            reply_count: 0,
            attachments: m.attachments,
        },
        duplicate: false,
    })
}

/// Adds `by` to the reply count of the thread root at `root`.
fn add_reply_count(
    conn: &Connection,
    conversation: ConversationId,
    root: Seq,
    by: i64,
) -> CoreResult<()> {
    conn.prepare_cached(sql::ADD_REPLY_COUNT)
        .and_then(|mut s| s.execute(params![conversation.0.as_bytes(), seq_sql(root), by]))
        .map_err(map_err)?;
    Ok(())
}

/// The message already stored for `m`'s (sender, client id), as a duplicate answer.
fn original(conn: &Connection, m: &NewMessage) -> CoreResult<Option<Appended>> {
    let Some(cid) = &m.client_id else {
        return Ok(None);
    };
    conn.prepare_cached(sql::BY_CLIENT_ID)
        .and_then(|mut s| {
            s.query_row([m.sender.as_str(), cid.as_str()], row::message)
                .optional()
        })
        .map_err(map_err)
        .map(|found| {
            found.map(|message| Appended {
                message,
                duplicate: true,
            })
        })
}

/// A page of history in ascending seq order; `not_found` when the conversation does not
/// exist.
pub(super) fn history(
    conn: &Connection,
    conversation: ConversationId,
    page: HistoryPage,
    limit: u32,
) -> CoreResult<Vec<Message>> {
    snapshot(conn, |conn| {
        require_conversation(conn, conversation)?;
        let (stmt, from) = match page {
            HistoryPage::Before(b) => (sql::HISTORY_BEFORE, b.map_or(i64::MAX, seq_sql)),
            HistoryPage::After(a) => (sql::HISTORY_AFTER, seq_sql(a)),
        };
        conn.prepare_cached(stmt)
            .and_then(|mut s| {
                s.query_map(
                    params![conversation.0.as_bytes(), from, i64::from(limit)],
                    row::message,
                )?
                .collect()
            })
            .map_err(map_err)
    })
}

/// A page of one thread in ascending seq order; `not_found` when the conversation does
/// not exist.
pub(super) fn thread(
    conn: &Connection,
    conversation: ConversationId,
    root: Seq,
    page: HistoryPage,
    limit: u32,
) -> CoreResult<Vec<Message>> {
    snapshot(conn, |conn| {
        require_conversation(conn, conversation)?;
        let (stmt, from) = match page {
            HistoryPage::Before(b) => (sql::THREAD_BEFORE, b.map_or(i64::MAX, seq_sql)),
            HistoryPage::After(a) => (sql::THREAD_AFTER, seq_sql(a)),
        };
        conn.prepare_cached(stmt)
            .and_then(|mut s| {
                s.query_map(
                    params![
                        conversation.0.as_bytes(),
                        from,
                        i64::from(limit),
                        seq_sql(root)
                    ],
                    row::message,
                )?
                .collect()
            })
            .map_err(map_err)
    })
}

/// One message by position.
pub(super) fn load(
    conn: &Connection,
    conversation: ConversationId,
    seq: Seq,
) -> CoreResult<Option<Message>> {
    conn.prepare_cached(sql::MESSAGE)
        .and_then(|mut s| {
            s.query_row(
                params![conversation.0.as_bytes(), seq_sql(seq)],
                row::message,
            )
            .optional()
        })
        .map_err(map_err)
}

/// Replaces a message's body; `conflict` for a tombstone.
pub(super) fn edit(
    ctx: &mut Ctx<'_>,
    conversation: ConversationId,
    seq: Seq,
    body: String,
    at: DateTime<Utc>,
) -> CoreResult<Message> {
    let mut m = load(ctx.conn, conversation, seq)?
        .ok_or_else(|| CoreError::not_found(format!("message {seq}")))?;
    if m.is_deleted() {
        return Err(CoreError::conflict("a deleted message cannot be edited"));
    }
    ctx.conn
        .prepare_cached(sql::EDIT_MESSAGE)
        .and_then(|mut s| {
            s.execute(params![
                conversation.0.as_bytes(),
                seq_sql(seq),
                body,
                ms(at)
            ])
        })
        .map_err(map_err)?;
    m.body = body;
    m.edited_at = Some(trunc(at));
    Ok(m)
}

/// Turns a message into a tombstone; a tombstone is returned unchanged.
pub(super) fn delete(
    ctx: &mut Ctx<'_>,
    conversation: ConversationId,
    seq: Seq,
    at: DateTime<Utc>,
) -> CoreResult<Message> {
    let mut m = load(ctx.conn, conversation, seq)?
        .ok_or_else(|| CoreError::not_found(format!("message {seq}")))?;
    if m.is_deleted() {
        return Ok(m);
    }
    ctx.conn
        .prepare_cached(sql::DELETE_MESSAGE)
        .and_then(|mut s| s.execute(params![conversation.0.as_bytes(), seq_sql(seq), ms(at)]))
        .map_err(map_err)?;
    if let Some(root) = m.thread {
        add_reply_count(ctx.conn, conversation, root, -1)?;
    }
    m.body.clear();
    m.attachments.clear();
    m.deleted_at = Some(trunc(at));
    Ok(m)
}
