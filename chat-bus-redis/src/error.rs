//! Driver errors into chat-core's portable kinds, keeping the driver's error as the cause.
//!
//! The bus returns [`chat_core::Error`] (the port's error) rather than an error of its
//! own: every failure a caller can act on is `unavailable` (Redis is down or too slow,
//! try later) or `invalid` (a configuration that cannot work).

use chat_core::Error;
use fred::error::{Error as RedisError, ErrorKind};

/// True when `e` says the connection is down or slow, as opposed to a refusal by the
/// server (a permission, a wrong command).
pub(crate) fn is_connection(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::IO
            | ErrorKind::Canceled
            | ErrorKind::Timeout
            | ErrorKind::Backpressure
            | ErrorKind::Routing
    )
}

/// `unavailable` for a failed call: `what` names the call; the cause is kept for logs.
pub(crate) fn unavailable(what: &str, e: RedisError) -> Error {
    Error::unavailable(format!("the bus could not {what}")).with_source(e)
}

/// `unavailable` for a call that Redis did not answer in time.
pub(crate) fn timed_out(what: &str) -> Error {
    Error::unavailable(format!(
        "the bus could not {what}: Redis did not answer in time"
    ))
}
