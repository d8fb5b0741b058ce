//! Rows to model types. Each reader takes the columns of one of `sql.rs`'s column lists
//! at the positions named there (`sql::message_col`, …), or a single column by its name.

use std::fmt;

use chat_core::ids::{ConversationId, MessageId, Seq, UserId};
use chat_core::model::{
    Conversation, ConversationKind, FriendState, Friendship, Member, Message, MessageKind, Role,
    Visibility, Watermarks,
};
use chat_core::ports::UserProfile;
use chat_core::{Error, Result};
use chrono::{DateTime, Utc};
use tokio_postgres::row::RowIndex;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::sql::{conversation_col, friendship_col, member_col, message_col};

/// One column, by position (`at + sql::message_col::SEQ`, …) or by name.
fn get<'a, T: FromSql<'a>>(row: &'a Row, i: impl RowIndex + fmt::Display + Copy) -> Result<T> {
    row.try_get(i)
        .map_err(|e| Error::internal(format!("reading column {i}: {e}")))
}

fn user(s: String) -> Result<UserId> {
    UserId::new(s).map_err(|e| Error::internal(format!("stored user id: {e}")))
}

/// A user id in the column `name`.
pub(crate) fn user_id(row: &Row, name: &str) -> Result<UserId> {
    get::<String>(row, name).and_then(user)
}

/// A stored `bigint` seq as a [`Seq`].
pub(crate) fn seq(v: i64) -> Result<Seq> {
    Seq::try_from(v).map_err(|_| Error::internal(format!("negative seq {v}")))
}

/// A [`Seq`] as a `bigint` parameter (seqs past `i64::MAX` clamp; none exist).
pub(crate) fn seq_param(s: Seq) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// A time as PostgreSQL keeps it (microseconds), so what an append returns is what a
/// later read returns.
pub(crate) fn pg_time(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Reads the `message_cols!` block starting at column `at`; `None` when its id is NULL
/// (an outer join found no message).
pub(crate) fn message_at(row: &Row, at: usize) -> Result<Option<Message>> {
    use message_col as col;
    let Some(id) = get::<Option<Uuid>>(row, at + col::ID)? else {
        return Ok(None);
    };
    Ok(Some(Message {
        id: MessageId(id),
        conversation: ConversationId(get(row, at + col::CONVERSATION)?),
        seq: seq(get(row, at + col::SEQ)?)?,
        sender: user(get(row, at + col::SENDER)?)?,
        client_id: get(row, at + col::CLIENT_ID)?,
        kind: MessageKind::parse(get(row, at + col::KIND)?)?,
        body: get(row, at + col::BODY)?,
        created_at: get(row, at + col::CREATED_AT)?,
        edited_at: get(row, at + col::EDITED_AT)?,
        deleted_at: get(row, at + col::DELETED_AT)?,
        reply_to: get::<Option<i64>>(row, at + col::REPLY_TO)?
            .map(seq)
            .transpose()?,
        thread: get::<Option<i64>>(row, at + col::THREAD)?
            .map(seq)
            .transpose()?,
        reply_count: u32::try_from(get::<i32>(row, at + col::REPLY_COUNT)?)
            .map_err(|_| Error::internal("negative reply count"))?,
        attachments: get::<Option<&str>>(row, at + col::ATTACHMENTS)?
            .map_or(Ok(Vec::new()), serde_json::from_str)
            .map_err(|_| Error::internal("stored attachments cannot be read back"))?,
    }))
}

/// Attachments as stored: a JSON array in text, NULL when there are none.
pub(crate) fn attachments_param(a: &[chat_core::model::Attachment]) -> Option<String> {
    (!a.is_empty()).then(|| serde_json::to_string(a).unwrap_or_default())
}

/// Reads a row that starts with one `message_cols!` block.
pub(crate) fn message(row: &Row) -> Result<Message> {
    message_at(row, 0)?.ok_or_else(|| Error::internal("message without id"))
}

/// Reads the `conversation_cols!` block starting at column `at`.
pub(crate) fn conversation_at(row: &Row, at: usize) -> Result<Conversation> {
    use conversation_col as col;
    let kind: &str = get(row, at + col::KIND)?;
    let kind = match kind {
        "room" => ConversationKind::Room {
            name: get::<Option<String>>(row, at + col::NAME)?
                .ok_or_else(|| Error::internal("room without name"))?,
            visibility: Visibility::parse(
                get::<Option<&str>>(row, at + col::VISIBILITY)?.unwrap_or("public"),
            )?,
        },
        "direct" => ConversationKind::Direct {
            a: user(
                get::<Option<String>>(row, at + col::DIRECT_A)?
                    .ok_or_else(|| Error::internal("direct without a"))?,
            )?,
            b: user(
                get::<Option<String>>(row, at + col::DIRECT_B)?
                    .ok_or_else(|| Error::internal("direct without b"))?,
            )?,
        },
        other => return Err(Error::internal(format!("conversation kind {other:?}"))),
    };
    Ok(Conversation {
        id: ConversationId(get(row, at + col::ID)?),
        kind,
        created_by: user(get(row, at + col::CREATED_BY)?)?,
        created_at: get(row, at + col::CREATED_AT)?,
        last_seq: seq(get(row, at + col::LAST_SEQ)?)?,
    })
}

/// Reads a row that is one `conversation_cols!` block.
pub(crate) fn conversation(row: &Row) -> Result<Conversation> {
    conversation_at(row, 0)
}

/// Reads the `member_cols!` block starting at column `at`.
pub(crate) fn member_at(row: &Row, at: usize) -> Result<Member> {
    use member_col as col;
    Ok(Member {
        conversation: ConversationId(get(row, at + col::CONVERSATION)?),
        user: user(get(row, at + col::USER_ID)?)?,
        role: Role::parse(get(row, at + col::ROLE)?)?,
        watermarks: Watermarks {
            delivered_seq: seq(get(row, at + col::DELIVERED_SEQ)?)?,
            read_seq: seq(get(row, at + col::READ_SEQ)?)?,
        },
        joined_at: get(row, at + col::JOINED_AT)?,
    })
}

/// Reads a row that is one `member_cols!` block.
pub(crate) fn member(row: &Row) -> Result<Member> {
    member_at(row, 0)
}

/// Reads a row with `delivered_seq` and `read_seq` columns (by name).
pub(crate) fn watermarks(row: &Row) -> Result<Watermarks> {
    Ok(Watermarks {
        delivered_seq: seq(get(row, "delivered_seq")?)?,
        read_seq: seq(get(row, "read_seq")?)?,
    })
}

/// Reads a row that starts with one `friendship_cols!` block.
pub(crate) fn friendship(row: &Row) -> Result<Friendship> {
    use friendship_col as col;
    let state: &str = get(row, col::STATE)?;
    let state = match state {
        "none" => FriendState::None,
        "accepted" => FriendState::Accepted,
        "pending" => FriendState::Pending {
            from: user(
                get::<Option<String>>(row, col::PENDING_FROM)?
                    .ok_or_else(|| Error::internal("pending without from"))?,
            )?,
        },
        other => return Err(Error::internal(format!("friend state {other:?}"))),
    };
    Ok(Friendship {
        a: user(get(row, col::A)?)?,
        b: user(get(row, col::B)?)?,
        state,
        a_blocks_b: get(row, col::A_BLOCKS_B)?,
        b_blocks_a: get(row, col::B_BLOCKS_A)?,
        updated_at: get(row, col::UPDATED_AT)?,
    })
}

/// Reads a `bigint` count selected `AS name`.
pub(crate) fn count(row: &Row, name: &str) -> Result<u64> {
    let n: i64 = get(row, name)?;
    u64::try_from(n).map_err(|_| Error::internal(format!("negative count {n}")))
}

/// Reads a conversation id selected as `name`.
pub(crate) fn conversation_id(row: &Row, name: &str) -> Result<ConversationId> {
    get(row, name).map(ConversationId)
}

/// A `u32` limit as a `bigint` parameter.
pub(crate) fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}

/// The stored form of a friend state: (state, pending_from).
pub(crate) fn friend_state(s: &FriendState) -> (&'static str, Option<&str>) {
    match s {
        FriendState::None => ("none", None),
        FriendState::Accepted => ("accepted", None),
        FriendState::Pending { from } => ("pending", Some(from.as_str())),
    }
}

/// Reads a profile selected as `id, display_name, last_seen` (by name).
pub(crate) fn profile(row: &Row) -> Result<UserProfile> {
    Ok(UserProfile {
        user: user(get(row, "id")?)?,
        display_name: get(row, "display_name")?,
        last_seen: get(row, "last_seen")?,
    })
}
