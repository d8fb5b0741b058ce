//! The `Transport` port: one client connection as the engine sees it.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::event::Event;

/// Turns events into frames of one wire format.
///
/// A fan-out encodes each event once per distinct [`Encoder::format`] among the
/// recipients and hands every recipient a clone of the same [`Bytes`] (invariant 8).
pub trait Encoder: Send + Sync + 'static {
    /// A stable name of the format (e.g. `"json-v1"`); encoders with the same name must
    /// produce the same bytes.
    fn format(&self) -> &'static str;

    /// Encodes one event.
    ///
    /// # Errors
    /// `internal` when the event cannot be encoded.
    fn encode(&self, event: &Event) -> Result<Bytes>;
}

/// The engine's own JSON encoding of events: the event object itself,
/// `{"type":"message","message":{…}}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonEncoder;

impl Encoder for JsonEncoder {
    fn format(&self) -> &'static str {
        "json"
    }

    fn encode(&self, event: &Event) -> Result<Bytes> {
        serde_json::to_vec(event)
            .map(Bytes::from)
            .map_err(|e| crate::Error::internal(format!("encoding an event: {e}")))
    }
}

/// Why a `try_send` did not queue the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The outbound queue is full.
    Full,
    /// The connection is closed.
    Closed,
}

/// Why the engine closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CloseReason {
    /// The client did not read fast enough and a durable event did not fit its queue.
    /// It should reconnect and resume by seq.
    SlowConsumer,
    /// The server is shutting down.
    Shutdown,
    /// The user's access was revoked by the embedder.
    Kicked,
}

impl CloseReason {
    /// The stable string form.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Kicked => "kicked",
        }
    }
}

/// One client connection, handed to the engine when a session opens.
///
/// Both methods must return at once: the engine calls them while fanning out and never
/// waits on a client.
pub trait Transport: Send + Sync + 'static {
    /// The encoder of this connection's wire format.
    fn encoder(&self) -> &Arc<dyn Encoder>;

    /// Queues an encoded frame without blocking.
    ///
    /// # Errors
    /// [`SendError::Full`] when the bounded queue has no room, [`SendError::Closed`] when
    /// the connection is gone.
    fn try_send(&self, frame: Bytes) -> std::result::Result<(), SendError>;

    /// Closes the connection with a reason; frames queued before stay queued for the
    /// writer to flush if it can.
    fn close(&self, reason: CloseReason);
}
