//! How to open a store.

use std::path::PathBuf;
use std::time::Duration;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file (its `-wal` and `-shm` files sit beside it). The directory must exist.
    Path(PathBuf),
    /// A private in-memory database (SQLite's `memdb`), shared by this store's writer and
    /// readers and gone when the store is dropped. For tests; it has no WAL.
    Memory,
}

/// SQLite's `synchronous` setting, i.e. when a commit is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `fsync` the WAL at every commit. A commit acknowledged to a caller survives a power
    /// loss, not just a process crash. **The default**, because the engine acknowledges a
    /// message only once it is durable (invariant 2); group commit pays one `fsync` per
    /// batch, not per message, so the cost is small under load.
    #[default]
    Full,
    /// `fsync` only at checkpoints. Still safe against a process crash (the WAL is in the
    /// OS page cache), and never corrupts the database, but the last commits before a
    /// power loss or kernel crash may be lost. Faster on slow disks.
    Normal,
}

impl Synchronous {
    pub(crate) fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Everything [`SqliteStore::open`](crate::SqliteStore::open) needs.
///
/// ```
/// use chat_store_sqlite::{Config, Synchronous};
/// let config = Config::path("/var/lib/chat/chat.db")
///     .synchronous(Synchronous::Full)
///     .read_pool_size(4)
///     .max_batch(512);
/// assert_eq!(config.max_batch, 512);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the database lives.
    pub location: Location,
    /// When commits are flushed; see [`Synchronous`]. Default: `Full`.
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another process before it gives up
    /// with `unavailable`. Default: 5 s.
    pub busy_timeout: Duration,
    /// Read-only connections for reads (history, lists, counts). Default: 4.
    pub read_pool_size: usize,
    /// The most writes the writer commits in one transaction. Default: 1024.
    pub max_batch: usize,
}

impl Config {
    /// A database file at `path`, with the defaults.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Config {
            location: Location::Path(path.into()),
            synchronous: Synchronous::default(),
            busy_timeout: Duration::from_secs(5),
            read_pool_size: 4,
            max_batch: 1024,
        }
    }

    /// A private in-memory database, with the defaults.
    pub fn in_memory() -> Self {
        Config {
            location: Location::Memory,
            ..Config::path(":memory:")
        }
    }

    /// Sets [`Config::synchronous`].
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// Sets [`Config::busy_timeout`].
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Sets [`Config::read_pool_size`].
    pub fn read_pool_size(mut self, n: usize) -> Self {
        self.read_pool_size = n;
        self
    }

    /// Sets [`Config::max_batch`].
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }
}
