//! Members: joining and leaving, one membership, a conversation's members in pages, and
//! a user's conversations (their ids, and the summaries of the conversation list).

use chat_core::model::{Member, Role};
use chat_core::ports::ConversationSummary;
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::shared::{insert_member, require_conversation};
use crate::pool::snapshot;
use crate::row::{self, map_err};
use crate::sql::{self, list_col};
use crate::writer::Ctx;

/// Adds a member unless they are one already (then returns them unchanged, with false).
/// `conflict` at `max_members`; `not_found` when the conversation does not exist.
pub(super) fn add(
    ctx: &mut Ctx<'_>,
    conversation: ConversationId,
    user: &UserId,
    role: Role,
    joined_at: DateTime<Utc>,
    max_members: u32,
) -> CoreResult<(Member, bool)> {
    ctx.last_seq(conversation)?;
    if let Some(m) = load(ctx.conn, conversation, user)? {
        return Ok((m, false));
    }
    let n = ctx
        .conn
        .prepare_cached(sql::MEMBER_COUNT)
        .and_then(|mut s| s.query_row([conversation.0.as_bytes()], |r| row::count(r, "members")))
        .map_err(map_err)?;
    if n >= u64::from(max_members) {
        return Err(CoreError::conflict(format!(
            "the conversation has the maximum of {max_members} members"
        )));
    }
    Ok((
        insert_member(ctx.conn, conversation, user, role, joined_at)?,
        true,
    ))
}

/// Removes a member; true when they were one. `not_found` when the conversation does not
/// exist.
pub(super) fn remove(
    ctx: &mut Ctx<'_>,
    conversation: ConversationId,
    user: &UserId,
) -> CoreResult<bool> {
    ctx.last_seq(conversation)?;
    let n = ctx
        .conn
        .prepare_cached(sql::DELETE_MEMBER)
        .and_then(|mut s| s.execute(params![conversation.0.as_bytes(), user.as_str()]))
        .map_err(map_err)?;
    Ok(n > 0)
}

/// One membership.
pub(super) fn load(
    conn: &Connection,
    conversation: ConversationId,
    user: &UserId,
) -> CoreResult<Option<Member>> {
    conn.prepare_cached(sql::MEMBER)
        .and_then(|mut s| {
            s.query_row(
                params![conversation.0.as_bytes(), user.as_str()],
                row::member,
            )
            .optional()
        })
        .map_err(map_err)
}

/// Members by user id after `after` ("" for the first page), at most `limit`.
pub(super) fn page(
    conn: &Connection,
    conversation: ConversationId,
    after: &str,
    limit: u32,
) -> CoreResult<Vec<Member>> {
    snapshot(conn, |conn| {
        require_conversation(conn, conversation)?;
        conn.prepare_cached(sql::MEMBERS_PAGE)
            .and_then(|mut s| {
                s.query_map(
                    params![conversation.0.as_bytes(), after, i64::from(limit)],
                    row::member,
                )?
                .collect()
            })
            .map_err(map_err)
    })
}

/// The ids of every conversation the user is a member of.
pub(super) fn conversations_of(
    conn: &Connection,
    user: &UserId,
    limit: u32,
) -> CoreResult<Vec<ConversationId>> {
    conn.prepare_cached(sql::CONVERSATIONS_OF)
        .and_then(|mut s| {
            let p = params![user.as_str(), i64::from(limit)];
            s.query_map(p, |r| row::conversation_id(r, "conversation"))?
                .collect()
        })
        .map_err(map_err)
}

/// [`conversations_of`] for each user, in their order, all on this one connection.
pub(super) fn conversations_of_many(
    conn: &Connection,
    users: &[UserId],
    limit: u32,
) -> CoreResult<Vec<Vec<ConversationId>>> {
    users
        .iter()
        .map(|user| conversations_of(conn, user, limit))
        .collect()
}

/// The user's conversations, most recently active first, at most `limit`: one statement,
/// which orders and cuts the list itself.
pub(super) fn list(
    conn: &Connection,
    user: &UserId,
    limit: u32,
) -> CoreResult<Vec<ConversationSummary>> {
    conn.prepare_cached(sql::LIST_CONVERSATIONS)
        .and_then(|mut s| {
            s.query_map(params![user.as_str(), i64::from(limit)], summary)?
                .collect()
        })
        .map_err(map_err)
}

/// Reads one row of [`sql::LIST_CONVERSATIONS`].
fn summary(r: &Row<'_>) -> rusqlite::Result<ConversationSummary> {
    let me = row::member_at(r, list_col::MEMBER)?;
    Ok(ConversationSummary {
        conversation: row::conversation_at(r, list_col::CONVERSATION)?,
        role: me.role,
        watermarks: me.watermarks,
        last_message: row::message_at(r, list_col::LAST_MESSAGE)?,
        unread: row::count(r, "unread")?,
    })
}
