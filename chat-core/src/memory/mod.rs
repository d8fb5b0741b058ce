//! In-memory adapters: a [`MemoryStore`], a [`MemoryBus`] and a [`MemoryTransport`].
//!
//! Good enough for tests, benches and a single process; correct under concurrency (each
//! holds its state behind one lock, so every operation is atomic).

mod bus;
mod store;
mod transport;

pub use bus::MemoryBus;
pub use store::MemoryStore;
pub use transport::{MemoryConnection, MemoryTransport, Received};
