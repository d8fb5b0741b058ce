//! Serving: the accept loop (plain TCP, or TLS with the caller's `rustls::ServerConfig`),
//! the services (chat, health, reflection), graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic_health::ServingStatus;

use crate::service::{ChatService, ChatServiceServer};
use crate::state::GrpcState;

/// The gRPC service name, as health checks and reflection list it.
pub const SERVICE_NAME: &str = "chat.ChatService";

/// Why [`serve`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP/2 server failed.
    #[error("gRPC server: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// The reflection service could not read the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Serves `chat.ChatService`, `grpc.health.v1.Health` and server reflection on
/// `listener` until `shutdown` completes, then shuts down gracefully.
///
/// With `tls`, every accepted connection is wrapped with `tokio-rustls` using that
/// configuration as it is (its certificate resolver, its client-certificate verifier),
/// except that `h2` is added to its ALPN protocols when missing (gRPC clients require
/// it). The peer's certificates reach each call in its extensions
/// (`tonic::transport::server::TlsConnectInfo`). A connection that fails its handshake
/// (plaintext on the TLS port, an untrusted or missing client certificate when one is
/// required) is dropped.
///
/// On shutdown: health turns `NOT_SERVING`, new streams are refused, every session is
/// closed ([`chat_core::Engine::shutdown`]), each `Connect` stream delivers what it had
/// queued and ends with `UNAVAILABLE` / `shutdown`, and this waits for them and for
/// unary calls in flight (at most [`GrpcConfig::shutdown_grace`]).
///
/// [`GrpcConfig::shutdown_grace`]: crate::GrpcConfig::shutdown_grace
///
/// # Errors
/// The error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    state: GrpcState,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    match tls {
        None => {
            let incoming = accept_loop(
                listener,
                state.config().max_pending_handshakes,
                |tcp| async move { Some(tcp) },
            );
            run(incoming, state, shutdown).await
        }
        Some(config) => {
            let acceptor = TlsAcceptor::from(with_h2(config));
            let timeout = state.config().tls_handshake_timeout;
            let incoming = accept_loop(
                listener,
                state.config().max_pending_handshakes,
                move |tcp: TcpStream| {
                    let acceptor = acceptor.clone();
                    async move { handshake(acceptor, tcp, timeout).await }
                },
            );
            run(incoming, state, shutdown).await
        }
    }
}

/// The caller's configuration, with `h2` among its ALPN protocols.
fn with_h2(config: Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    if config.alpn_protocols.iter().any(|p| p == b"h2") {
        return config;
    }
    let mut config = (*config).clone();
    config.alpn_protocols.insert(0, b"h2".to_vec());
    Arc::new(config)
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    let peer = tcp.peer_addr().ok();
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}

/// Accepts connections and readies each (a TLS handshake) in a task of its own, at most
/// `max_pending` at once, so that a slow handshake holds up no other connection. Ends
/// when the server stops reading.
fn accept_loop<IO, F, Fut>(
    listener: TcpListener,
    max_pending: usize,
    ready: F,
) -> ReceiverStream<std::io::Result<IO>>
where
    IO: Send + 'static,
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = Option<IO>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let pending = Arc::new(Semaphore::new(max_pending.max(1)));
        loop {
            let permit = tokio::select! {
                () = tx.closed() => return,
                p = pending.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let tcp = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Out of file descriptors, a connection reset before accept: wait
                        // a little rather than spin.
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Chat frames are small and latency matters: never let Nagle hold one back.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
            let ready = ready(tcp);
            let tx = tx.clone();
            tokio::spawn(async move {
                let io = ready.await;
                drop(permit);
                if let Some(io) = io {
                    let _ = tx.send(Ok(io)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn run<IO>(
    incoming: ReceiverStream<std::io::Result<IO>>,
    state: GrpcState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Connected + Unpin + Send + 'static,
{
    let cfg = state.config().clone();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SERVICE_NAME, ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(Error::Reflection)?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(Error::Reflection)?;
    let chat = ChatServiceServer::new(ChatService {
        state: state.clone(),
    })
    .max_decoding_message_size(cfg.max_message_bytes)
    .max_encoding_message_size(cfg.max_send_message_bytes);

    let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = state.clone();
    let signal = async move {
        shutdown.await;
        let _ = fired_tx.send(());
        closing.begin_shutdown();
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        closing.engine().shutdown().await;
        // Streams deliver what they queued and end before connections are told to go.
        if tokio::time::timeout(closing.config().shutdown_grace, closing.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                open = closing.live_streams(),
                "Connect streams still open after the shutdown grace period"
            );
        }
    };
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(cfg.ping_interval))
        .http2_keepalive_timeout(Some(cfg.ping_timeout))
        .add_service(chat)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    // After the signal, connections get the grace period (twice: the streams had one) to
    // finish; a client that never reads its stream's end holds up nothing longer.
    let backstop = async {
        if fired_rx.await.is_ok() {
            tokio::time::sleep(cfg.shutdown_grace * 2).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = &mut server => served.map_err(Error::Transport),
        () = backstop => {
            tracing::warn!("connections still open after the shutdown grace period");
            Ok(())
        }
    }
}
