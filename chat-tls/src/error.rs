//! What can go wrong reading the files and building the config.

use std::path::PathBuf;

/// The result of this crate's fallible calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the TLS settings could not be built (or reloaded). Each names the file at fault
/// and keeps its cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("reading the {what} {}", path.display())]
    Read {
        /// What the file should hold (`certificate chain`, `private key`, `client CA`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("the {what} {} is not valid PEM", path.display())]
    Pem {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A file holds no item of the kind it should (no `CERTIFICATE` block, no
    /// unencrypted private key).
    #[error("the {what} {} holds no {expected}", path.display())]
    Missing {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The PEM item looked for.
        expected: &'static str,
    },
    /// The private key cannot be used, or does not belong to the certificate.
    #[error("the private key {} cannot serve the certificate {}", key.display(), cert.display())]
    Key {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// The client CA cannot check client certificates.
    #[error("the client CA {} cannot be used", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// rustls's reason: a certificate it refuses as a trust anchor, or a verifier
        /// it cannot build.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// rustls refused the settings.
    #[error("building the TLS settings")]
    Config(#[source] rustls::Error),
}
