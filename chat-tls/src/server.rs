//! The server config built from [`TlsFiles`], and its reload.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use crate::error::{Error, Result};
use crate::files::{self, ClientAuth, TlsFiles};
use crate::resolver::ReloadableCert;

/// TLS for a server: the `rustls` config built from [`TlsFiles`], whose certificate
/// [`reload`](Self::reload) re-reads from the same files.
///
/// The config offers ALPN `h2` and `http/1.1` ([`ALPN`](crate::ALPN)), TLS 1.2 and 1.3
/// with rustls's safe defaults, and asks for client certificates only when
/// [`TlsFiles::client_ca`] is set. Give [`config`](Self::config) to every listener
/// that should serve this certificate: they share the [`ReloadableCert`], so one reload
/// reaches them all.
///
/// The client CA is read once, at [`load`](Self::load): a reload changes the server's
/// certificate and key only.
#[derive(Debug)]
pub struct ServerTls {
    files: TlsFiles,
    cert: Arc<ReloadableCert>,
    config: Arc<ServerConfig>,
}

impl ServerTls {
    /// Reads the files and builds the config.
    ///
    /// # Errors
    /// A file that cannot be read or parsed ([`Error::Read`], [`Error::Pem`],
    /// [`Error::Missing`]), a key that does not fit the certificate ([`Error::Key`]), a
    /// client CA rustls refuses ([`Error::ClientCa`]).
    pub fn load(files: TlsFiles) -> Result<ServerTls> {
        let cert = Arc::new(ReloadableCert::new(files::certified_key(&files)?));
        let provider = crate::provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::Config)?;
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some((path, auth)) => {
                let roots = files::client_roots(path)?;
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if *auth == ClientAuth::Optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier.build().map_err(|e| Error::ClientCa {
                    path: path.clone(),
                    source: Box::new(e),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = crate::ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(ServerTls {
            files,
            cert,
            config: Arc::new(config),
        })
    }

    /// The config for listeners. Every clone shares the certificate, so a
    /// [`reload`](Self::reload) reaches them all.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The files this was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the certificate chain and key again and serves them to new handshakes;
    /// open connections are not touched. Returns the new certificate's fingerprint.
    ///
    /// # Errors
    /// As [`load`](Self::load) for the chain and the key. On an error nothing changes:
    /// the certificate in use stays.
    pub fn reload(&self) -> Result<Fingerprint> {
        let key = files::certified_key(&self.files)?;
        let fingerprint = Fingerprint::of_leaf(&key.cert);
        self.cert.store(key);
        Ok(fingerprint)
    }

    /// The fingerprint of the certificate served now.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_leaf(&self.cert.current().cert)
    }
}

/// The SHA-256 fingerprint of a certificate (of its DER encoding), shown as
/// `openssl x509 -noout -fingerprint -sha256` shows it: `AB:CD:…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `cert`.
    pub fn of(cert: &CertificateDer<'_>) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// The fingerprint of a chain's first certificate (an empty chain hashes nothing).
    fn of_leaf(chain: &[CertificateDer<'static>]) -> Fingerprint {
        chain.first().map_or_else(
            || Fingerprint::of(&CertificateDer::from(&[][..])),
            Fingerprint::of,
        )
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}
