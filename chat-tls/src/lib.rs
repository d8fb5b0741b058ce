//! # chat-tls
//!
//! TLS for the chat transports' listeners, on rustls (ring): a server config built from
//! PEM files whose certificate can be reloaded in place, and a listener that does the
//! handshakes with a time limit. The WebSocket/HTTP transport and the gRPC transport take
//! the same `Arc<rustls::ServerConfig>`, so one reload serves both.
//!
//! ```no_run
//! use chat_tls::{ClientAuth, ServerTls, TlsFiles, TlsListener, ListenerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let files = TlsFiles::new("/etc/chat/cert.pem", "/etc/chat/key.pem")
//!     .client_ca("/etc/chat/clients-ca.pem", ClientAuth::Required);
//! let tls = ServerTls::load(files)?;
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let mut listener = TlsListener::new(tcp, tls.config(), ListenerConfig::default())?;
//! // Later, on SIGHUP: new handshakes get the new certificate, open connections stay.
//! tls.reload()?;
//! let (stream, peer) = listener.accept().await?;
//! # let _ = (stream, peer);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `files`: [`TlsFiles`] (the certificate chain, the key, the client CA) and
//!   [`ClientAuth`]; reading and checking the PEM files.
//! - `resolver`: [`ReloadableCert`], the `ResolvesServerCert` whose certificate is swapped
//!   atomically.
//! - `server`: [`ServerTls`], the config built from the files (ALPN `h2` and `http/1.1`)
//!   and its [`reload`](ServerTls::reload); [`Fingerprint`].
//! - `listener`: [`TlsListener`], the accept loop: TCP, `TCP_NODELAY`, a handshake per
//!   connection in its own task with a time limit and a bound on how many run at once.
//! - `error`: [`Error`].
//! - [`testing`] (feature `test-util`): a CA, server and client certificates made at run
//!   time.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | [`testing::TestPki`]: certificates for tests (rcgen). Never for production. |

mod error;
mod files;
mod listener;
mod resolver;
mod server;
#[cfg(feature = "test-util")]
pub mod testing;

pub use error::{Error, Result};
pub use files::{ClientAuth, TlsFiles};
pub use listener::{ListenerConfig, TlsListener};
pub use resolver::ReloadableCert;
pub use server::{Fingerprint, ServerTls};

/// The rustls this crate builds on (0.23, ring), for the types of its API.
pub use rustls;
/// A server-side TLS stream, as [`TlsListener::accept`] yields it.
pub use tokio_rustls::server::TlsStream;

/// The ALPN protocol ids the config from [`ServerTls`] offers, most preferred first:
/// HTTP/2 (gRPC needs it) and HTTP/1.1. A listener that speaks only one of them sets its
/// own list on a clone of the config (the certificate stays shared).
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto this crate uses: rustls's ring provider, named explicitly so that another
/// provider compiled into the process (aws-lc-rs) cannot make the choice ambiguous.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
