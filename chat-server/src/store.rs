//! Opening the configured store.

use std::sync::Arc;

use anyhow::Context;
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;

use crate::cli::StoreSpec;

/// Opens (and migrates) the store named by `spec`.
///
/// # Errors
/// The store's own error (missing directory, not a database, newer schema, refused
/// connection, …) with its causes, under a line naming the store.
pub(crate) async fn open(spec: &StoreSpec, pg_schema: &str) -> anyhow::Result<Arc<dyn Store>> {
    match spec {
        StoreSpec::Sqlite(path) => {
            let store = chat_store_sqlite::SqliteStore::open(chat_store_sqlite::Config::path(path))
                .await
                .with_context(|| format!("opening the SQLite store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
        StoreSpec::Postgres(url) => {
            let store = chat_store_postgres::PgStore::open(
                chat_store_postgres::PgConfig::new(url.clone()).schema(pg_schema),
            )
            .await
            // Not the URL: it may hold a password.
            .with_context(|| format!("opening the PostgreSQL store (schema {pg_schema:?})"))?;
            Ok(Arc::new(store))
        }
        StoreSpec::Memory => Ok(Arc::new(MemoryStore::new())),
    }
}

/// Where the store lives, for logs (never prints a password).
pub(crate) fn describe(spec: &StoreSpec) -> String {
    match spec {
        StoreSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
        StoreSpec::Postgres(url) => match url.split_once('@') {
            Some((_, host)) => format!("postgres://…@{host}"),
            None => url.clone(),
        },
        StoreSpec::Memory => "memory (nothing survives a restart)".into(),
    }
}
