//! The certificate a handshake gets, swappable while the server runs.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A [`ResolvesServerCert`] that gives every handshake the certificate stored last.
///
/// [`store`](Self::store) swaps it atomically (an [`ArcSwap`]): handshakes that start
/// afterwards get the new one, while connections already open keep the session they
/// negotiated. Lock-free on the handshake path. One certificate for every server name:
/// SNI is not consulted.
#[derive(Debug)]
pub struct ReloadableCert {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadableCert {
    /// Serves `key` until the next [`store`](Self::store).
    pub fn new(key: CertifiedKey) -> Self {
        ReloadableCert {
            current: ArcSwap::from_pointee(key),
        }
    }

    /// Serves `key` to every handshake from now on.
    pub fn store(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
