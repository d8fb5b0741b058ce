//! The files TLS is built from, and reading them.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use crate::error::{Error, Result};

/// Whether a client must show a certificate signed by the client CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// A client may come without a certificate; one it shows must be valid (signed by
    /// the client CA, in date), or the handshake fails.
    Optional,
    /// Every client must show a valid certificate (the default once a CA is given).
    #[default]
    Required,
}

/// Where the server's certificate chain, its key and (optionally) the CA of client
/// certificates are, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The certificate chain: the server's certificate first, then intermediates.
    pub cert: PathBuf,
    /// The private key of the first certificate: PKCS#8, PKCS#1 (RSA) or SEC1 (EC),
    /// unencrypted.
    pub key: PathBuf,
    /// The CA certificates that sign client certificates, and whether clients must show
    /// one. `None` (the default): no client certificates are asked for.
    pub client_ca: Option<(PathBuf, ClientAuth)>,
}

impl TlsFiles {
    /// The certificate chain and key files, without client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Asks clients for a certificate signed by a CA of `path` (a PEM file of one or more
    /// certificates).
    pub fn client_ca(mut self, path: impl Into<PathBuf>, auth: ClientAuth) -> Self {
        self.client_ca = Some((path.into(), auth));
        self
    }
}

const CHAIN: &str = "certificate chain";
const KEY: &str = "private key";
const CLIENT_CA: &str = "client CA";

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn pem_error(what: &'static str, path: &Path, expected: &'static str, e: pem::Error) -> Error {
    match e {
        pem::Error::NoItemsFound => Error::Missing {
            what,
            path: path.to_owned(),
            expected,
        },
        source => Error::Pem {
            what,
            path: path.to_owned(),
            source,
        },
    }
}

/// The certificates of a PEM file, in order; at least one.
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, "CERTIFICATE block", e))?;
    if certs.is_empty() {
        return Err(Error::Missing {
            what,
            path: path.to_owned(),
            expected: "CERTIFICATE block",
        });
    }
    Ok(certs)
}

/// Reads the chain and the key, and checks that the key is usable and belongs to the
/// first certificate.
///
/// # Errors
/// A file that cannot be read, is not PEM, holds nothing of its kind; a key of a type
/// rustls cannot sign with, or of another certificate.
pub(crate) fn certified_key(files: &TlsFiles) -> Result<CertifiedKey> {
    let chain = certificates(CHAIN, &files.cert)?;
    let key_pem = read(KEY, &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_error(KEY, &files.key, "unencrypted PRIVATE KEY block", e))?;
    // Refuses a key of another certificate (the public keys differ).
    CertifiedKey::from_der(chain, key, &crate::provider()).map_err(|source| Error::Key {
        key: files.key.clone(),
        cert: files.cert.clone(),
        source,
    })
}

/// The client CA file as a root store.
///
/// # Errors
/// A file that cannot be read, is not PEM, holds no certificate, or holds one rustls
/// refuses as a trust anchor.
pub(crate) fn client_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(CLIENT_CA, path)? {
        roots.add(cert).map_err(|e| Error::ClientCa {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
    }
    Ok(roots)
}
