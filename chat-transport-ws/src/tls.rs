//! Serving the app over TLS: axum's server on a [`chat_tls::TlsListener`], and what a
//! request learns of its connection ([`TlsConnectInfo`]).

use std::io;
use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use chat_tls::rustls::pki_types::CertificateDer;
use chat_tls::{TlsListener, TlsStream};
use tokio::net::TcpStream;

/// What a request served by [`serve_app_tls`](crate::serve_app_tls) knows of its
/// connection: every such request carries it as
/// `axum::extract::ConnectInfo<TlsConnectInfo>` (a handler extracts it with
/// `ConnectInfo(info): ConnectInfo<TlsConnectInfo>`). A request without it came over
/// plain TCP.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsConnectInfo {
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The server name the client asked for (SNI), if it sent one (clients do not for
    /// an IP address).
    pub server_name: Option<String>,
    /// The client's certificate (its first, the leaf), when it showed one; it passed the
    /// client CA's check, or the handshake would have failed.
    pub client_certificate: Option<CertificateDer<'static>>,
}

/// [`TlsListener`] as axum's server takes it.
#[derive(Debug)]
pub(crate) struct AxumTlsListener(pub(crate) TlsListener);

impl Listener for AxumTlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Cannot happen while the listener lives; never spin on it.
                tracing::error!(error = %e, "TLS listener");
                std::future::pending().await
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.0.local_addr())
    }
}

impl Connected<IncomingStream<'_, AxumTlsListener>> for TlsConnectInfo {
    fn connect_info(stream: IncomingStream<'_, AxumTlsListener>) -> Self {
        let (_, session) = stream.io().get_ref();
        TlsConnectInfo {
            remote_addr: *stream.remote_addr(),
            server_name: session.server_name().map(str::to_owned),
            client_certificate: session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.clone().into_owned()),
        }
    }
}
