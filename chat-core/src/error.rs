//! The engine's error type and its stable codes.
//!
//! Every transport and every store speaks these codes: the wire protocol and the HTTP
//! API put [`ErrorCode::as_str`] in their error bodies, and each store maps its driver's
//! errors into one of these kinds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A portable error kind with a stable string code. Ordered as [`ErrorCode::ALL`], so it
/// can key a sorted map (counts by kind in [`Stats`](crate::engine::Stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl ErrorCode {
    /// The words that open an error's text (`not found: …`).
    fn label(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFriends => "not friends",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooLarge => "too large",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Internal => "internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine's error: a stable [`ErrorCode`], a human message, and (for failures of a
/// dependency) the error that caused it.
///
/// Transports show clients the code, the message and the retry hint only; the cause is
/// for logs ([`std::error::Error::source`] walks the driver's chain).
#[derive(Clone, thiserror::Error)]
#[error("{}: {message}", code.label())]
#[non_exhaustive]
pub struct Error {
    code: ErrorCode,
    message: String,
    /// How long the caller should wait before trying again, when the engine knows.
    retry_after: Option<Duration>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code).field("message", &self.message);
        if let Some(after) = &self.retry_after {
            d.field("retry_after", after);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

/// Two errors are equal when their code and message are (the retry hint and the cause are
/// not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl Eq for Error {}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        impl Error {
            $(
                $(#[$doc])*
                pub fn $name(message: impl Into<String>) -> Self {
                    Error::new(ErrorCode::$code, message)
                }
            )*
        }
    };
}

constructors! {
    /// A `not_found` error.
    not_found => NotFound,
    /// A `forbidden` error.
    forbidden => Forbidden,
    /// A `not_friends` error.
    not_friends => NotFriends,
    /// An `invalid` error.
    invalid => Invalid,
    /// A `conflict` error.
    conflict => Conflict,
    /// A `rate_limited` error.
    rate_limited => RateLimited,
    /// An `unavailable` error.
    unavailable => Unavailable,
    /// An `unauthenticated` error.
    unauthenticated => Unauthenticated,
    /// An `internal` error.
    internal => Internal,
}

impl Error {
    /// Builds an error of the given kind with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// The same error, caused by `source` (kept for logs, never shown to clients).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same error, with a hint that the caller may retry after `after` (an overloaded
    /// node, a saturated store pool). Transports put it on the wire; clients should add
    /// jitter to it so that refused callers do not come back all at once.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// How long the caller should wait before retrying, when the engine or the store knows
    /// (see [`Error::with_retry_after`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The portable kind of this error.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human message, without the code's label.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A `too_large` error naming what was too large, its size and the maximum.
    pub fn too_large(what: &str, size: usize, max: usize) -> Self {
        Error::new(
            ErrorCode::TooLarge,
            format!("{what} is {size} bytes, the maximum is {max}"),
        )
    }
}

/// The body of an error as transports send it:
/// `{ "code": "...", "message": "...", "retry_after_ms": 1000 }` (the hint only when the
/// engine gave one: the client may retry after that long, with the same client id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// When to retry, in milliseconds, when the engine knows (an overloaded or briefly
    /// unavailable store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    /// A body with no retry hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            code: e.code(),
            message: e.to_string(),
            retry_after_ms: e
                .retry_after()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_survives_and_the_text_keeps_its_code() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::unavailable("the store is unreachable").with_source(io);
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert_eq!(e.to_string(), "unavailable: the store is unreachable");
        let cause = std::error::Error::source(&e).expect("the cause is kept");
        assert_eq!(cause.to_string(), "refused");
        assert_eq!(ErrorBody::from(&e).message, e.to_string());
        // Equality ignores the cause.
        assert_eq!(e, Error::unavailable("the store is unreachable"));
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn a_retry_hint_is_kept_with_the_cause_and_shown_in_debug() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "pool wait");
        let e = Error::unavailable("busy")
            .with_source(io)
            .with_retry_after(Duration::from_millis(1500));
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert!(std::error::Error::source(&e).is_some());
        assert!(format!("{e:?}").contains("retry_after: 1.5s"), "{e:?}");
        // The text is unchanged: the hint is a field, not prose.
        assert_eq!(e.to_string(), "unavailable: busy");
        // A clone keeps it.
        assert_eq!(e.clone().retry_after(), Some(Duration::from_millis(1500)));
    }
}
