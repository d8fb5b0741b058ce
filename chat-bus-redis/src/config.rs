//! How the bus uses Redis: names, time limits, reconnection, buffering.

use std::time::Duration;

use chat_core::{Error, Result};

/// The prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "chat";

/// Configuration of a [`RedisBus`](crate::RedisBus).
///
/// Built from [`Default`] and the setters (the struct is `#[non_exhaustive]`, so a new
/// setting is not a breaking change):
///
/// ```
/// use std::time::Duration;
/// use chat_bus_redis::RedisBusConfig;
///
/// let config = RedisBusConfig::default()
///     .prefix("chat-eu")
///     .command_timeout(Duration::from_millis(500));
/// assert_eq!(config.prefix, "chat-eu");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBusConfig {
    /// The first part of every channel and key name (`{prefix}:c:…`, `{prefix}:p:…`):
    /// deployments sharing one Redis use different prefixes. 1 to 64 bytes, no `:`, no
    /// spaces or control characters. Default `chat`.
    pub prefix: String,
    /// The longest a call waits for Redis: `publish`, presence, `ready`, and the server's
    /// confirmation of a subscription. A call made while the connection is down fails at
    /// once (`publish`, presence, `ready`) or is recorded (`subscribe`). Default 1 s.
    pub command_timeout: Duration,
    /// Time limit to open one connection (TCP and handshake), at start and on each
    /// reconnection attempt. Default 5 s.
    pub connect_timeout: Duration,
    /// The first wait before reconnecting; it doubles on each failed attempt up to
    /// [`reconnect_max_delay`](Self::reconnect_max_delay). Default 100 ms.
    pub reconnect_min_delay: Duration,
    /// The longest wait between reconnection attempts. Attempts never stop. Default 2 s.
    pub reconnect_max_delay: Duration,
    /// How often both connections are pinged; a connection that leaves a command
    /// unanswered for this long is closed and opened again (so a silently dead peer is
    /// noticed). Default 5 s.
    pub heartbeat: Duration,
    /// Messages received but not yet handed to the nodes. When more pile up, the oldest
    /// are lost and every node is told to resync. Default 4096.
    pub buffer: usize,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        RedisBusConfig {
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(2),
            heartbeat: Duration::from_secs(5),
            buffer: 4096,
        }
    }
}

impl RedisBusConfig {
    /// Sets the prefix of every channel and key name.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the longest a call waits for Redis.
    pub fn command_timeout(mut self, t: Duration) -> Self {
        self.command_timeout = t;
        self
    }

    /// Sets the time limit to open one connection.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets the first and the longest wait between reconnection attempts.
    pub fn reconnect_delays(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min_delay = min;
        self.reconnect_max_delay = max;
        self
    }

    /// Sets how often the connections are pinged.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Sets how many received messages may wait for the nodes.
    pub fn buffer(mut self, messages: usize) -> Self {
        self.buffer = messages;
        self
    }

    /// Checks the values.
    pub(crate) fn validate(&self) -> Result<()> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > 64
            || p.chars()
                .any(|c| c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(format!(
                "bus prefix {p:?}: 1 to 64 bytes, no ':', no spaces or control characters"
            )));
        }
        let zero = [
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_min_delay", self.reconnect_min_delay),
            ("heartbeat", self.heartbeat),
        ]
        .into_iter()
        .find(|(_, d)| d.is_zero());
        if let Some((name, _)) = zero {
            return Err(Error::invalid(format!("bus {name} must be more than zero")));
        }
        if self.reconnect_max_delay < self.reconnect_min_delay {
            return Err(Error::invalid(
                "bus reconnect_max_delay must be at least reconnect_min_delay",
            ));
        }
        if self.buffer == 0 {
            return Err(Error::invalid("bus buffer must be at least 1"));
        }
        Ok(())
    }
}

/// `url` with its password replaced by `***`, for logs and `Debug`.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        // Not a URL: it may be anything, so show nothing of it.
        return "<not a URL>".to_owned();
    };
    let rest = &url[scheme_end..];
    // The last `@`, wherever it is: a password may hold `/`, `?` or `@` unescaped, and
    // hiding too much is the safe mistake.
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        // `redis://secret@host` is a password alone to most clients.
        None => "***".to_owned(),
    };
    format!("{}{user}{}", &url[..scheme_end], &url[scheme_end + at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"),
            ("redis://:hunter2@h:1/0", "redis://:***@h:1/0"),
            ("redis://bob:hunter2@h", "redis://bob:***@h"),
            ("redis://hunter2@h", "redis://***@h"),
            ("redis://bob:p@ss@h:1", "redis://bob:***@h:1"),
            ("redis://u:a/b?c#d@h:1/0", "redis://u:***@h:1/0"),
            ("u:hunter2@h", "<not a URL>"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            assert!(!redact(url).contains("hunter2"), "{url}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(RedisBusConfig::default().validate().is_ok());
        for bad in ["", "a:b", "a b", "x\n", &"x".repeat(65)] {
            let e = RedisBusConfig::default()
                .prefix(bad)
                .validate()
                .expect_err(bad);
            assert_eq!(e.code(), chat_core::ErrorCode::Invalid);
        }
        let d = Duration::from_secs(1);
        for bad in [
            RedisBusConfig::default().command_timeout(Duration::ZERO),
            RedisBusConfig::default().heartbeat(Duration::ZERO),
            RedisBusConfig::default().reconnect_delays(d, d / 2),
            RedisBusConfig::default().buffer(0),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
