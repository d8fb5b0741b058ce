//! What a command can fail with.

use std::fmt;

/// Why a command (or [`Client::connect`](crate::Client::connect)) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the command: its stable code, message and retry hint, exactly
    /// as sent (protocol §6). The connection is still usable.
    Server(chat_core::Error),
    /// The connection dropped while the command was on its way, so whether it took effect
    /// is unknown. Sends are never failed this way: they are retried with their
    /// `client_id` until acknowledged.
    Disconnected,
    /// No answer within [`Config::request_timeout`](crate::Config::request_timeout)
    /// (which includes waiting for a connection).
    Timeout,
    /// The client was closed: by [`Client::close`](crate::Client::close), by the server
    /// closing with `4003` (kicked), or because the first connection failed.
    Closed,
    /// The first connection could not be made: the server refused the token (HTTP 401,
    /// `unauthenticated`), or could not be reached.
    Connect(String),
    /// The server answered with a reply of the wrong kind.
    Protocol(String),
}

impl ClientError {
    /// The server's error code, when the server refused the command.
    pub fn code(&self) -> Option<chat_core::ErrorCode> {
        match self {
            ClientError::Server(e) => Some(e.code()),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Server(e) => write!(f, "{}: {}", e.code(), e.message()),
            ClientError::Disconnected => f.write_str("the connection dropped before the answer"),
            ClientError::Timeout => f.write_str("no answer in time"),
            ClientError::Closed => f.write_str("the client is closed"),
            ClientError::Connect(why) => write!(f, "could not connect: {why}"),
            ClientError::Protocol(why) => write!(f, "unexpected answer: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}
