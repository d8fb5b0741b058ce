//! Settings of the transport: queue sizes, frame limits, timers, auth sources.

use std::time::Duration;

/// Transport settings. Every field has a sensible default ([`Config::default`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Frames each connection may have queued for writing (default 1024; memory is taken only while frames wait). A durable event
    /// or a reply that does not fit closes the connection with 4008 `slow_consumer`.
    pub queue_capacity: usize,
    /// Frames the writer feeds before one flush (default 64).
    pub max_batch: usize,
    /// Largest WebSocket message or frame a client may send, in bytes (default 64 KiB);
    /// larger closes with 1009.
    pub max_message_bytes: usize,
    /// WebSocket read buffer per connection, in bytes (default 512: client frames are
    /// small, and every idle connection holds this much; larger frames still arrive).
    pub read_buffer_bytes: usize,
    /// WebSocket write buffer per connection, in bytes (default 16 KiB).
    pub write_buffer_bytes: usize,
    /// How often the server pings (default 20 s).
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed with
    /// 4000 `idle_timeout` (default 60 s).
    pub idle_timeout: Duration,
    /// A write that cannot complete in this time (the client stopped reading) closes the
    /// connection with 4008 `slow_consumer` (default 10 s). Closing gets as long again to
    /// write what it still must (the backlog, when the close code keeps it, and the close
    /// frame). Announced in `hello.limits.write_timeout_ms`.
    pub write_timeout: Duration,
    /// After its close frame, how long a connection keeps reading (and discarding) input
    /// until the client answers the close (default 2 s; at most 4 MiB are read). A
    /// socket dropped with unread input is reset by the kernel, and the reset destroys
    /// what the client has not received yet: the close frame, often.
    pub close_linger: Duration,
    /// Hard cap on frames a client may send per `flood_window` (default 200 per second);
    /// above it the connection closes with 4029 `flood`.
    pub max_frames_per_window: u32,
    /// The window of `max_frames_per_window` (default 1 s).
    pub flood_window: Duration,
    /// Name of the cookie that may carry the token (default `chat_token`).
    pub token_cookie: String,
    /// The internal API key for the admin endpoints; `None` (the default) turns them off.
    pub admin_api_key: Option<String>,
    /// The sender shown on admin system messages (default `system`).
    pub system_sender: String,
    /// Largest HTTP request body in bytes (default 64 KiB); larger answers 413.
    pub max_http_body_bytes: usize,
    /// How long [`serve`](crate::serve) waits for connections to flush and close on
    /// shutdown (default 10 s).
    pub shutdown_grace: Duration,
    /// Origins (`https://chat.example.com`) whose pages may use the token cookie, besides
    /// the server's own (the `Host` a request was sent to; on a TLS listener, under
    /// `https://` only), which is always allowed (default: none). A request that carries its token in the cookie and an `Origin`
    /// not allowed is refused with 403 before the WebSocket upgrade or the command.
    pub allowed_origins: Vec<String>,
    /// How long `GET /api/v1/ready` waits for the store before it answers 503
    /// (default 2 s).
    pub ready_timeout: Duration,
    /// The TLS listener of [`serve_app_tls`](crate::serve_app_tls): the handshake time
    /// limit (default 10 s) and how many handshakes may run at once (default 1024).
    pub tls: chat_tls::ListenerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            queue_capacity: 1024,
            max_batch: 64,
            max_message_bytes: 64 * 1024,
            read_buffer_bytes: 512,
            write_buffer_bytes: 16 * 1024,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            close_linger: Duration::from_secs(2),
            max_frames_per_window: 200,
            flood_window: Duration::from_secs(1),
            token_cookie: "chat_token".into(),
            admin_api_key: None,
            system_sender: "system".into(),
            max_http_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            ready_timeout: Duration::from_secs(2),
            tls: chat_tls::ListenerConfig::default(),
        }
    }
}

impl Config {
    /// Sets the internal API key that guards the admin endpoints.
    pub fn admin_api_key(mut self, key: impl Into<String>) -> Self {
        self.admin_api_key = Some(key.into());
        self
    }

    /// Sets the outbound queue capacity per connection (at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets the cookie name that may carry the token.
    pub fn token_cookie(mut self, name: impl Into<String>) -> Self {
        self.token_cookie = name.into();
        self
    }

    /// Sets the ping interval and idle timeout.
    pub fn keepalive(mut self, ping_interval: Duration, idle_timeout: Duration) -> Self {
        self.ping_interval = ping_interval;
        self.idle_timeout = idle_timeout;
        self
    }

    /// Sets how long a write may take before the client counts as a slow consumer.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets how long a closing connection waits for the client to answer its close frame.
    pub fn close_linger(mut self, linger: Duration) -> Self {
        self.close_linger = linger;
        self
    }

    /// Sets the hard per-connection frame cap.
    pub fn flood_limit(mut self, frames: u32, window: Duration) -> Self {
        self.max_frames_per_window = frames;
        self.flood_window = window;
        self
    }

    /// Sets the largest WebSocket message a client may send.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the origins, besides the server's own, whose pages may use the token cookie
    /// (`scheme://host[:port]`; case and a trailing `/` do not matter).
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }
}
