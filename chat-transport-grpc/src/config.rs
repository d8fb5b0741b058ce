//! Settings of the gRPC transport.

use std::time::Duration;

/// How a client certificate (mutual TLS) may identify the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientCertIdentity {
    /// Certificates identify nobody: every call needs a bearer token (the default).
    #[default]
    Off,
    /// A verified client certificate's subject common name (CN) is the user. A call that
    /// also carries a bearer token must name the same user.
    SubjectCn,
}

/// Transport settings. Every field has a sensible default ([`GrpcConfig::default`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GrpcConfig {
    /// Frames each `Connect` stream may have queued (default 1024). A durable event or a
    /// reply that does not fit ends the stream with `slow_consumer`.
    pub queue_capacity: usize,
    /// A queued frame the client does not take within this time (it stopped reading) ends
    /// the stream with `slow_consumer` (default 10 s).
    pub write_timeout: Duration,
    /// HTTP/2 keepalive: how often the server pings (default 20 s).
    pub ping_interval: Duration,
    /// HTTP/2 keepalive: a ping unanswered this long closes the connection (default 20 s).
    pub ping_timeout: Duration,
    /// Largest message a client may send, in bytes (default 64 KiB).
    pub max_message_bytes: usize,
    /// Largest message the server sends, in bytes (default 4 MiB: a history page or a
    /// resume reply can be large).
    pub max_send_message_bytes: usize,
    /// How long a TLS handshake may take (default 10 s).
    pub tls_handshake_timeout: Duration,
    /// TLS handshakes in progress at once (default 256); further connections wait to be
    /// accepted.
    pub max_pending_handshakes: usize,
    /// Whether client certificates identify callers (default [`ClientCertIdentity::Off`]).
    pub client_cert_identity: ClientCertIdentity,
    /// How long [`serve`](crate::serve) waits for streams to flush and end on shutdown
    /// (default 10 s).
    pub shutdown_grace: Duration,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            queue_capacity: 1024,
            write_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(20),
            max_message_bytes: 64 * 1024,
            max_send_message_bytes: 4 << 20,
            tls_handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 256,
            client_cert_identity: ClientCertIdentity::Off,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl GrpcConfig {
    /// Sets the outbound queue capacity per `Connect` stream (at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets how long a queued frame may wait for the client before it counts as a slow
    /// consumer.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets the HTTP/2 keepalive interval and timeout.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }

    /// Sets the largest message a client may send.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Lets client certificates identify callers (mutual TLS).
    pub fn client_cert_identity(mut self, mode: ClientCertIdentity) -> Self {
        self.client_cert_identity = mode;
        self
    }

    /// Sets how long shutdown waits for streams to end.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}
