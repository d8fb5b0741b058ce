use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};

use crate::event::Event;
use crate::ports::{CloseReason, Encoder, JsonEncoder, SendError, Transport};

/// A [`Transport`] whose frames go to a bounded in-process queue, read through the
/// paired [`MemoryConnection`]. Used by engine tests and the in-process benchmark.
pub struct MemoryTransport {
    encoder: Arc<dyn Encoder>,
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
}

struct Shared {
    closed: Mutex<Option<CloseReason>>,
    notify: Notify,
}

/// The client end of a [`MemoryTransport`].
pub struct MemoryConnection {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("format", &self.encoder.format())
            .field("closed", &*self.shared.closed.lock())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MemoryConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryConnection")
            .field("queued", &self.rx.len())
            .field("closed", &*self.shared.closed.lock())
            .finish()
    }
}

/// What [`MemoryConnection::recv`] got.
// Returned by value once per receive and never stored in bulk, so the size of a message
// event costs nothing that boxing it would not cost more.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An event.
    Event(Event),
    /// The engine closed the connection, after every queued frame was read.
    Closed(CloseReason),
}

impl MemoryTransport {
    /// A transport with a queue of `capacity` frames, encoding with the engine's JSON.
    pub fn new(capacity: usize) -> (Arc<MemoryTransport>, MemoryConnection) {
        Self::with_encoder(capacity, Arc::new(JsonEncoder))
    }

    /// A transport with a queue of `capacity` frames and the given encoder.
    pub fn with_encoder(
        capacity: usize,
        encoder: Arc<dyn Encoder>,
    ) -> (Arc<MemoryTransport>, MemoryConnection) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(Shared {
            closed: Mutex::new(None),
            notify: Notify::new(),
        });
        (
            Arc::new(MemoryTransport {
                encoder,
                tx,
                shared: shared.clone(),
            }),
            MemoryConnection { rx, shared },
        )
    }
}

impl Transport for MemoryTransport {
    fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    fn try_send(&self, frame: Bytes) -> Result<(), SendError> {
        if self.shared.closed.lock().is_some() {
            return Err(SendError::Closed);
        }
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    fn close(&self, reason: CloseReason) {
        let mut closed = self.shared.closed.lock();
        if closed.is_none() {
            *closed = Some(reason);
            self.shared.notify.notify_waiters();
            self.shared.notify.notify_one();
        }
    }
}

impl MemoryConnection {
    /// The next raw frame, if one is queued now.
    pub fn try_recv_frame(&mut self) -> Option<Bytes> {
        self.rx.try_recv().ok()
    }

    /// Every event queued now, decoded as the engine's JSON.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(f) = self.try_recv_frame() {
            if let Ok(e) = serde_json::from_slice(&f) {
                out.push(e);
            }
        }
        out
    }

    /// Why the engine closed this connection, if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        *self.shared.closed.lock()
    }

    /// Waits for the next event, or the close once the queue is empty. Returns `None`
    /// when the transport was dropped with nothing left to read.
    pub async fn recv(&mut self) -> Option<Received> {
        loop {
            if let Some(f) = self.try_recv_frame() {
                match serde_json::from_slice(&f) {
                    Ok(e) => return Some(Received::Event(e)),
                    Err(_) => continue,
                }
            }
            if let Some(reason) = self.close_reason() {
                return Some(Received::Closed(reason));
            }
            tokio::select! {
                f = self.rx.recv() => match f {
                    Some(f) => {
                        if let Ok(e) = serde_json::from_slice(&f) {
                            return Some(Received::Event(e));
                        }
                    }
                    None => return self.close_reason().map(Received::Closed),
                },
                () = self.shared.notify.notified() => {}
            }
        }
    }
}
