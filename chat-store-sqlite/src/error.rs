//! This crate's errors: what can go wrong when opening a database, and how SQLite's
//! errors map to the engine's portable kinds.

use std::path::PathBuf;

use rusqlite::ffi;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store could not be opened. Each names the path and the problem; none of them
/// leaves anything written to the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory that should hold the database does not exist (it is not created).
    #[error("cannot open {path:?}: the directory {dir:?} does not exist")]
    MissingDirectory {
        /// The database path asked for.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The file (or the place it would be created) cannot be written.
    #[error("cannot open {path:?}: the database file is read-only")]
    ReadOnly {
        /// The database path.
        path: PathBuf,
    },
    /// The file exists but is not a SQLite database (or is encrypted or corrupt).
    #[error("cannot open {path:?}: the file is not a SQLite database")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The database was written by a newer version of this crate; it is left untouched.
    #[error(
        "cannot open {path:?}: its schema version is {found}, newer than the {supported} \
         this version knows; upgrade chat-store-sqlite (the file was not modified)"
    )]
    SchemaTooNew {
        /// The database path.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
    /// The configuration cannot work (a pool or batch size of zero, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Any other SQLite failure while opening.
    #[error("cannot open {path:?}: {source}")]
    Sqlite {
        /// The database path (or `:memory:`).
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn sqlite(path: impl Into<PathBuf>, e: rusqlite::Error) -> Self {
        Error::Sqlite {
            path: path.into(),
            source: Box::new(e),
        }
    }
}

impl From<Error> for chat_core::Error {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Config(_) => chat_core::ErrorCode::Invalid,
            Error::MissingDirectory { .. } | Error::ReadOnly { .. } => {
                chat_core::ErrorCode::Unavailable
            }
            _ => chat_core::ErrorCode::Internal,
        };
        chat_core::Error::new(code, e.to_string()).with_source(e)
    }
}

/// Maps a driver error to the engine's portable kinds: unique and primary-key violations
/// are `conflict`; busy, locked, I/O, full disk and cannot-open are `unavailable` (the
/// caller may retry); everything else is `internal`.
pub(crate) fn map(e: rusqlite::Error) -> chat_core::Error {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            C::ConstraintViolation
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return chat_core::Error::conflict(e.to_string()).with_source(e);
            }
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::SystemIoFailure
            | C::DiskFull
            | C::CannotOpen
            | C::OutOfMemory
            | C::FileLockingProtocolFailed => {
                return chat_core::Error::unavailable(format!("sqlite: {e}")).with_source(e);
            }
            _ => {}
        }
    }
    chat_core::Error::internal(format!("sqlite: {e}")).with_source(e)
}

/// True for SQLite's "file is not a database".
pub(crate) fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase)
}

/// True for SQLite's "attempt to write a readonly database" and "cannot open".
pub(crate) fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ReadOnly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::ErrorCode;

    #[test]
    fn unique_violation_is_conflict_and_busy_is_unavailable() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
            .expect("schema");
        let dup = conn
            .execute("INSERT INTO t VALUES (1)", [])
            .expect_err("duplicate key");
        assert_eq!(map(dup).code(), ErrorCode::Conflict);
        let busy = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), None);
        assert_eq!(map(busy).code(), ErrorCode::Unavailable);
        let other = rusqlite::Error::QueryReturnedNoRows;
        assert_eq!(map(other).code(), ErrorCode::Internal);
    }
}
