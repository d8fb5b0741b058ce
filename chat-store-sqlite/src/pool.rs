//! A small pool of read-only connections. Reads run on tokio's blocking threads, so a long
//! history read never blocks the writer or the async workers.

use std::sync::{Arc, Mutex};

use chat_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::Semaphore;

/// Opens one more read connection (used to replace one lost to a panic).
pub(crate) type Opener = Box<dyn Fn() -> rusqlite::Result<Connection> + Send + Sync>;

/// At most `size` reads at a time, each on its own connection.
pub(crate) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    open: Opener,
}

impl ReadPool {
    pub(crate) fn new(conns: Vec<Connection>, open: Opener) -> Self {
        ReadPool {
            permits: Semaphore::new(conns.len()),
            idle: Mutex::new(conns),
            open,
        }
    }

    /// Runs `f` on an idle read connection on a blocking thread.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::unavailable("the store is closed"))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = match pool.take() {
                Some(c) => c,
                None => (pool.open)().map_err(crate::row::map_err)?,
            };
            let out = f(&conn);
            pool.put(conn);
            out
        })
        .await
        .map_err(|e| Error::internal(format!("a read task failed: {e}")))?
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// Runs a read of several statements in one read transaction, so it sees one snapshot.
pub(crate) fn snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let tx = conn.unchecked_transaction().map_err(crate::row::map_err)?;
    let out = f(&tx)?;
    tx.finish().map_err(crate::row::map_err)?;
    Ok(out)
}
