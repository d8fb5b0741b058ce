//! The few statements several sections share: whether a conversation exists, and adding
//! a member row. A leaf module, so that the sections depend on it and never on each
//! other in a circle.

use chat_core::model::{Member, Role, Watermarks};
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use crate::row::{map_err, ms, trunc};
use crate::sql;

/// The error for a conversation that does not exist.
pub(super) fn missing(id: ConversationId) -> CoreError {
    CoreError::not_found(format!("conversation {id}"))
}

/// `not_found` unless the conversation exists.
pub(super) fn require_conversation(conn: &Connection, id: ConversationId) -> CoreResult<()> {
    let found = conn
        .prepare_cached(sql::CONVERSATION_EXISTS)
        .and_then(|mut s| s.exists([id.0.as_bytes()]))
        .map_err(map_err)?;
    if found {
        Ok(())
    } else {
        Err(missing(id))
    }
}

/// Inserts a member with zero watermarks and returns it as a later read would.
pub(super) fn insert_member(
    conn: &Connection,
    id: ConversationId,
    user: &UserId,
    role: Role,
    at: DateTime<Utc>,
) -> CoreResult<Member> {
    conn.prepare_cached(sql::INSERT_MEMBER)
        .and_then(|mut s| {
            s.execute(params![
                id.0.as_bytes(),
                user.as_str(),
                role.as_str(),
                ms(at)
            ])
        })
        .map_err(map_err)?;
    Ok(Member {
        conversation: id,
        user: user.clone(),
        role,
        watermarks: Watermarks::default(),
        joined_at: trunc(at),
    })
}
