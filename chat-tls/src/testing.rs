//! Certificates for tests, made at run time (feature `test-util`; never for
//! production): a CA, server certificates for `localhost`, `127.0.0.1` and `::1`, client
//! certificates, and rustls client configs that trust the CA.
//!
//! ```
//! use chat_tls::testing::TestPki;
//!
//! let pki = TestPki::new("test CA");
//! let server = pki.server();
//! let dir = std::env::temp_dir().join(format!("chat-tls-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let (cert, key) = server.write(&dir, "server");
//! let tls = chat_tls::ServerTls::load(chat_tls::TlsFiles::new(cert, key)).unwrap();
//! // A client that trusts the CA and shows no certificate:
//! let client = pki.client_config(None);
//! # let _ = (tls, client);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Serial numbers: unique within the process, so two certificates never look alike.
static SERIAL: AtomicU64 = AtomicU64::new(1);

/// A certificate authority of a test's own.
#[derive(Debug)]
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as a test hands them to a server or a client.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER: what a peer sees in the handshake.
    pub cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Identity {
    /// Writes `{stem}.crt` and `{stem}.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    /// The private key, DER.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

impl TestPki {
    /// A new CA (ECDSA P-256) whose certificate names it `name`.
    pub fn new(name: &str) -> TestPki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(next_serial());
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestPki { ca }
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA's certificate, DER.
    pub fn ca_cert(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// Writes the CA's certificate to `dir/{stem}.crt`; returns its path.
    pub fn write_ca(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.crt"));
        std::fs::write(&path, self.ca_pem()).unwrap();
        path
    }

    /// A new server certificate for `localhost`, `127.0.0.1` and `::1`, with a new key
    /// and serial number at each call.
    pub fn server(&self) -> Identity {
        self.issue(
            "chat test server",
            &["localhost", "127.0.0.1", "::1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A new client certificate whose common name is `name`.
    pub fn client(&self, name: &str) -> Identity {
        self.issue(name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Identity {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(next_serial());
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A client config that trusts this CA only, shows `identity` when given, and
    /// offers ALPN `http/1.1`.
    pub fn client_config(&self, identity: Option<&Identity>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_cert()).unwrap();
        let builder = ClientConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(id) => builder
                .with_client_auth_cert(vec![id.cert.clone()], id.key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

fn next_serial() -> SerialNumber {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    // A random-looking high part keeps serials of separate processes apart too.
    let mut bytes = std::process::id().to_be_bytes().to_vec();
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}
