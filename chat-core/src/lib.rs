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
//! - [`event`]: what the engine emits ([`Event`]) and to whom ([`event::Audience`],
//!   [`event::Delivery`]); below the ports, so the graph runs one way:
//!   model ← event ← ports ← engine.
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
//! | `openapi` | no | `utoipa::ToSchema` on the types the HTTP API answers with (replies, errors, stats); chat-transport-ws turns it on for its OpenAPI document |
#![doc = include_str!("../README.md")]

/// Gives a `type`-tagged enum its one list of wire kinds: `KINDS` and `kind()` come from
/// the same table, and the `match` in `kind()` is exhaustive, so a new variant that is not
/// named here does not compile.
macro_rules! wire_kinds {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every `type` tag, in declaration order: the only list of this enum's wire kinds.
            pub const KINDS: &'static [&'static str] = &[$($name),*];

            /// This value's `type` tag.
            pub fn kind(&self) -> &'static str {
                match self {
                    $($ty::$variant { .. } => $name,)*
                }
            }
        }
    };
}

pub mod engine;
pub mod error;
pub mod event;
pub mod ids;
pub mod memory;
pub mod model;
pub mod ports;

#[cfg(feature = "conformance")]
pub mod bus_conformance;
#[cfg(feature = "conformance")]
pub mod conformance;

pub use engine::{Command, Engine, EngineBuilder, Event, Reply, Session};
pub use error::{Error, ErrorCode, Result};
pub use ids::{ConversationId, MessageId, NodeId, Seq, SessionId, UserId};
