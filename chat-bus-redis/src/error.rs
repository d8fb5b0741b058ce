//! Driver errors into chat-core's portable kinds, keeping the driver's error as the cause.
//!
//! The bus returns [`chat_core::Error`] (the port's error) rather than an error of its
//! own: a failure is `unavailable` (Redis is down, too slow, or refused the call: try
//! later) or, from `connect`, `invalid` (a configuration that cannot work); `internal`
//! only for what cannot happen (a reply of the wrong shape).

use chat_core::Error;
use fred::error::Error as RedisError;

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
