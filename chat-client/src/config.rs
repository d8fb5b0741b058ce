//! How a client connects, retries and paces itself.

use std::time::Duration;

use chat_core::engine::ResumePoint;

/// The client's settings. `Config::new(url)` (or a `&str`/`String` URL) takes the
/// defaults, which suit an interactive app.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The WebSocket URL, e.g. `ws://127.0.0.1:8080/ws` (`wss://` with the `rustls`
    /// feature, on by default).
    pub url: String,
    /// Send the token as the `token` query parameter instead of an `Authorization:
    /// Bearer` header (default false).
    pub token_in_query: bool,
    /// How long a live message past a gap waits for the gap to close before the client
    /// fills it with `history` (default 300 ms).
    pub gap_wait: Duration,
    /// How long a command's caller waits for its answer, including waiting for a
    /// connection (default 10 s). Sends have no timeout: they are retried until
    /// acknowledged (or refused), since a resend with the same `client_id` is safe.
    pub request_timeout: Duration,
    /// The first reconnect delay; doubled per failed attempt (default 200 ms).
    pub backoff_initial: Duration,
    /// The longest reconnect delay (default 10 s). Each delay is drawn at random between
    /// half and all of its nominal value (jitter), so clients cut off together do not
    /// come back together.
    pub backoff_max: Duration,
    /// Events buffered for the application (default 1024). Past it, events wait in an
    /// ordered backlog inside the client while it keeps reading the socket (so replies
    /// to your commands still arrive); messages, receipts and membership events are never
    /// dropped, typing and presence are. When the backlog reaches 16 times this, the
    /// client stops reading the socket until you catch up; a server whose
    /// `write_timeout_ms` runs out meanwhile closes with `4008`, and the client
    /// reconnects and resumes, losing nothing.
    pub event_buffer: usize,
    /// Acknowledge delivery (`mark_delivered`) of other people's messages as they are
    /// handed to the application (default true), at most once per conversation per
    /// 100 ms.
    pub auto_mark_delivered: bool,
    /// Sends written and not yet acknowledged at once, per connection (default 64).
    pub send_window: usize,
    /// How long to wait for the WebSocket handshake and the `hello` (default 10 s).
    pub connect_timeout: Duration,
    /// The TLS settings for `wss://` URLs: your own rustls `ClientConfig` (a private CA,
    /// a client certificate). `None` (the default): the platform's root certificates.
    #[cfg(feature = "rustls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Where to resume from: each conversation's `have` saved from an earlier run.
    /// Without it, the client follows each conversation from its newest message at the
    /// first connection.
    pub resume_from: Vec<ResumePoint>,
}

impl Config {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            token_in_query: false,
            gap_wait: Duration::from_millis(300),
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            event_buffer: 1024,
            auto_mark_delivered: true,
            send_window: 64,
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "rustls")]
            tls: None,
            resume_from: Vec::new(),
        }
    }
}

impl From<&str> for Config {
    fn from(url: &str) -> Self {
        Config::new(url)
    }
}

impl From<String> for Config {
    fn from(url: String) -> Self {
        Config::new(url)
    }
}

/// Reconnect delays: exponential, capped, with jitter.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(config: &Config) -> Self {
        Backoff {
            initial: config.backoff_initial,
            max: config.backoff_max.max(config.backoff_initial),
            attempt: 0,
        }
    }

    /// The next delay: `initial × 2^attempt`, capped at `max`, then drawn uniformly from
    /// its upper half.
    pub(crate) fn next(&mut self) -> Duration {
        let nominal = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        nominal / 2 + nominal.mul_f64(fastrand::f64() / 2.0)
    }

    /// A connection opened: start over.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut config = Config::new("ws://x");
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_max = Duration::from_millis(1000);
        let mut b = Backoff::new(&config);
        let mut seen = Vec::new();
        for nominal in [100u64, 200, 400, 800, 1000, 1000] {
            let d = b.next();
            let nominal = Duration::from_millis(nominal);
            assert!(d >= nominal / 2 && d <= nominal, "{d:?} for {nominal:?}");
            seen.push(d);
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
        // Jitter: many draws at the cap are not all equal.
        let draws: std::collections::HashSet<_> = (0..20).map(|_| b.next()).collect();
        assert!(draws.len() > 1, "{draws:?}");
    }
}
