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
    /// The seq this message replies to, in the same conversation, as its sender gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Seq>,
    /// The root of the thread this reply belongs to: `reply_to` when that message is not
    /// itself a reply, else that message's thread. Absent on messages that are not replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<Seq>,
    /// On a thread root: how many replies in its thread are not deleted (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reply_count: u32,
    /// Files the embedder's upload service holds, by reference (empty once deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A file attached to a message by reference: the server stores the descriptor, never the
/// file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// Where the file is: an absolute `https://` or `http://` URL, at most 2,048 bytes.
    pub url: String,
    /// Its media type, `type/subtype` (e.g. `image/png`), at most 127 bytes.
    pub mime_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its file name as shown to users: 1 to 255 bytes, no control characters.
    pub name: String,
}

/// The most bytes in an attachment's URL.
pub const MAX_ATTACHMENT_URL_BYTES: usize = 2048;
/// The most bytes in an attachment's media type.
pub const MAX_ATTACHMENT_MIME_BYTES: usize = 127;
/// The most bytes in an attachment's file name.
pub const MAX_ATTACHMENT_NAME_BYTES: usize = 255;

/// Checks a message's attachments: at most `max` of them, each with an `http(s)` URL, a
/// `type/subtype` media type and a file name.
///
/// # Errors
/// `too_large` for more than `max` attachments or an overlong field, `invalid` for a
/// malformed one.
pub fn validate_attachments(attachments: &[Attachment], max: usize) -> Result<()> {
    if attachments.len() > max {
        return Err(Error::new(
            crate::error::ErrorCode::TooLarge,
            format!(
                "a message carries {} attachments, the maximum is {max}",
                attachments.len()
            ),
        ));
    }
    for a in attachments {
        if a.url.len() > MAX_ATTACHMENT_URL_BYTES {
            return Err(Error::too_large(
                "an attachment's url",
                a.url.len(),
                MAX_ATTACHMENT_URL_BYTES,
            ));
        }
        if a.mime_type.len() > MAX_ATTACHMENT_MIME_BYTES {
            return Err(Error::too_large(
                "an attachment's mime_type",
                a.mime_type.len(),
                MAX_ATTACHMENT_MIME_BYTES,
            ));
        }
        if a.name.len() > MAX_ATTACHMENT_NAME_BYTES {
            return Err(Error::too_large(
                "an attachment's name",
                a.name.len(),
                MAX_ATTACHMENT_NAME_BYTES,
            ));
        }
        let lower = a.url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            || a.url.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::invalid(
                "an attachment's url is an absolute http:// or https:// URL without spaces",
            ));
        }
        if !valid_mime(&a.mime_type) {
            return Err(Error::invalid(
                "an attachment's mime_type is type/subtype, e.g. image/png",
            ));
        }
        if a.name.trim().is_empty() || a.name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "an attachment's name is not blank and has no control characters",
            ));
        }
    }
    Ok(())
}

/// `type/subtype`, each part a non-empty run of RFC 6838 name characters.
fn valid_mime(s: &str) -> bool {
    let name = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(s.split_once('/'), Some((t, st)) if name(t) && name(st))
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
    /// The seq replied to (checked to exist in the conversation).
    pub reply_to: Option<Seq>,
    /// The thread root (see [`Message::thread`]); the store adds one to its
    /// `reply_count` in the appending transaction.
    pub thread: Option<Seq>,
    /// Validated attachments.
    pub attachments: Vec<Attachment>,
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
