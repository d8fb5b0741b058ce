//! One error-code → gRPC status table for the whole crate, and how a status carries our
//! stable code.
//!
//! Every refused call, and every stream the server ends, carries the stable code twice:
//! in the `chat-error-code` metadata entry (trailers) and as the `reason` of a
//! `google.rpc.ErrorInfo` detail (upper case, domain [`ERROR_DOMAIN`], the code as it is
//! written on the wire in its `code` metadata). An engine retry hint adds
//! `chat-retry-after-ms` and a `google.rpc.RetryInfo` detail.

use std::collections::HashMap;
use std::time::Duration;

use chat_core::ports::CloseReason;
use chat_core::{Error, ErrorCode};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The metadata entry that holds the stable code of a refused call or an ended stream.
pub const ERROR_CODE_KEY: &str = "chat-error-code";

/// The metadata entry that holds the engine's retry hint, in milliseconds.
pub const RETRY_AFTER_KEY: &str = "chat-retry-after-ms";

/// The `domain` of the `google.rpc.ErrorInfo` details this server attaches.
pub const ERROR_DOMAIN: &str = "chat";

/// The gRPC status code of each stable error code. `docs/grpc.md` prints the same table
/// (a test checks it).
pub fn code_of(code: ErrorCode) -> Code {
    match code {
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::Forbidden => Code::PermissionDenied,
        ErrorCode::NotFriends => Code::FailedPrecondition,
        ErrorCode::Invalid | ErrorCode::TooLarge => Code::InvalidArgument,
        ErrorCode::Conflict => Code::AlreadyExists,
        ErrorCode::RateLimited => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        _ => Code::Internal,
    }
}

/// Why the server ends a `Connect` stream, beyond the engine's [`CloseReason`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The engine closed the session (slow consumer, shutdown, kicked).
    Engine(CloseReason),
    /// The credential expired and no `refresh_token` replaced it.
    TokenExpired,
}

impl StreamEnd {
    /// The stable string in `chat-error-code` when the stream ends this way.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamEnd::Engine(reason) => reason.as_str(),
            StreamEnd::TokenExpired => "token_expired",
        }
    }

    /// The gRPC status code the stream ends with.
    pub fn code(self) -> Code {
        match self {
            StreamEnd::Engine(CloseReason::SlowConsumer) => Code::ResourceExhausted,
            StreamEnd::Engine(CloseReason::Kicked) => Code::PermissionDenied,
            StreamEnd::TokenExpired => Code::Unauthenticated,
            _ => Code::Unavailable,
        }
    }

    /// True when the frames already queued go out before the status (a shutdown); every
    /// other end drops them (the client resumes by seq).
    pub(crate) fn delivers_backlog(self) -> bool {
        matches!(self, StreamEnd::Engine(CloseReason::Shutdown))
    }

    fn message(self) -> &'static str {
        match self {
            StreamEnd::Engine(CloseReason::SlowConsumer) => {
                "slow consumer: the stream did not read fast enough; reconnect and resume"
            }
            StreamEnd::Engine(CloseReason::Shutdown) => "the server is shutting down",
            StreamEnd::Engine(CloseReason::Kicked) => "access revoked",
            StreamEnd::TokenExpired => "the token expired",
            _ => "the stream was closed",
        }
    }

    /// The status that ends the stream.
    pub fn status(self) -> Status {
        with_code(self.code(), self.message(), self.as_str(), None)
    }
}

/// The status of an engine error: the table's code, the error's text (as protocol v1
/// shows it), and the stable code in metadata and details. The cause stays in logs.
pub fn status_of(e: &Error) -> Status {
    with_code(
        code_of(e.code()),
        e.to_string(),
        e.code().as_str(),
        e.retry_after(),
    )
}

fn with_code(
    code: Code,
    message: impl Into<String>,
    stable: &'static str,
    retry_after: Option<Duration>,
) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(ERROR_CODE_KEY, MetadataValue::from_static(stable));
    let info = HashMap::from([("code".to_owned(), stable.to_owned())]);
    let mut details = ErrorDetails::new();
    details.set_error_info(stable.to_ascii_uppercase(), ERROR_DOMAIN, info);
    if let Some(after) = retry_after {
        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        metadata.insert(RETRY_AFTER_KEY, MetadataValue::from(ms));
        details.set_retry_info(Some(after));
    }
    Status::with_error_details_and_metadata(code, message, details, metadata)
}

/// The stable code a status carries (`chat-error-code`), if any.
pub fn stable_code(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get(ERROR_CODE_KEY)
        .and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_carries_its_stable_code() {
        for code in ErrorCode::ALL {
            let e = Error::new(code, "x");
            let status = status_of(&e);
            assert_eq!(status.code(), code_of(code));
            assert_eq!(stable_code(&status), Some(code.as_str()));
            let info = status.get_details_error_info().expect("error info");
            assert_eq!(info.reason, code.as_str().to_ascii_uppercase());
            assert_eq!(info.domain, ERROR_DOMAIN);
            assert_eq!(info.metadata["code"], code.as_str());
            assert_eq!(status.message(), e.to_string());
        }
        // Only `internal` maps to INTERNAL: no code falls through by accident.
        let internal: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| code_of(*c) == Code::Internal)
            .collect();
        assert_eq!(internal, [ErrorCode::Internal]);
    }

    #[test]
    fn a_retry_hint_travels_in_metadata_and_details() {
        let e = Error::unavailable("busy").with_retry_after(Duration::from_millis(1500));
        let status = status_of(&e);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status
                .metadata()
                .get(RETRY_AFTER_KEY)
                .map(|v| v.to_str().ok()),
            Some(Some("1500"))
        );
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(1500)));
        assert!(status_of(&Error::unavailable("down"))
            .metadata()
            .get(RETRY_AFTER_KEY)
            .is_none());
    }

    #[test]
    fn a_slow_consumer_ends_with_resource_exhausted_and_its_code() {
        let status = StreamEnd::Engine(CloseReason::SlowConsumer).status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(stable_code(&status), Some("slow_consumer"));
        let status = StreamEnd::TokenExpired.status();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(stable_code(&status), Some("token_expired"));
        assert!(StreamEnd::Engine(CloseReason::Shutdown).delivers_backlog());
        assert!(!StreamEnd::Engine(CloseReason::SlowConsumer).delivers_backlog());
    }
}
