//! Messages: one entry in a conversation's ordered log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ConversationId, MessageId, Seq, UserId};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Written by a user.
    User,
    /// Written by the embedding application (announcements, notices).
    System,
}

impl MessageKind {
    /// The stable name (`user` or `system`), as stores keep it.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::User => "user",
            MessageKind::System => "system",
        }
    }

    /// Parses [`MessageKind::as_str`].
    ///
    /// # Errors
    /// `invalid` for any other string.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "user" => Ok(MessageKind::User),
            "system" => Ok(MessageKind::System),
            other => Err(Error::invalid(format!("unknown message kind {other:?}"))),
        }
    }
}

/// A stored message. A deleted message is a tombstone: its body is empty and
/// `deleted_at` is set; its `seq` stays taken forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Unique id.
    pub id: MessageId,
    /// The conversation whose log holds it.
    pub conversation: ConversationId,
    /// Its position in that log.
    pub seq: Seq,
    /// The author (for system messages, the user on whose behalf the embedder wrote).
    pub sender: UserId,
    /// The sender's idempotency key, if the client gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// User or system.
    pub kind: MessageKind,
    /// The text (empty once deleted).
    pub body: String,
    /// When the store committed it.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Message {
    /// True once deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// A message about to be appended. The store assigns `seq` in the appending transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The id to give it (ignored when the append turns out to be a retry).
    pub id: MessageId,
    /// Target conversation.
    pub conversation: ConversationId,
    /// Author.
    pub sender: UserId,
    /// Idempotency key: (sender, client id) appends at most once.
    pub client_id: Option<String>,
    /// User or system.
    pub kind: MessageKind,
    /// Validated body.
    pub body: String,
    /// Time of the append.
    pub created_at: DateTime<Utc>,
}

/// What an append returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored message (the original one when this was a retry).
    pub message: Message,
    /// True when (sender, client id) already existed and nothing new was written.
    pub duplicate: bool,
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryPage {
    /// The newest messages strictly before `seq` (or the newest of all when `None`),
    /// returned in ascending seq order.
    Before(Option<Seq>),
    /// The oldest messages strictly after `seq`, in ascending order.
    After(Seq),
}

/// The most bytes a client message id may have.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Checks a client message id: 1 to 64 bytes, no control characters.
///
/// # Errors
/// `invalid` when it breaks a rule.
pub fn validate_client_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_CLIENT_ID_BYTES || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "a client id has 1 to {MAX_CLIENT_ID_BYTES} bytes and no control characters"
        )));
    }
    Ok(())
}

/// Checks a message body: not blank, no NUL character, at most `max_bytes`.
///
/// # Errors
/// `too_large` over the limit, `invalid` when empty, only white space, or holding NUL.
pub fn validate_body(body: &str, max_bytes: usize) -> Result<()> {
    if body.len() > max_bytes {
        return Err(Error::too_large("the message body", body.len(), max_bytes));
    }
    if body.trim().is_empty() {
        return Err(Error::invalid("a message body must not be empty"));
    }
    if body.contains('\0') {
        return Err(Error::invalid(
            "a message body must not contain NUL characters",
        ));
    }
    Ok(())
}
