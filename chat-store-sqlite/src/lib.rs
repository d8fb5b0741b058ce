//! # chat-store-sqlite
//!
//! The embedded default [`Store`](chat_core::ports::Store) of the chat engine: one SQLite
//! file (bundled SQLite, no system library), WAL mode, a single writer with group commit,
//! and a small pool of read-only connections.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chat_store_sqlite::Error> {
//! use chat_store_sqlite::{Config, SqliteStore};
//! let store = SqliteStore::open(Config::path("chat.db")).await?;
//! // hand it to the engine as an `Arc<dyn Store>`
//! # let _ = store; Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`Config`] — path or in-memory, `synchronous` (FULL by default), busy
//!   timeout, read pool size, maximum batch size.
//! - `store`: [`SqliteStore`], the `Store` implementation: writes go to the writer, reads
//!   to the pool. `store/` has one module per section of the `Store` trait (`users`,
//!   `conversations`, `members`, `messages`, `watermarks`, `friendships`), plus `open`.
//! - `writer`: the one thread that owns the write connection. It drains queued writes (up
//!   to the maximum batch), runs them in one transaction, commits, and only then answers
//!   each caller. It keeps every conversation's last `seq` in memory, so an append is one
//!   `INSERT` (plus one `UPDATE` of `last_seq` per conversation per batch).
//! - `pool`: read-only connections used on tokio's blocking threads.
//! - `schema`: the versioned migrations, applied on open; a database from a newer
//!   version is refused untouched ([`Error::SchemaTooNew`]).
//! - `sql`: every statement, in one place, and the position of each column in the
//!   column lists they share; tests check that none scans a table and that the positions
//!   match the lists.
//! - `row`: conversions between rows and the model (times as unix milliseconds, ids as
//!   16-byte blobs), reading columns by those positions or by name.
//! - [`error`]: why opening failed, and how SQLite errors map to the engine's kinds.

pub mod config;
pub mod error;
mod pool;
mod row;
mod schema;
mod sql;
mod store;
mod writer;

pub use config::{Config, Location, Synchronous};
pub use error::{Error, Result};
pub use schema::SCHEMA_VERSION;
pub use store::SqliteStore;
