//! The engine's error type and its stable codes.
//!
//! Every transport and every store speaks these codes: the wire protocol and the HTTP
//! API put [`ErrorCode::as_str`] in their error bodies, and each store maps its driver's
//! errors into one of these kinds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A portable error kind with a stable string code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The thing asked for does not exist, or the caller may not know it exists.
    NotFound,
    /// The caller is known but may not do this.
    Forbidden,
    /// A direct message or direct conversation needs an accepted friendship.
    NotFriends,
    /// The input is malformed or breaks a rule (name, limit, range).
    Invalid,
    /// The input is larger than the configured maximum.
    TooLarge,
    /// The action conflicts with the current state (already exists, already friends, …).
    Conflict,
    /// The caller sends faster than allowed.
    RateLimited,
    /// A dependency (store, bus) is unavailable; the action may be retried.
    Unavailable,
    /// No valid credential.
    Unauthenticated,
    /// An unexpected failure inside the engine or a store.
    Internal,
}

impl ErrorCode {
    /// Every code, in a stable order (used by docs and tests).
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::NotFriends,
        ErrorCode::Invalid,
        ErrorCode::TooLarge,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Unauthenticated,
        ErrorCode::Internal,
    ];

    /// The stable string code, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFriends => "not_friends",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine's error: a kind with a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorCode::NotFound`].
    #[error("not found: {0}")]
    NotFound(String),
    /// See [`ErrorCode::Forbidden`].
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// See [`ErrorCode::NotFriends`].
    #[error("not friends: {0}")]
    NotFriends(String),
    /// See [`ErrorCode::Invalid`].
    #[error("invalid: {0}")]
    Invalid(String),
    /// See [`ErrorCode::TooLarge`].
    #[error("too large: {0}")]
    TooLarge(String),
    /// See [`ErrorCode::Conflict`].
    #[error("conflict: {0}")]
    Conflict(String),
    /// See [`ErrorCode::RateLimited`].
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// See [`ErrorCode::Unavailable`].
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// See [`ErrorCode::Unauthenticated`].
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// See [`ErrorCode::Internal`].
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The portable kind of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFriends(_) => ErrorCode::NotFriends,
            Error::Invalid(_) => ErrorCode::Invalid,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Builds an error of the given kind with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let m = message.into();
        match code {
            ErrorCode::NotFound => Error::NotFound(m),
            ErrorCode::Forbidden => Error::Forbidden(m),
            ErrorCode::NotFriends => Error::NotFriends(m),
            ErrorCode::Invalid => Error::Invalid(m),
            ErrorCode::TooLarge => Error::TooLarge(m),
            ErrorCode::Conflict => Error::Conflict(m),
            ErrorCode::RateLimited => Error::RateLimited(m),
            ErrorCode::Unavailable => Error::Unavailable(m),
            ErrorCode::Unauthenticated => Error::Unauthenticated(m),
            ErrorCode::Internal => Error::Internal(m),
        }
    }

    /// A `too_large` error naming what was too large, its size and the maximum.
    pub fn too_large(what: &str, size: usize, max: usize) -> Self {
        Error::TooLarge(format!("{what} is {size} bytes, the maximum is {max}"))
    }

    /// Shorthand for a `not_found` error.
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }
}

/// The body of an error as transports send it: `{ "code": "...", "message": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            code: e.code(),
            message: e.to_string(),
        }
    }
}
