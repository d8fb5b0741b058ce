//! Conversions between the model and SQLite values, and the column lists they read.

use chat_core::model::{
    Conversation, ConversationKind, FriendState, Friendship, Member, Message, MessageKind, Role,
    Visibility, Watermarks,
};
use chat_core::{ConversationId, Error, MessageId, Result, Seq, UserId};
use chrono::{DateTime, Utc};
use rusqlite::Row;

/// A time as unix milliseconds.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A seq or a watermark as SQLite's INTEGER (saturating: seqs never get near 2^63).
pub(crate) fn seq_sql(s: Seq) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

fn bad(what: &str) -> Error {
    Error::internal(format!("stored {what} cannot be read back"))
}

/// A stored row could not be decoded: a rusqlite error for use inside row closures.
fn conv_err(e: Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(e))
}

fn time(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| bad("time"))
}

fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(time).transpose()
}

fn uuid(b: &[u8]) -> Result<uuid::Uuid> {
    uuid::Uuid::from_slice(b).map_err(|_| bad("id"))
}

fn seq(v: i64) -> Result<Seq> {
    Seq::try_from(v).map_err(|_| bad("seq"))
}

fn user(s: String) -> Result<UserId> {
    UserId::new(s).map_err(|_| bad("user id"))
}

/// Reads `conversation_cols!()` starting at column `at`.
pub(crate) fn conversation(r: &Row<'_>, at: usize) -> rusqlite::Result<Conversation> {
    let id: Vec<u8> = r.get(at)?;
    let kind: String = r.get(at + 1)?;
    let name: Option<String> = r.get(at + 2)?;
    let visibility: Option<String> = r.get(at + 3)?;
    let a: Option<String> = r.get(at + 4)?;
    let b: Option<String> = r.get(at + 5)?;
    let created_by: String = r.get(at + 6)?;
    let created_at: i64 = r.get(at + 7)?;
    let last_seq: i64 = r.get(at + 8)?;
    (|| {
        let kind = match (kind.as_str(), name, visibility, a, b) {
            ("room", Some(name), Some(v), _, _) => ConversationKind::Room {
                name,
                visibility: Visibility::parse(&v)?,
            },
            ("direct", _, _, Some(a), Some(b)) => ConversationKind::Direct {
                a: user(a)?,
                b: user(b)?,
            },
            _ => return Err(bad("conversation kind")),
        };
        Ok(Conversation {
            id: ConversationId(uuid(&id)?),
            kind,
            created_by: user(created_by)?,
            created_at: time(created_at)?,
            last_seq: seq(last_seq)?,
        })
    })()
    .map_err(conv_err)
}

/// Reads `message_cols!()` starting at column 0.
pub(crate) fn message(r: &Row<'_>) -> rusqlite::Result<Message> {
    let conversation: Vec<u8> = r.get(0)?;
    let s: i64 = r.get(1)?;
    let id: Vec<u8> = r.get(2)?;
    let sender: String = r.get(3)?;
    let client_id: Option<String> = r.get(4)?;
    let kind: String = r.get(5)?;
    let body: String = r.get(6)?;
    let created_at: i64 = r.get(7)?;
    let edited_at: Option<i64> = r.get(8)?;
    let deleted_at: Option<i64> = r.get(9)?;
    (|| {
        Ok(Message {
            id: MessageId(uuid(&id)?),
            conversation: ConversationId(uuid(&conversation)?),
            seq: seq(s)?,
            sender: user(sender)?,
            client_id,
            kind: MessageKind::parse(&kind)?,
            body,
            created_at: time(created_at)?,
            edited_at: opt_time(edited_at)?,
            deleted_at: opt_time(deleted_at)?,
        })
    })()
    .map_err(conv_err)
}

/// Reads `member_cols!()` starting at column 0.
pub(crate) fn member(r: &Row<'_>) -> rusqlite::Result<Member> {
    let conversation: Vec<u8> = r.get(0)?;
    let u: String = r.get(1)?;
    let role: String = r.get(2)?;
    let delivered: i64 = r.get(3)?;
    let read: i64 = r.get(4)?;
    let joined_at: i64 = r.get(5)?;
    (|| {
        Ok(Member {
            conversation: ConversationId(uuid(&conversation)?),
            user: user(u)?,
            role: Role::parse(&role)?,
            watermarks: Watermarks {
                delivered_seq: seq(delivered)?,
                read_seq: seq(read)?,
            },
            joined_at: time(joined_at)?,
        })
    })()
    .map_err(conv_err)
}

/// Reads `friendship_cols!()` starting at column 0.
pub(crate) fn friendship(r: &Row<'_>) -> rusqlite::Result<Friendship> {
    let a: String = r.get(0)?;
    let b: String = r.get(1)?;
    let state: String = r.get(2)?;
    let from: Option<String> = r.get(3)?;
    let a_blocks_b: bool = r.get(4)?;
    let b_blocks_a: bool = r.get(5)?;
    let updated_at: i64 = r.get(6)?;
    (|| {
        let state = match (state.as_str(), from) {
            ("none", _) => FriendState::None,
            ("accepted", _) => FriendState::Accepted,
            ("pending", Some(from)) => FriendState::Pending { from: user(from)? },
            _ => return Err(bad("friend state")),
        };
        Ok(Friendship {
            a: user(a)?,
            b: user(b)?,
            state,
            a_blocks_b,
            b_blocks_a,
            updated_at: time(updated_at)?,
        })
    })()
    .map_err(conv_err)
}

/// The `state` and `pending_from` columns of a friend state.
pub(crate) fn friend_state(s: &FriendState) -> (&'static str, Option<&str>) {
    match s {
        FriendState::None => ("none", None),
        FriendState::Accepted => ("accepted", None),
        FriendState::Pending { from } => ("pending", Some(from.as_str())),
    }
}

/// Maps a driver error, unwrapping a decoding error back to the engine error inside it.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = &e {
        if let Some(core) = inner.downcast_ref::<Error>() {
            return core.clone();
        }
    }
    crate::error::map(e)
}
