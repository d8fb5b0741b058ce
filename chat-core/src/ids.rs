//! Typed identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Position of a message in its conversation's log: 1, 2, 3, … without gaps.
pub type Seq = u64;

/// The most bytes a user id may have.
pub const MAX_USER_ID_BYTES: usize = 128;

/// A user, as the embedding application names them (from the authenticator).
///
/// Opaque to the engine: 1 to 128 bytes, no control characters, no surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Validates and wraps a user id.
    ///
    /// # Errors
    /// `invalid` when empty, longer than [`MAX_USER_ID_BYTES`], padded with spaces, or
    /// holding control characters.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_USER_ID_BYTES {
            return Err(Error::invalid(format!(
                "a user id has 1 to {MAX_USER_ID_BYTES} bytes"
            )));
        }
        if id.trim() != id || id.chars().any(char::is_control) {
            return Err(Error::invalid(
                "a user id has no control characters and no surrounding spaces",
            ));
        }
        Ok(UserId(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UserId::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        UserId::new(s)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Uuid::parse_str(s)
                    .map($name)
                    .map_err(|_| Error::invalid(format!("{s:?} is not a valid id")))
            }
        }
    };
}

uuid_id!(
    /// A conversation: a room or a direct conversation.
    ConversationId
);
uuid_id!(
    /// A message, unique across conversations.
    MessageId
);
uuid_id!(
    /// One engine process in a cluster.
    NodeId
);

/// One open session (one client connection) on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}
