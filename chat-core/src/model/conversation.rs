//! Conversations: rooms (named, many members) and direct conversations (two users).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Seq, UserId};
use crate::model::watermark::Watermarks;

/// Who may join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone may join.
    #[default]
    Public,
    /// Only by invitation from an owner.
    Private,
}

impl Visibility {
    /// The stable name (`public` or `private`), as stores keep it.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    /// Parses [`Visibility::as_str`].
    ///
    /// # Errors
    /// `invalid` for any other string.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            other => Err(Error::invalid(format!("unknown visibility {other:?}"))),
        }
    }
}

/// What kind of conversation this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConversationKind {
    /// A named room with many members.
    Room {
        /// The room's unique name.
        name: String,
        /// Who may join.
        visibility: Visibility,
    },
    /// A conversation between exactly two users, kept in sorted order.
    Direct {
        /// The user whose id sorts first.
        a: UserId,
        /// The user whose id sorts second.
        b: UserId,
    },
}

/// A conversation and its log position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Room or direct.
    #[serde(flatten)]
    pub kind: ConversationKind,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The seq of the newest message (0 when empty).
    pub last_seq: Seq,
}

impl Conversation {
    /// True for rooms.
    pub fn is_room(&self) -> bool {
        matches!(self.kind, ConversationKind::Room { .. })
    }
}

impl ConversationKind {
    /// For a direct conversation, the other user than `me` (`None` for a room, or when
    /// `me` is not one of the pair).
    pub fn peer_of(&self, me: &UserId) -> Option<&UserId> {
        match self {
            ConversationKind::Direct { a, b } if a == me => Some(b),
            ConversationKind::Direct { a, b } if b == me => Some(a),
            _ => None,
        }
    }
}

/// The two users of a direct conversation in canonical (sorted) order.
///
/// Opening a direct conversation for `(x, y)` or `(y, x)` yields the same pair, so a store
/// keyed by it keeps one conversation per pair.
///
/// # Errors
/// `invalid` when both users are the same.
pub fn direct_pair(x: &UserId, y: &UserId) -> Result<(UserId, UserId)> {
    match x.cmp(y) {
        std::cmp::Ordering::Less => Ok((x.clone(), y.clone())),
        std::cmp::Ordering::Greater => Ok((y.clone(), x.clone())),
        std::cmp::Ordering::Equal => Err(Error::invalid(
            "a direct conversation needs two different users",
        )),
    }
}

/// A member's role in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May invite to a private room (and is the creator by default).
    Owner,
    /// An ordinary member.
    Member,
}

impl Role {
    /// The stable name (`owner` or `member`), as stores keep it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    /// Parses [`Role::as_str`].
    ///
    /// # Errors
    /// `invalid` for any other string.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Role::Owner),
            "member" => Ok(Role::Member),
            other => Err(Error::invalid(format!("unknown role {other:?}"))),
        }
    }
}

/// One user's membership of one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The conversation.
    pub conversation: ConversationId,
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// Their delivered and read watermarks.
    #[serde(flatten)]
    pub watermarks: Watermarks,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A new room, as handed to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    /// Its id (from the engine's id generator).
    pub id: ConversationId,
    /// Its validated name.
    pub name: String,
    /// Who may join.
    pub visibility: Visibility,
    /// The creator, who becomes its first owner.
    pub created_by: UserId,
    /// Creation time (from the engine's clock).
    pub created_at: DateTime<Utc>,
}

/// A new direct conversation, as handed to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDirect {
    /// The id to use if the pair has no conversation yet.
    pub id: ConversationId,
    /// One user (any order).
    pub user: UserId,
    /// The other user.
    pub peer: UserId,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// The most bytes a room name may have.
pub const MAX_ROOM_NAME_BYTES: usize = 64;

/// Checks a room name: 1 to 64 bytes of letters, digits, spaces and `-_.#`, not padded
/// with spaces, and not shaped like an id (so a name never passes for an id).
///
/// # Errors
/// `invalid` naming the rule broken.
pub fn validate_room_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_ROOM_NAME_BYTES {
        return Err(Error::invalid(format!(
            "a room name has 1 to {MAX_ROOM_NAME_BYTES} bytes"
        )));
    }
    if name.trim() != name {
        return Err(Error::invalid(
            "a room name has no leading or trailing spaces",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '#'))
    {
        return Err(Error::invalid(
            "a room name holds letters, digits, spaces and - _ . # only",
        ));
    }
    if uuid::Uuid::parse_str(name).is_ok() {
        return Err(Error::invalid("a room name must not look like an id"));
    }
    Ok(())
}

/// A room named by id or by name (a string that parses as an id is an id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RoomRef {
    /// By id.
    Id(ConversationId),
    /// By unique name.
    Name(String),
}

impl From<String> for RoomRef {
    fn from(s: String) -> Self {
        match uuid::Uuid::parse_str(&s) {
            Ok(u) => RoomRef::Id(ConversationId(u)),
            Err(_) => RoomRef::Name(s),
        }
    }
}

impl From<RoomRef> for String {
    fn from(r: RoomRef) -> Self {
        match r {
            RoomRef::Id(id) => id.to_string(),
            RoomRef::Name(n) => n,
        }
    }
}

impl From<ConversationId> for RoomRef {
    fn from(id: ConversationId) -> Self {
        RoomRef::Id(id)
    }
}
