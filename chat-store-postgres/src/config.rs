//! How to reach the server and how to use it.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::tls::{self, Tls};

/// The schema used when none is configured.
pub const DEFAULT_SCHEMA: &str = "chat";

/// Configuration of a [`PgStore`](crate::PgStore).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgConfig {
    /// A libpq-style URL, `postgres://user[:password]@host[:port]/database[?options]`.
    /// Its `sslmode` (`disable`, `prefer` — the default —, `require`, `verify-ca`,
    /// `verify-full`) and `sslrootcert` (a PEM file, or `system`) set TLS: see
    /// [`SslMode`](crate::SslMode).
    pub url: String,
    /// Trusted roots for `verify-ca` and `verify-full` (and `require`, which then checks
    /// the chain as `verify-ca` does): a PEM file. The same as the URL's `sslrootcert`;
    /// give one or the other. Without either, the system's store is used.
    pub ssl_root_cert: Option<PathBuf>,
    /// Connections in the pool (shared by the appender and every other query).
    pub pool_size: usize,
    /// The schema holding the tables: created if missing, set as `search_path` on every
    /// pooled connection. Lower-case letters, digits and `_`, at most 63 bytes.
    pub schema: String,
    /// The most appends coalesced into one transaction.
    pub max_batch: usize,
    /// How many append transactions may be in flight at once (each on its own
    /// connection). One is best for throughput: the next batch fills while the current
    /// one commits, and batches never wait on each other's conversation locks (measured:
    /// 1 writer ≈ 25k msgs/s, 4 writers ≈ 11–17k msgs/s with 256 appenders; see
    /// BENCHMARKS.md). More may help when commits are slow and conversations many.
    pub append_writers: usize,
    /// Time limit to open one connection (TCP, TLS and start-up).
    pub connect_timeout: Duration,
    /// How long a store call waits for a free pooled connection before it is refused with
    /// `unavailable` and a retry hint. Long enough to queue a connect storm (thousands of
    /// clients at once) rather than refuse it; short enough that a client is not left
    /// hanging when the database cannot keep up.
    pub pool_wait: Duration,
    /// Drop the schema with everything in it when the store is dropped. For tests and
    /// benchmarks that give every run its own schema; it exists only with the
    /// `test-util` feature, so a production build cannot set it.
    #[cfg(feature = "test-util")]
    pub drop_schema_on_drop: bool,
}

impl PgConfig {
    /// Defaults for `url`: a pool of 16, schema `chat`, batches of up to 512 appends,
    /// one append writer, a 5 s connect time-out, and up to 10 s of waiting for a free
    /// pooled connection.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: url.into(),
            ssl_root_cert: None,
            pool_size: 16,
            schema: DEFAULT_SCHEMA.to_owned(),
            max_batch: 512,
            append_writers: 1,
            connect_timeout: Duration::from_secs(5),
            pool_wait: Duration::from_secs(10),
            #[cfg(feature = "test-util")]
            drop_schema_on_drop: false,
        }
    }

    /// Sets the PEM file of trusted roots (as the URL's `sslrootcert` would).
    pub fn ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_root_cert = Some(path.into());
        self
    }

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets the largest append batch.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// Sets how many append transactions may be in flight at once.
    pub fn append_writers(mut self, n: usize) -> Self {
        self.append_writers = n;
        self
    }

    /// Sets the time limit to open one connection.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets how long a call waits for a free pooled connection.
    pub fn pool_wait(mut self, t: Duration) -> Self {
        self.pool_wait = t;
        self
    }

    /// Drops the schema when the store is dropped (tests and benchmarks only; feature
    /// `test-util`).
    #[cfg(feature = "test-util")]
    pub fn drop_schema_on_drop(mut self, yes: bool) -> Self {
        self.drop_schema_on_drop = yes;
        self
    }

    /// Checks the values and parses the URL into a driver config whose connections use
    /// the schema, with the TLS connector its `sslmode` asks for.
    pub(crate) fn driver_config(&self) -> Result<(tokio_postgres::Config, Tls)> {
        validate_schema(&self.schema)?;
        if self.pool_size == 0 || self.max_batch == 0 || self.append_writers == 0 {
            return Err(Error::InvalidConfig(
                "pool_size, max_batch and append_writers must be at least 1".into(),
            ));
        }
        if self.append_writers >= self.pool_size {
            return Err(Error::InvalidConfig(
                "append_writers must be smaller than pool_size, leaving room for reads".into(),
            ));
        }
        let params = tls::take_params(&self.url);
        let mut cfg: tokio_postgres::Config = params
            .url
            .parse()
            .map_err(|e| Error::InvalidConfig(format!("bad URL: {e}")))?;
        let tls = Tls::configure(&params, self.ssl_root_cert.as_deref(), &mut cfg)?;
        let options = match cfg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -csearch_path={}", self.schema),
            _ => format!("-csearch_path={}", self.schema),
        };
        cfg.options(&options);
        cfg.connect_timeout(self.connect_timeout);
        if cfg.get_application_name().is_none() {
            cfg.application_name("chat-store-postgres");
        }
        Ok((cfg, tls))
    }
}

/// A schema name that needs no quoting: `[a-z_][a-z0-9_]{0,62}`.
fn validate_schema(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "schema {s:?}: use lower-case letters, digits and _, at most 63 bytes, not pg_*"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for good in ["chat", "_x", "chat_test_1_ab"] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Chat",
            "1x",
            "a-b",
            "a;drop",
            "pg_catalog",
            &"x".repeat(64),
        ] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_path_is_set_on_every_connection() {
        let cfg = PgConfig::new("postgres://u@localhost/db?options=-cstatement_timeout%3D5s")
            .schema("s1")
            .driver_config()
            .expect("valid config")
            .0;
        assert_eq!(
            cfg.get_options(),
            Some("-cstatement_timeout=5s -csearch_path=s1")
        );
    }

    #[test]
    fn bad_url_and_sizes_are_invalid() {
        assert!(matches!(
            PgConfig::new("postgres://u@host:notaport/db").driver_config(),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            PgConfig::new("postgres://u@h/db")
                .pool_size(0)
                .driver_config(),
            Err(Error::InvalidConfig(_))
        ));
    }
}
