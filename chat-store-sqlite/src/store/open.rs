//! Opening a store: checking the path, migrating, starting the writer and the read pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;

use super::SqliteStore;
use crate::config::{Config, Location};
use crate::error::{self, Error, Result};
use crate::pool::{Opener, ReadPool};
use crate::{schema, writer};

/// A name and the flags for every connection of one store.
struct Target {
    /// What errors name.
    path: PathBuf,
    /// What SQLite opens (a URI for in-memory databases).
    open_as: String,
    uri: bool,
    wal: bool,
}

impl Target {
    fn flags(&self, write: bool) -> OpenFlags {
        let mut f = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        f |= if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        if self.uri {
            f |= OpenFlags::SQLITE_OPEN_URI;
        }
        f
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database described by `config`, applies pending
    /// migrations, and starts the writer thread and the read pool.
    ///
    /// Nothing is written before the file is known to be a database of a version this
    /// code understands.
    ///
    /// # Errors
    /// - [`Error::MissingDirectory`]: the file's directory does not exist.
    /// - [`Error::ReadOnly`]: the file (or its directory) cannot be written.
    /// - [`Error::NotADatabase`]: the file exists and is not a SQLite database.
    /// - [`Error::SchemaTooNew`]: the database was written by a newer version.
    /// - [`Error::Config`]: a pool size or batch size of zero.
    /// - [`Error::Sqlite`]: any other failure of SQLite.
    pub async fn open(config: Config) -> Result<SqliteStore> {
        if config.read_pool_size == 0 || config.max_batch == 0 {
            return Err(Error::Config(
                "read_pool_size and max_batch must be at least 1".into(),
            ));
        }
        let opened = tokio::task::spawn_blocking(move || open_blocking(config))
            .await
            .map_err(|e| Error::Config(format!("the open task failed: {e}")))??;
        Ok(opened)
    }
}

fn open_blocking(config: Config) -> Result<SqliteStore> {
    let target = match &config.location {
        Location::Path(p) => {
            precheck(p)?;
            Target {
                path: p.clone(),
                open_as: p.to_string_lossy().into_owned(),
                uri: false,
                wal: true,
            }
        }
        Location::Memory => Target {
            path: PathBuf::from(":memory:"),
            open_as: format!("file:/chat-memory-{}?vfs=memdb", uuid::Uuid::new_v4()),
            uri: true,
            wal: false,
        },
    };
    let fail = |e: rusqlite::Error| -> Error {
        if error::is_not_a_database(&e) {
            Error::NotADatabase {
                path: target.path.clone(),
            }
        } else if error::is_read_only(&e) {
            Error::ReadOnly {
                path: target.path.clone(),
            }
        } else {
            Error::sqlite(&target.path, e)
        }
    };
    let mut conn =
        Connection::open_with_flags(&target.open_as, target.flags(true)).map_err(fail)?;
    if conn
        .is_readonly(rusqlite::DatabaseName::Main)
        .map_err(fail)?
    {
        return Err(Error::ReadOnly {
            path: target.path.clone(),
        });
    }
    conn.busy_timeout(config.busy_timeout).map_err(fail)?;
    // The first read of the file: garbage fails here, before anything is written.
    let version = schema::version(&conn).map_err(fail)?;
    if version > schema::SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            path: target.path.clone(),
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    if target.wal {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get("journal_mode"))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::sqlite(
                &target.path,
                rusqlite::Error::InvalidParameterName(format!("journal_mode stayed {mode}")),
            ));
        }
    }
    conn.pragma_update(None, "synchronous", config.synchronous.as_sql())
        .map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn, version).map_err(fail)?;

    let busy = config.busy_timeout;
    let open_as = target.open_as.clone();
    let flags = target.flags(false);
    let opener: Opener = Box::new(move || {
        let c = Connection::open_with_flags(&open_as, flags)?;
        c.busy_timeout(busy)?;
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    });
    let readers = (0..config.read_pool_size)
        .map(|_| opener())
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(fail)?;
    // An in-memory database lives while a connection holds it; the writer's goes away
    // with its thread, so keep one more.
    let keep = match config.location {
        Location::Memory => Some(Arc::new(std::sync::Mutex::new(opener().map_err(fail)?))),
        Location::Path(_) => None,
    };

    let (tx, rx) = mpsc::channel(config.max_batch.saturating_mul(4).max(16));
    let max_batch = config.max_batch;
    std::thread::Builder::new()
        .name("chat-sqlite-writer".into())
        .spawn(move || writer::run(conn, rx, max_batch))
        .map_err(|e| {
            Error::sqlite(
                &target.path,
                rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            )
        })?;
    Ok(SqliteStore {
        writes: tx,
        reads: Arc::new(ReadPool::new(readers, opener)),
        _keep: keep,
    })
}

/// Checks the path before SQLite sees it, so that a bad path is named precisely and
/// nothing is created: the directory must exist; an existing file must be a writable file.
fn precheck(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::MissingDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::NotADatabase {
            path: path.to_owned(),
        }),
        // Checked by permission bits too, because a privileged process could still
        // write the file: read-only means read-only.
        Ok(m) if m.permissions().readonly() => Err(Error::ReadOnly {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly()) {
                return Err(Error::ReadOnly {
                    path: path.to_owned(),
                });
            }
            Ok(())
        }
        Err(e) => Err(Error::sqlite(
            path,
            rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        )),
    }
}
