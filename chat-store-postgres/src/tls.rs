//! TLS to PostgreSQL, on rustls: `sslmode` and `sslrootcert` read from the URL as libpq
//! reads them, and the verifier each mode asks for.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it, else plain | not checked |
//! | `require` | always (a server without TLS is refused) | not checked, unless a root certificate is given: then as `verify-ca` (libpq does the same) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root, and issued for the host in the URL |
//!
//! Trusted roots are those of `sslrootcert` (a PEM file; the URL parameter or
//! [`PgConfig::ssl_root_cert`](crate::PgConfig::ssl_root_cert)), or the system's store
//! when none is given or it is `system`. A certificate that is not checked still has to
//! sign the handshake, so the session is encrypted, but a machine in the middle is not
//! detected: use `verify-full` across any network you do not control.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// How connections use TLS: the URL's `sslmode` (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, the certificate not checked (the default).
    Prefer,
    /// TLS always; the certificate checked only when a root certificate is given.
    Require,
    /// TLS always, with a certificate signed by a trusted root.
    VerifyCa,
    /// TLS always, with a certificate signed by a trusted root for the URL's host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in order of strength.
    pub const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The mode's name in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        SslMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "sslmode {s:?}: use disable, prefer, require, verify-ca or verify-full"
                ))
            })
    }

    /// What the driver is told: it knows only whether TLS is off, optional or required.
    fn driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self {
            SslMode::Disable => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }
}

/// The URL without its `sslmode` and `sslrootcert` (which the driver does not know, or
/// knows only in part), and their values.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub(crate) url: String,
    pub(crate) sslmode: Option<String>,
    pub(crate) sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query. Other strings
/// (libpq's `key=value` form) are returned whole: the driver reads their `sslmode`
/// (`disable`, `prefer` or `require`).
pub(crate) fn take_params(url: &str) -> TlsParams {
    let mut out = TlsParams {
        url: url.to_owned(),
        sslmode: None,
        sslrootcert: None,
    };
    let is_url = ["postgres://", "postgresql://"]
        .iter()
        .any(|p| url.starts_with(p));
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return out;
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => out.sslmode = Some(percent_decode(value)),
            "sslrootcert" => out.sslrootcert = Some(percent_decode(value)),
            _ => kept.push(pair),
        }
    }
    out.url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    out
}

/// `%XX` escapes decoded (a path may hold `%2F`); anything malformed is kept as is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// The system's store.
    System,
}

/// The TLS settings of a store: the mode, and the connector that applies it.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    pub(crate) connector: MakeRustlsConnect,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
    }
}

impl Tls {
    /// Resolves the mode (the URL's, else the driver's reading of the string) and the
    /// roots, sets the driver's mode, and builds the connector.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown mode, a root file that cannot be read or
    /// holds no certificate, roots given twice, or no system roots when they are needed.
    pub(crate) fn configure(
        params: &TlsParams,
        root_cert: Option<&Path>,
        driver: &mut tokio_postgres::Config,
    ) -> Result<Tls> {
        let mode = match &params.sslmode {
            Some(m) => SslMode::parse(m)?,
            None => match driver.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => SslMode::Disable,
                tokio_postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
        };
        let roots = match (&params.sslrootcert, root_cert) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidConfig(
                    "a root certificate is given twice: sslrootcert in the URL and \
                     PgConfig::ssl_root_cert; keep one"
                        .into(),
                ))
            }
            (Some(s), None) if s == "system" => Some(Roots::System),
            (Some(s), None) => Some(Roots::File(PathBuf::from(s))),
            (None, Some(p)) => Some(Roots::File(p.to_owned())),
            (None, None) => None,
        };
        driver.ssl_mode(mode.driver());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                Arc::new(NoCheck(provider.clone()))
            }
            (SslMode::Require | SslMode::VerifyCa, roots) => Arc::new(AnyName(verifier(
                load_roots(roots.unwrap_or(Roots::System))?,
                &provider,
            )?)),
            (SslMode::VerifyFull, roots) => {
                verifier(load_roots(roots.unwrap_or(Roots::System))?, &provider)?
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidConfig(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Tls {
            mode,
            connector: MakeRustlsConnect::new(config),
        })
    }
}

fn verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::InvalidConfig(format!("TLS roots: {e}")))
}

fn load_roots(roots: Roots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let bad = |e: &dyn std::fmt::Display| {
                Error::InvalidConfig(format!("sslrootcert {}: {e}", path.display()))
            };
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| bad(&e))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(&e))?;
            for cert in certs {
                store.add(cert).map_err(|e| bad(&e))?;
            }
            if store.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(String::new, |e| format!(" ({e})"));
                return Err(Error::InvalidConfig(format!(
                    "no trusted root certificate found in the system's store{why}; give \
                     sslrootcert"
                )));
            }
        }
    }
    Ok(store)
}

/// `prefer`, and `require` without roots: any certificate, as long as its key signs the
/// handshake.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
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

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked (webpki
/// checks it last, after the chain, so a wrong name alone means the chain was good).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_parameters_leave_the_url_and_the_rest_stays() {
        let p = take_params(
            "postgres://u:p@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(p.url, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/etc/ca.pem"));

        let p = take_params("postgresql://h/db?sslmode=disable");
        assert_eq!(p.url, "postgresql://h/db");
        assert_eq!(p.sslmode.as_deref(), Some("disable"));

        let plain = take_params("postgres://h/db");
        assert_eq!(
            (plain.url.as_str(), plain.sslmode),
            ("postgres://h/db", None)
        );

        // libpq's key=value form is the driver's to read.
        let kv = take_params("host=h sslmode=require");
        assert_eq!(kv.url, "host=h sslmode=require");
        assert_eq!(kv.sslmode, None);
    }

    #[test]
    fn percent_escapes_are_decoded_and_malformed_ones_kept() {
        assert_eq!(percent_decode("%2Fa%20b"), "/a b");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz%2"), "%zz%2");
    }

    fn configure(url: &str, root: Option<&Path>) -> Result<(SslMode, tokio_postgres::Config)> {
        let params = take_params(url);
        let mut driver: tokio_postgres::Config = params.url.parse().expect("url");
        let tls = Tls::configure(&params, root, &mut driver)?;
        Ok((tls.mode, driver))
    }

    #[test]
    fn each_mode_sets_what_the_driver_knows() {
        use tokio_postgres::config::SslMode as D;
        for (url, mode, driver) in [
            ("postgres://h/db", SslMode::Prefer, D::Prefer),
            (
                "postgres://h/db?sslmode=disable",
                SslMode::Disable,
                D::Disable,
            ),
            ("postgres://h/db?sslmode=prefer", SslMode::Prefer, D::Prefer),
            (
                "postgres://h/db?sslmode=require",
                SslMode::Require,
                D::Require,
            ),
            (
                "postgres://h/db?sslmode=verify-ca",
                SslMode::VerifyCa,
                D::Require,
            ),
            (
                "postgres://h/db?sslmode=verify-full",
                SslMode::VerifyFull,
                D::Require,
            ),
            ("host=h sslmode=require", SslMode::Require, D::Require),
            ("host=h sslmode=disable", SslMode::Disable, D::Disable),
        ] {
            let (m, d) = match configure(url, None) {
                Ok(x) => x,
                // verify-* need the system's roots; a machine without any says so.
                Err(Error::InvalidConfig(e)) if e.contains("system's store") => continue,
                Err(e) => panic!("{url}: {e}"),
            };
            assert_eq!(m, mode, "{url}");
            assert_eq!(d.get_ssl_mode(), driver, "{url}");
        }
    }

    #[test]
    fn bad_modes_and_root_files_are_invalid_config() {
        for (url, root, says) in [
            ("postgres://h/db?sslmode=allow", None, "sslmode \"allow\""),
            (
                "postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                None,
                "/nonexistent/ca.pem",
            ),
            (
                "postgres://h/db?sslmode=verify-ca",
                Some(Path::new("/nonexistent/ca.pem")),
                "/nonexistent/ca.pem",
            ),
            (
                "postgres://h/db?sslmode=verify-ca&sslrootcert=/a.pem",
                Some(Path::new("/b.pem")),
                "given twice",
            ),
        ] {
            match configure(url, root) {
                Err(Error::InvalidConfig(e)) => assert!(e.contains(says), "{url}: {e}"),
                other => panic!("{url}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_root_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("chat-pg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let r = configure("postgres://h/db?sslmode=verify-full", Some(&empty));
        let _ = std::fs::remove_dir_all(&dir);
        match r {
            Err(Error::InvalidConfig(e)) => assert!(e.contains("no certificate"), "{e}"),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}
