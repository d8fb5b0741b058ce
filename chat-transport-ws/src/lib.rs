//! # chat-transport-ws
//!
//! WebSocket and HTTP API for [`chat_core`] on axum, speaking the JSON protocol v1
//! (`docs/protocol.md`) and the HTTP API (`docs/http-api.md`).
//!
//! The transport authenticates, translates and writes; it decides nothing (invariant 9):
//! every rule lives in the engine, whose typed errors map to one status table
//! ([`status_of`]).
//!
//! # Layout
//!
//! - `config`: [`Config`], queue sizes, frame limits, timers, token cookie, allowed
//!   origins, admin key.
//! - `state`: [`ChatState`], the engine, the authenticator and the config; the HTTP
//!   API's per-user command rate.
//! - `auth`: where tokens come from (header, query, cookie; a cookie only from an allowed
//!   origin), [`JwtAuthenticator`] with its leeway and [`Revocations`] hook, the internal
//!   API key.
//! - [`protocol`]: client and server frames of protocol v1, close codes; no sockets.
//! - `ws`: the WebSocket endpoint; one reader (runs commands in order) and one writer
//!   (drains the bounded queue in batches, one flush per batch) per connection.
//! - `outbox`: each connection's bounded outbound queue, which allocates only while
//!   frames wait.
//! - `http`: the HTTP API under `/api/v1`, with readiness and the admin routes.
//! - `openapi`: the HTTP API's OpenAPI 3.1 document, from the handlers' annotations,
//!   served at `/api/v1/openapi.json`.
//! - `error`: [`ApiError`], the code → status table and JSON extractors.
//! - `tls`: serving over TLS ([`serve_app_tls`]) on a [`chat_tls::TlsListener`];
//!   [`TlsConnectInfo`], what a request knows of its TLS connection.
//!
//! # Mounting
//!
//! ```no_run
//! use std::sync::Arc;
//! use chat_core::memory::MemoryStore;
//! use chat_core::Engine;
//! use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(Arc::new(MemoryStore::new())).build().await?;
//! let auth = Arc::new(JwtAuthenticator::hs256(b"a long shared secret"));
//! let state = ChatState::new(engine, auth, Config::default().admin_api_key("s3cret"));
//!
//! // Into your own app, in one line:
//! let app = axum::Router::new().merge(chat_transport_ws::router(state.clone()));
//! # let _ = app;
//!
//! // Or without an app of your own; graceful shutdown when `stop` fires:
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # let _ = stop;
//! let listener = chat_transport_ws::bind("127.0.0.1:8080".parse()?)?;
//! chat_transport_ws::serve(listener, state, async {
//!     let _ = stopped.await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Over TLS, with a certificate that can be reloaded while serving:
//!
//! ```no_run
//! # async fn run(state: chat_transport_ws::ChatState) -> Result<(), Box<dyn std::error::Error>> {
//! let tls = chat_tls::ServerTls::load(chat_tls::TlsFiles::new("cert.pem", "key.pem"))?;
//! let listener = chat_transport_ws::bind("127.0.0.1:8443".parse()?)?;
//! chat_transport_ws::serve_tls(listener, state, tls.config(), std::future::pending()).await?;
//! // Elsewhere, on SIGHUP: `tls.reload()`; new handshakes get the new certificate.
//! # Ok(())
//! # }
//! ```

mod auth;
mod config;
mod error;
mod http;
mod openapi;
mod outbox;
pub use chat_protocol as protocol;
mod state;
mod tls;
mod ws;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;

pub use auth::{
    is_origin, JwtAuthenticator, Revocations, TokenClaims, TokenSigner, API_KEY_HEADER,
};
pub use config::Config;
pub use error::{status_of, ApiError};
pub use protocol::{SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO};
pub use state::ChatState;
pub use tls::TlsConnectInfo;

/// The accept queue [`bind`] asks the kernel for. Linux caps it at `net.core.somaxconn`
/// (4,096 by default since 5.4); raise that sysctl to let a larger storm queue.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// Binds a listener for [`serve`] with a deep accept queue ([`LISTEN_BACKLOG`]) and
/// `SO_REUSEADDR` (a restarted server binds again at once). Must be called inside a
/// tokio runtime.
///
/// Prefer it to `TcpListener::bind`, which asks for a queue of 1,024: when every client
/// reconnects at once (after a deploy, or a network blip), the connections beyond the
/// queue are dropped by the kernel and their clients retry only after 1, 3, 7… seconds.
///
/// # Errors
/// The address is in use or cannot be bound.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The routes: `GET /ws`, `GET /ws/rooms/{room}` and the HTTP API under `/api/v1`.
///
/// Merge it into an app: `app.merge(chat_transport_ws::router(state))`.
pub fn router(state: ChatState) -> Router {
    let limit = state.config().max_http_body_bytes;
    Router::new()
        .route("/ws", get(ws::ws_handler))
        .route("/ws/rooms/{room}", get(ws::ws_room_handler))
        .nest("/api/v1", http::routes())
        // The nested router's own `/` is `/api/v1`; the slash form is answered here.
        .route("/api/v1/", axum::routing::any(http::not_found))
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then shuts down
/// gracefully: stops accepting, closes every session ([`chat_core::Engine::shutdown`],
/// close code 1001), lets each connection flush what it has queued and send its close
/// frame, and waits for them (at most [`Config::shutdown_grace`]).
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ChatState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, router(state.clone()), state, shutdown).await
}

/// Like [`serve`], for an app that holds [`router`] among routes of its own (a page,
/// metrics): serves `app` on `listener` and shuts down as gracefully.
///
/// Accepted sockets get `TCP_NODELAY` (as with [`serve`]): chat frames are small, and
/// Nagle's algorithm would hold them back for tens of milliseconds. An embedder who
/// serves [`router`] with its own `axum::serve` should do the same.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    state: ChatState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Chat frames are small and latency matters: never let Nagle hold one back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(closing(state.clone(), shutdown))
        .await?;
    drain(&state).await;
    Ok(())
}

/// Like [`serve`], over TLS: `https://` and `wss://` with the certificate of `tls`.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: ChatState,
    tls: Arc<chat_tls::rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app_tls(listener, router(state.clone()), state, tls, shutdown).await
}

/// Like [`serve_app`], over TLS: each accepted connection does its handshake (within
/// [`Config::tls`]'s time limit, in a task of its own, so a slow client holds up no
/// other), then is served as [`serve_app`] serves it, and shuts down as gracefully
/// (WebSockets close with 1001).
///
/// `tls` is typically [`chat_tls::ServerTls::config`]: its certificate may be reloaded
/// while this runs, and new handshakes get the new one. This listener speaks HTTP/1.1
/// only (WebSockets upgrade from it), so it offers ALPN `http/1.1` alone, on a copy of
/// `tls` that shares its certificate. Every request carries
/// `ConnectInfo<`[`TlsConnectInfo`]`>`; a token cookie is then usable from the
/// server's own origin only under `https://` (see [`Config::allowed_origins`]).
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve_app_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    state: ChatState,
    tls: Arc<chat_tls::rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http1 = (*tls).clone();
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener =
        chat_tls::TlsListener::new(listener, Arc::new(http1), state.config().tls.clone())?;
    axum::serve(
        tls::AxumTlsListener(listener),
        app.into_make_service_with_connect_info::<TlsConnectInfo>(),
    )
    .with_graceful_shutdown(closing(state.clone(), shutdown))
    .await?;
    drain(&state).await;
    Ok(())
}

/// What the server does once `shutdown` completes, before it stops accepting: refuse
/// new WebSockets and close every session (1001).
async fn closing(state: ChatState, shutdown: impl Future<Output = ()>) {
    shutdown.await;
    state.begin_shutdown();
    state.engine().shutdown().await;
}

/// Upgraded connections outlive the HTTP server: waits for them to flush and close, at
/// most [`Config::shutdown_grace`].
async fn drain(state: &ChatState) {
    let grace = state.config().shutdown_grace;
    if tokio::time::timeout(grace, state.drained()).await.is_err() {
        tracing::warn!(
            open = state.live_connections(),
            "connections still open after the shutdown grace period"
        );
    }
}
