//! Conversions between the model and SQLite values. Each reader takes the columns of one
//! of `sql.rs`'s column lists at the positions named there (`sql::message_col`, …), or
//! a single column by its name.

use chat_core::model::{
    Attachment, Conversation, ConversationKind, FriendState, Friendship, Member, Message,
    MessageKind, Role, Visibility, Watermarks,
};
use chat_core::{ConversationId, Error, MessageId, Result, Seq, UserId};
use chrono::{DateTime, Utc};
use rusqlite::Row;

use crate::sql::{conversation_col, friendship_col, member_col, message_col};

/// A time as unix milliseconds.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A time as the store gives it back: whole milliseconds.
pub(crate) fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(t)).unwrap_or(t)
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

/// A user id in column `at`.
pub(crate) fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<UserId> {
    let s: String = r.get(at)?;
    user(s).map_err(conv_err)
}

/// Reads the `conversation_cols!` block starting at column `at`.
pub(crate) fn conversation_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Conversation> {
    use conversation_col as col;
    let id: Vec<u8> = r.get(at + col::ID)?;
    let kind: String = r.get(at + col::KIND)?;
    let name: Option<String> = r.get(at + col::NAME)?;
    let visibility: Option<String> = r.get(at + col::VISIBILITY)?;
    let a: Option<String> = r.get(at + col::USER_A)?;
    let b: Option<String> = r.get(at + col::USER_B)?;
    let created_by: String = r.get(at + col::CREATED_BY)?;
    let created_at: i64 = r.get(at + col::CREATED_AT)?;
    let last_seq: i64 = r.get(at + col::LAST_SEQ)?;
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

/// Reads a row that is one `conversation_cols!` block.
pub(crate) fn conversation(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    conversation_at(r, 0)
}

/// Reads the `message_cols!` block starting at column `at`; `None` when its id is NULL
/// (an outer join found no message).
pub(crate) fn message_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<Message>> {
    use message_col as col;
    let Some(id): Option<Vec<u8>> = r.get(at + col::ID)? else {
        return Ok(None);
    };
    let conversation: Vec<u8> = r.get(at + col::CONVERSATION)?;
    let s: i64 = r.get(at + col::SEQ)?;
    let sender: String = r.get(at + col::SENDER)?;
    let client_id: Option<String> = r.get(at + col::CLIENT_ID)?;
    let kind: String = r.get(at + col::KIND)?;
    let body: String = r.get(at + col::BODY)?;
    let created_at: i64 = r.get(at + col::CREATED_AT)?;
    let edited_at: Option<i64> = r.get(at + col::EDITED_AT)?;
    let deleted_at: Option<i64> = r.get(at + col::DELETED_AT)?;
    let reply_to: Option<i64> = r.get(at + col::REPLY_TO)?;
    let thread: Option<i64> = r.get(at + col::THREAD)?;
    let reply_count: i64 = r.get(at + col::REPLY_COUNT)?;
    let attachments: Option<String> = r.get(at + col::ATTACHMENTS)?;
    (|| {
        Ok(Some(Message {
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
            reply_to: reply_to.map(seq).transpose()?,
            thread: thread.map(seq).transpose()?,
            reply_count: u32::try_from(reply_count).map_err(|_| bad("reply count"))?,
            attachments: attachments_from(attachments.as_deref())?,
        }))
    })()
    .map_err(conv_err)
}

/// Attachments as stored: a JSON array, NULL when there are none.
pub(crate) fn attachments_sql(a: &[Attachment]) -> Option<String> {
    (!a.is_empty()).then(|| serde_json::to_string(a).unwrap_or_default())
}

fn attachments_from(v: Option<&str>) -> Result<Vec<Attachment>> {
    v.map_or(Ok(Vec::new()), |s| {
        serde_json::from_str(s).map_err(|_| bad("attachments"))
    })
}

/// Reads a row that is one `message_cols!` block.
pub(crate) fn message(r: &Row<'_>) -> rusqlite::Result<Message> {
    message_at(r, 0)?.ok_or_else(|| conv_err(bad("message id")))
}

/// Reads the `member_cols!` block starting at column `at`.
pub(crate) fn member_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Member> {
    use member_col as col;
    let conversation: Vec<u8> = r.get(at + col::CONVERSATION)?;
    let u: String = r.get(at + col::USER)?;
    let role: String = r.get(at + col::ROLE)?;
    let delivered: i64 = r.get(at + col::DELIVERED_SEQ)?;
    let read: i64 = r.get(at + col::READ_SEQ)?;
    let joined_at: i64 = r.get(at + col::JOINED_AT)?;
    (|| {
        Ok(Member {
            conversation: ConversationId(uuid(&conversation)?),
            user: user(u)?,
            role: Role::parse(&role)?,
            watermarks: watermarks(delivered, read)?,
            joined_at: time(joined_at)?,
        })
    })()
    .map_err(conv_err)
}

/// Reads a row that is one `member_cols!` block.
pub(crate) fn member(r: &Row<'_>) -> rusqlite::Result<Member> {
    member_at(r, 0)
}

/// Reads a row with `delivered_seq` and `read_seq` columns (by name).
pub(crate) fn watermarks_of(r: &Row<'_>) -> rusqlite::Result<Watermarks> {
    watermarks(r.get("delivered_seq")?, r.get("read_seq")?).map_err(conv_err)
}

fn watermarks(delivered: i64, read: i64) -> Result<Watermarks> {
    Ok(Watermarks {
        delivered_seq: seq(delivered)?,
        read_seq: seq(read)?,
    })
}

/// Reads a row that is one `friendship_cols!` block.
pub(crate) fn friendship(r: &Row<'_>) -> rusqlite::Result<Friendship> {
    use friendship_col as col;
    let a: String = r.get(col::A)?;
    let b: String = r.get(col::B)?;
    let state: String = r.get(col::STATE)?;
    let from: Option<String> = r.get(col::PENDING_FROM)?;
    let a_blocks_b: bool = r.get(col::A_BLOCKS_B)?;
    let b_blocks_a: bool = r.get(col::B_BLOCKS_A)?;
    let updated_at: i64 = r.get(col::UPDATED_AT)?;
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

/// Reads a count selected `AS name`, as a `u64`.
pub(crate) fn count(r: &Row<'_>, name: &str) -> rusqlite::Result<u64> {
    let n: i64 = r.get(name)?;
    u64::try_from(n).map_err(|_| conv_err(bad("count")))
}

/// Reads a conversation id selected as `name`.
pub(crate) fn conversation_id(r: &Row<'_>, name: &str) -> rusqlite::Result<ConversationId> {
    let id: Vec<u8> = r.get(name)?;
    uuid(&id).map(ConversationId).map_err(conv_err)
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
