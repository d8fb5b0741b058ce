//! Rows to model types, and the column lists the queries select.

use chat_core::ids::{ConversationId, MessageId, Seq, UserId};
use chat_core::model::{
    Conversation, ConversationKind, FriendState, Friendship, Member, Message, MessageKind, Role,
    Visibility, Watermarks,
};
use chat_core::ports::UserProfile;
use chat_core::{Error, Result};
use chrono::{DateTime, Utc};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;
use uuid::Uuid;

/// Columns of a message, in the order [`message_at`] reads them.
pub(crate) const MESSAGE_COLS: &str =
    "id, conversation, seq, sender, client_id, kind, body, created_at, edited_at, deleted_at";
/// Columns of a conversation, in the order [`conversation_at`] reads them.
pub(crate) const CONVERSATION_COLS: &str =
    "id, kind, name, visibility, direct_a, direct_b, created_by, created_at, last_seq";
/// Columns of a member, in the order [`member`] reads them.
pub(crate) const MEMBER_COLS: &str =
    "conversation, user_id, role, delivered_seq, read_seq, joined_at";
/// Columns of a friendship, in the order [`friendship`] reads them.
pub(crate) const FRIENDSHIP_COLS: &str =
    "a, b, state, pending_from, a_blocks_b, b_blocks_a, updated_at";

fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| Error::internal(format!("reading column {i}: {e}")))
}

fn user(s: String) -> Result<UserId> {
    UserId::new(s).map_err(|e| Error::internal(format!("stored user id: {e}")))
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

/// Reads a message from the 10 columns starting at `at`; `None` when its id is NULL
/// (an outer join found nothing).
pub(crate) fn message_at(row: &Row, at: usize) -> Result<Option<Message>> {
    let Some(id) = get::<Option<Uuid>>(row, at)? else {
        return Ok(None);
    };
    Ok(Some(Message {
        id: MessageId(id),
        conversation: ConversationId(get(row, at + 1)?),
        seq: seq(get(row, at + 2)?)?,
        sender: user(get(row, at + 3)?)?,
        client_id: get(row, at + 4)?,
        kind: MessageKind::parse(get(row, at + 5)?)?,
        body: get(row, at + 6)?,
        created_at: get(row, at + 7)?,
        edited_at: get(row, at + 8)?,
        deleted_at: get(row, at + 9)?,
    }))
}

/// Reads a message selected with [`MESSAGE_COLS`].
pub(crate) fn message(row: &Row) -> Result<Message> {
    message_at(row, 0)?.ok_or_else(|| Error::internal("message without id"))
}

/// Reads a conversation from the 9 columns starting at `at`.
pub(crate) fn conversation_at(row: &Row, at: usize) -> Result<Conversation> {
    let kind: &str = get(row, at + 1)?;
    let kind = match kind {
        "room" => ConversationKind::Room {
            name: get::<Option<String>>(row, at + 2)?
                .ok_or_else(|| Error::internal("room without name"))?,
            visibility: Visibility::parse(get::<Option<&str>>(row, at + 3)?.unwrap_or("public"))?,
        },
        "direct" => ConversationKind::Direct {
            a: user(
                get::<Option<String>>(row, at + 4)?
                    .ok_or_else(|| Error::internal("direct without a"))?,
            )?,
            b: user(
                get::<Option<String>>(row, at + 5)?
                    .ok_or_else(|| Error::internal("direct without b"))?,
            )?,
        },
        other => return Err(Error::internal(format!("conversation kind {other:?}"))),
    };
    Ok(Conversation {
        id: ConversationId(get(row, at)?),
        kind,
        created_by: user(get(row, at + 6)?)?,
        created_at: get(row, at + 7)?,
        last_seq: seq(get(row, at + 8)?)?,
    })
}

/// Reads a member selected with [`MEMBER_COLS`].
pub(crate) fn member(row: &Row) -> Result<Member> {
    Ok(Member {
        conversation: ConversationId(get(row, 0)?),
        user: user(get(row, 1)?)?,
        role: Role::parse(get(row, 2)?)?,
        watermarks: Watermarks {
            delivered_seq: seq(get(row, 3)?)?,
            read_seq: seq(get(row, 4)?)?,
        },
        joined_at: get(row, 5)?,
    })
}

/// Reads a friendship selected with [`FRIENDSHIP_COLS`].
pub(crate) fn friendship(row: &Row) -> Result<Friendship> {
    let state: &str = get(row, 2)?;
    let state = match state {
        "none" => FriendState::None,
        "accepted" => FriendState::Accepted,
        "pending" => FriendState::Pending {
            from: user(
                get::<Option<String>>(row, 3)?
                    .ok_or_else(|| Error::internal("pending without from"))?,
            )?,
        },
        other => return Err(Error::internal(format!("friend state {other:?}"))),
    };
    Ok(Friendship {
        a: user(get(row, 0)?)?,
        b: user(get(row, 1)?)?,
        state,
        a_blocks_b: get(row, 4)?,
        b_blocks_a: get(row, 5)?,
        updated_at: get(row, 6)?,
    })
}

/// The stored form of a friend state: (state, pending_from).
pub(crate) fn friend_state(s: &FriendState) -> (&'static str, Option<&str>) {
    match s {
        FriendState::None => ("none", None),
        FriendState::Accepted => ("accepted", None),
        FriendState::Pending { from } => ("pending", Some(from.as_str())),
    }
}

/// Reads a profile selected as `id, display_name, last_seen`.
pub(crate) fn profile(row: &Row) -> Result<UserProfile> {
    Ok(UserProfile {
        user: user(get(row, 0)?)?,
        display_name: get(row, 1)?,
        last_seen: get(row, 2)?,
    })
}
