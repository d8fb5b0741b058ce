//! TLS for the load generator's clients: `wss://` for the WebSocket dialect (rustls on
//! ring), and the CA a gRPC client over TLS trusts.
//!
//! The WebSocket connector is process-wide ([`install`]), so the scenarios' connect paths
//! stay as they are: [`super::run`] installs the one its options ask for.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which server certificates a TLS client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// Those issued by the CA (or that self-signed certificate) in this PEM file.
    CaFile(PathBuf),
    /// Any certificate (the bench's self-signed one when no CA is at hand). WebSocket
    /// dialect only: tonic takes a CA, not a verifier.
    AnyCert,
}

impl TlsTrust {
    /// Parses `any` or the path of a PEM file.
    pub fn parse(s: &str) -> TlsTrust {
        match s {
            "any" | "insecure" => TlsTrust::AnyCert,
            path => TlsTrust::CaFile(PathBuf::from(path)),
        }
    }
}

static WS_TLS: RwLock<Option<Arc<ClientConfig>>> = RwLock::new(None);

/// The rustls client configuration for `trust` (no client certificate, no ALPN).
///
/// # Errors
/// An unreadable or empty CA file.
pub fn client_config(trust: &TlsTrust) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let config = match trust {
        TlsTrust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::AnyCert => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Makes every WebSocket connection of this process use `wss://` with `trust`, or plain
/// `ws://` with `None`.
///
/// # Errors
/// As [`client_config`].
pub fn install(trust: Option<&TlsTrust>) -> Result<(), String> {
    let config = trust.map(client_config).transpose()?;
    *WS_TLS.write().unwrap_or_else(|p| p.into_inner()) = config;
    Ok(())
}

/// The installed WebSocket TLS configuration, if any.
pub fn ws_tls() -> Option<Arc<ClientConfig>> {
    WS_TLS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Accepts any server certificate, still checking the handshake's signatures.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
