//! Errors: the typed errors of [`PgStore::open`](crate::PgStore::open), and the mapping
//! of driver errors into chat-core's portable kinds.

use std::time::Duration;

use chat_core::{Error as CoreError, ErrorCode};
use deadpool_postgres::{Pool, PoolError, TimeoutType};
use tokio_postgres::error::SqlState;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is malformed (the URL does not parse, a bad schema name, …).
    #[error("invalid PostgreSQL configuration: {0}")]
    InvalidConfig(String),
    /// The server could not be reached (connection refused, host unknown, time-out).
    #[error("PostgreSQL is unreachable: {0}")]
    Unreachable(String),
    /// The server answered, but the database named in the URL does not exist.
    #[error("PostgreSQL database does not exist: {0}")]
    DatabaseMissing(String),
    /// The server refused the credentials.
    #[error("PostgreSQL refused the credentials: {0}")]
    Authentication(String),
    /// TLS as the URL's `sslmode` asks for could not be set up: the server offers none, or
    /// its certificate is not signed by a trusted root or not issued for the host.
    #[error("TLS to PostgreSQL failed: {0}")]
    Tls(String),
    /// The schema was written by a newer version of this crate: refusing to touch it.
    #[error(
        "schema {schema:?} is at version {found}, newer than this build knows ({supported}); \
         upgrade chat-store-postgres"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version found in the database.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
    /// Any other database error while opening (e.g. a migration failed).
    #[error("PostgreSQL error: {0}")]
    Database(String),
}

impl Error {
    /// Classifies a driver error met while connecting or migrating.
    pub(crate) fn from_connect(e: &tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let msg = db.message().to_owned();
            if *code == SqlState::INVALID_CATALOG_NAME {
                return Error::DatabaseMissing(msg);
            }
            if code.code().starts_with("28") {
                return Error::Authentication(msg);
            }
            if is_unavailable_state(code) {
                return Error::Unreachable(msg);
            }
            return Error::Database(format!("{msg} (SQLSTATE {})", code.code()));
        }
        // tokio-postgres keeps its error kinds private; a TLS failure reads
        // "error performing TLS handshake: <why>".
        let text = describe(e);
        match text.strip_prefix("error performing TLS handshake: ") {
            Some(why) => Error::Tls(why.to_owned()),
            None => Error::Unreachable(text),
        }
    }
}

impl From<Error> for CoreError {
    fn from(e: Error) -> Self {
        let code = match e {
            Error::InvalidConfig(_) => ErrorCode::Invalid,
            Error::Unreachable(_)
            | Error::DatabaseMissing(_)
            | Error::Authentication(_)
            | Error::Tls(_) => ErrorCode::Unavailable,
            Error::SchemaTooNew { .. } | Error::Database(_) => ErrorCode::Internal,
        };
        CoreError::new(code, e.to_string()).with_source(e)
    }
}

/// The driver error with its source chain, which holds the useful part
/// ("Connection refused", "timed out", …).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

/// SQLSTATEs that mean "the server is going away, starting, or out of room": retry later.
fn is_unavailable_state(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08") // connection exception
        || c.starts_with("53") // insufficient resources (too many connections, disk full)
        || c.starts_with("57P") // admin/crash shutdown, cannot connect now
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// Maps a driver error into chat-core's portable kinds.
pub(crate) fn map_pg(e: tokio_postgres::Error) -> CoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let c = code.code();
        let msg = format!("{} (SQLSTATE {c})", db.message());
        let kind = if *code == SqlState::UNIQUE_VIOLATION {
            ErrorCode::Conflict
        } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
            ErrorCode::NotFound
        } else if is_unavailable_state(code) {
            ErrorCode::Unavailable
        } else if c.starts_with("22") || c.starts_with("23") {
            ErrorCode::Invalid
        } else {
            ErrorCode::Internal
        };
        return CoreError::new(kind, msg).with_source(e);
    }
    // No SQLSTATE: the connection broke (closed, I/O error, time-out, refused), or a value
    // did not convert. tokio-postgres keeps its error kinds private; a conversion error is
    // the only kind that does not involve the connection, and says "serializing" or
    // "deserializing".
    let text = describe(&e);
    let kind = if text.contains("serializing") {
        ErrorCode::Internal
    } else {
        ErrorCode::Unavailable
    };
    CoreError::new(kind, text).with_source(e)
}

/// The retry hint given when the pool could not serve a call in time.
pub(crate) const POOL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Maps a pool error into chat-core's portable kinds. A time-out (no free connection
/// within the configured wait, or no new connection within the connect time-out) is
/// `unavailable` with a retry hint and a message naming the limit that was reached.
pub(crate) fn map_pool(pool: &Pool, e: PoolError) -> CoreError {
    let kind = match e {
        PoolError::Backend(e) => return map_pg(e),
        PoolError::Timeout(kind) => kind,
        other => {
            return CoreError::unavailable(format!("PostgreSQL pool: {}", describe(&other)))
                .with_source(other)
        }
    };
    let timeouts = pool.timeouts();
    let limit = |t: Option<Duration>| t.map_or_else(|| "no limit".to_owned(), |d| format!("{d:?}"));
    let message = match kind {
        TimeoutType::Wait => format!(
            "PostgreSQL is busy: no connection of the pool ({} connections) became free \
             within {}; retry later",
            pool.status().max_size,
            limit(timeouts.wait)
        ),
        TimeoutType::Create => format!(
            "PostgreSQL did not accept a new connection within {}; retry later",
            limit(timeouts.create)
        ),
        TimeoutType::Recycle => format!(
            "PostgreSQL did not answer a pooled connection's check within {}; retry later",
            limit(timeouts.recycle)
        ),
    };
    CoreError::unavailable(message)
        .with_retry_after(POOL_RETRY_AFTER)
        .with_source(PoolError::Timeout(kind))
}
