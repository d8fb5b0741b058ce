//! A gRPC chat server for interoperability checks (`scripts/grpc-interop.sh` runs it):
//! an in-memory engine served twice, in plaintext and over mutual TLS, with HS256 tokens.
//!
//! ```text
//! CHAT_JWT_SECRET=… cargo run -p chat-transport-grpc --example grpc-interop-server -- \
//!     --cert server-cert.pem --key server-key.pem --client-ca ca-cert.pem
//! ```
//!
//! Prints `plain <addr>` and `tls <addr>` once both listen (on 127.0.0.1, ports chosen
//! by the system unless `--plain`/`--tls` name addresses), then serves until killed or
//! until standard input closes.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::Engine;
use chat_transport_grpc::{GrpcConfig, GrpcState};
use chat_transport_ws::JwtAuthenticator;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    plain: String,
    tls: String,
    cert: String,
    key: String,
    client_ca: String,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        plain: "127.0.0.1:0".into(),
        tls: "127.0.0.1:0".into(),
        cert: String::new(),
        key: String::new(),
        client_ca: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--plain" => a.plain = value,
            "--tls" => a.tls = value,
            "--cert" => a.cert = value,
            "--key" => a.key = value,
            "--client-ca" => a.client_ca = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if a.cert.is_empty() || a.key.is_empty() || a.client_ca.is_empty() {
        return Err("--cert, --key and --client-ca are required".into());
    }
    Ok(a)
}

/// Mutual TLS: the server's certificate, and client certificates from `client_ca`
/// required.
fn tls_config(a: &Args) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&a.client_ca)? {
        roots.add(ca?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let chain = CertificateDer::pem_file_iter(&a.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&a.key)?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args()?;
    let secret = std::env::var("CHAT_JWT_SECRET").map_err(|_| "set CHAT_JWT_SECRET")?;
    let tls = tls_config(&a)?;
    let engine = Engine::builder(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .build()
        .await?;
    let auth = Arc::new(JwtAuthenticator::hs256(secret.as_bytes()));
    let state = GrpcState::new(engine, auth, GrpcConfig::default());
    let plain = tokio::net::TcpListener::bind(&a.plain).await?;
    let secure = tokio::net::TcpListener::bind(&a.tls).await?;
    println!("plain {}", plain.local_addr()?);
    println!("tls {}", secure.local_addr()?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let plain = tokio::spawn(chat_transport_grpc::serve(
        plain,
        state.clone(),
        None,
        wait(stopped.clone()),
    ));
    let secure = tokio::spawn(chat_transport_grpc::serve(
        secure,
        state,
        Some(tls),
        wait(stopped),
    ));
    // Standard input closing (the script that started it ended) stops the server.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    let _ = stop.send(true);
    plain.await??;
    secure.await??;
    Ok(())
}
