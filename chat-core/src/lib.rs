//! # chat-core
//!
//! The transport-agnostic real-time chat engine: rooms, direct conversations gated by
//! friendship, message status (sent, delivered, read) from per-member watermarks, unread
//! counts, presence and typing, with history kept by a pluggable [`Store`](ports::Store).
//!
//! # Layout
//!
//! - [`model`]: plain data and pure functions (no async, no I/O): ids, conversations,
//!   messages, watermarks and derived status, friendships, presence, typing, limits.
//! - [`engine`]: the async orchestration. [`Engine`] is a cheap-to-clone handle; a
//!   transport opens a [`Session`] per authenticated connection; one file per command
//!   under `engine/command/`.
//! - [`ports`]: the traits the engine needs: [`Store`](ports::Store),
//!   [`Bus`](ports::Bus), [`Transport`](ports::Transport),
//!   [`Authenticator`](ports::Authenticator), [`Policy`](ports::Policy),
//!   [`Clock`](ports::Clock), [`IdGen`](ports::IdGen).
//! - [`memory`]: in-memory store, bus and transport, for tests, benches and one process.
//! - `conformance` (feature `conformance`): the store conformance suite.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `conformance` | no | `chat_core::conformance`, one `pub async fn` per store behaviour, and the `conformance_tests!` macro |
#![doc = include_str!("../README.md")]

pub mod engine;
pub mod error;
pub mod ids;
pub mod memory;
pub mod model;
pub mod ports;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use engine::{Command, Engine, EngineBuilder, Event, Reply, Session};
pub use error::{Error, ErrorCode, Result};
pub use ids::{ConversationId, MessageId, NodeId, Seq, SessionId, UserId};
