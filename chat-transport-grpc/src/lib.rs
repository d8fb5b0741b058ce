//! # chat-transport-grpc
//!
//! gRPC for [`chat_core`] on tonic: `proto/chat.proto` (service `chat.ChatService`), with
//! the reference calls `SendMessage` and `GetMessages`, one unary call per command of
//! protocol v1, and a bidirectional `Connect` stream that behaves as a WebSocket
//! connection does (hello first, commands in order, a bounded queue, slow consumers cut
//! off, the token's expiry honoured). `docs/grpc.md` is the guide: the service,
//! authentication, TLS and mutual TLS, the error table.
//!
//! The transport authenticates, translates and writes; it decides nothing (invariant 9).
//! The engine sees each `Connect` stream as a [`Transport`](chat_core::ports::Transport)
//! whose encoder writes [`proto::ServerFrame`]s, once per event whatever the number of
//! recipients.
//!
//! # Layout
//!
//! - `config`: [`GrpcConfig`], queue size, write timeout, keepalive, message sizes,
//!   [`ClientCertIdentity`].
//! - `state`: [`GrpcState`], the engine, the authenticator and the settings; the event
//!   encoder; the unary calls' per-user rate.
//! - `auth`: the bearer token in `authorization` metadata, or a client certificate's
//!   subject CN (mutual TLS, off by default).
//! - [`proto`]: the messages (`chat-proto`'s) and the generated client (code generation
//!   in `build.rs`, with the pure-Rust `protox`: no `protoc` needed). The conversions
//!   between messages and the engine's types are `chat_proto::convert`.
//! - `service`: the unary calls; `reference`: `SendMessage` and `GetMessages`.
//! - `connect`: the `Connect` stream: its reader, its bounded outbox, its codec.
//! - [`error`]: the one error-code → gRPC status table ([`code_of`]), and the stable
//!   code in every refusal (`chat-error-code`, `google.rpc.ErrorInfo`).
//! - `server`: [`serve`]: accepting (plain or TLS), health, reflection, shutdown.
//!
//! # Serving
//!
//! ```no_run
//! use std::sync::Arc;
//! use chat_core::memory::MemoryStore;
//! use chat_core::ports::{Identity, StaticTokens};
//! use chat_core::{Engine, UserId};
//! use chat_transport_grpc::{GrpcConfig, GrpcState};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(Arc::new(MemoryStore::new())).build().await?;
//! let tokens = StaticTokens::new().with("t0k3n", Identity::new(UserId::new("alice")?));
//! let state = GrpcState::new(engine, Arc::new(tokens), GrpcConfig::default());
//!
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # let _ = stop;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4770").await?;
//! // `Some(Arc<rustls::ServerConfig>)` instead of `None` serves TLS.
//! chat_transport_grpc::serve(listener, state, None, async {
//!     let _ = stopped.await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod config;
mod connect;
pub mod error;
mod reference;
mod server;
mod service;
mod state;

pub use chat_proto::MAX_REQUEST_ID_BYTES;
pub use config::{ClientCertIdentity, GrpcConfig};
pub use error::{code_of, status_of, ERROR_CODE_KEY};
pub use server::{serve, Error, Result, SERVICE_NAME};
pub use state::GrpcState;

/// The protocol version `hello` announces (the commands and events of protocol v1).
pub const PROTOCOL_VERSION: u32 = 1;

/// The messages and the client generated from `proto/chat.proto`.
///
/// A Rust client connects a `tonic` channel and wraps it:
/// `proto::chat_service_client::ChatServiceClient::new(channel)`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod proto {
    pub use chat_proto::proto::*;
    include!(concat!(env!("OUT_DIR"), "/chat.rs"));
}
