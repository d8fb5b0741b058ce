//! Accepting TLS connections: the handshake of each in its own task, with a time limit.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Settings of a [`TlsListener`]. Defaults in [`ListenerConfig::default`].
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    handshake_timeout: Duration,
    max_handshakes: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: 1024,
        }
    }
}

impl ListenerConfig {
    /// The default time limit of a handshake.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// A connection whose handshake has not completed after this long is dropped
    /// (default [10 s](Self::DEFAULT_HANDSHAKE_TIMEOUT)).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Handshakes that may run at once (default 1024, at least 1). While this many are
    /// under way, new connections wait in the kernel's accept queue: the memory held by
    /// clients that connect and never finish a handshake stays bounded.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n.max(1);
        self
    }
}

/// A TCP listener whose connections come out after their TLS handshake.
///
/// A task accepts TCP connections (with `TCP_NODELAY`: chat frames are small, and
/// Nagle's algorithm would hold them back) and hands each to a task of its own for the
/// handshake, so a slow or silent client never holds up the others. A handshake that
/// fails or times out drops its connection and is logged at `DEBUG` (scanners and
/// plain-text clients make many). Dropping the listener stops accepting and closes the
/// socket.
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` with `config` (which must have a certificate).
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        settings: ListenerConfig,
    ) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(settings.max_handshakes);
        let accepting = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(config),
            settings,
            tx,
        ));
        Ok(TlsListener {
            incoming,
            local_addr,
            accepting,
        })
    }

    /// The next connection whose handshake succeeded, and its peer's address.
    /// Cancel-safe: a connection is never lost to a dropped call.
    ///
    /// # Errors
    /// Only if the accept task ended, which it does not by itself.
    pub async fn accept(&mut self) -> io::Result<(TlsStream<TcpStream>, SocketAddr)> {
        self.incoming
            .recv()
            .await
            .ok_or_else(|| io::Error::other("the TLS accept task stopped"))
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    settings: ListenerConfig,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_handshakes));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close instead of
                // spinning (as hyper and axum do).
                tracing::error!(error = %e, "accepting a TCP connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let limit = settings.handshake_timeout;
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(limit, acceptor.accept(tcp)).await;
            drop(slot);
            match handshake {
                Ok(Ok(tls)) => {
                    // Fails only when the listener is gone: the connection is dropped.
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, ?limit, "TLS handshake timed out"),
            }
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
