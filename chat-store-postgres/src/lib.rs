//! # chat-store-postgres
//!
//! The server store for chat-core: a [`Store`](chat_core::ports::Store) on PostgreSQL,
//! shared by several engine nodes. tokio-postgres with a deadpool pool; every query is a
//! prepared statement cached per connection; appends are coalesced into batches.
//!
//! ```no_run
//! use chat_store_postgres::{PgConfig, PgStore};
//!
//! # async fn run() -> Result<(), chat_store_postgres::Error> {
//! let store = PgStore::open(
//!     PgConfig::new("postgres://postgres@127.0.0.1:5432/postgres")
//!         .schema("chat")
//!         .pool_size(16)
//!         .max_batch(512),
//! )
//! .await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`PgConfig`]: URL, pool size, schema, batch size, time-outs.
//! - `store`: [`PgStore`] and its `Store` implementation; `store/` has one module per
//!   section of the `Store` trait (`users`, `conversations`, `members`, `messages`,
//!   `watermarks`, `friendships`).
//! - `sql`: every statement, as a named constant, and the position of each column in the
//!   column lists they share; tests check that each statement can walk an index
//!   (`EXPLAIN`) and that the positions match the lists.
//! - `rows`: rows to model types, reading columns by those positions or by name.
//! - `append`: batched appends (group commit): a writer task drains a channel into one
//!   transaction of five statements per batch; gap-free seqs with several nodes.
//! - `tls`: [`SslMode`]: `sslmode` and `sslrootcert` from the URL, on rustls (the
//!   system's roots or a given PEM file).
//! - `migrate` and `migrations/*.sql`: versioned schema, applied on open under an
//!   advisory lock; a newer schema is refused ([`SCHEMA_VERSION`]).
//! - [`error`]: the typed errors of [`PgStore::open`], and the mapping of driver errors
//!   into chat-core's portable kinds (`unavailable` when the server is gone, `conflict`
//!   for a unique violation, …).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | `PgConfig::drop_schema_on_drop`: the store drops its schema when dropped, for tests and benchmarks that give each run a schema of its own. Destructive, so absent from production builds. |
//!
//! # Several nodes
//!
//! Every node opens the same database and schema. A conversation's `seq` comes from its
//! row's `last_seq`, read and moved under a row lock inside the appending transaction;
//! batches lock their conversations in id order, so they never deadlock. Idempotency by
//! (sender, client id) is a unique index: a node that loses a race on it rolls back and
//! retries, and returns the winner's message as a duplicate.

pub mod config;
pub mod error;

mod append;
mod migrate;
mod rows;
mod sql;
mod store;
mod tls;

pub use config::PgConfig;
pub use error::{Error, Result};
pub use migrate::SCHEMA_VERSION;
pub use store::PgStore;
pub use tls::SslMode;
