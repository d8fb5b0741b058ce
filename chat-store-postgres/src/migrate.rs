//! Versioned migrations, embedded in the crate and applied on open.
//!
//! Each migration runs in its own transaction and records its version in
//! `schema_migrations`. The whole run holds a session advisory lock keyed by the schema
//! name, so several nodes opening the same database at once apply each migration once.
//! A schema whose version is newer than [`SCHEMA_VERSION`] is refused.

use std::time::Duration;

use crate::error::{describe, Error, Result};
use crate::tls::Tls;

/// The migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (2, "threads", include_str!("migrations/0002_threads.sql")),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i32 = 2;

/// First key of the advisory lock taken while migrating ("chat").
const LOCK_CLASS: i32 = 0x6368_6174;

/// Connects once (outside the pool), takes the lock, applies what is missing. The
/// connection (TCP, TLS, start-up) must be made within `connect_timeout`: a server that
/// accepts and never answers is unreachable, not a hang.
pub(crate) async fn migrate(
    cfg: &tokio_postgres::Config,
    tls: &Tls,
    connect_timeout: Duration,
    schema: &str,
) -> Result<()> {
    let (mut client, connection) =
        tokio::time::timeout(connect_timeout, cfg.connect(tls.connector.clone()))
            .await
            .map_err(|_| {
                Error::Unreachable(format!(
                    "no answer within {connect_timeout:?} (connect, TLS and start-up)"
                ))
            })?
            .map_err(|e| Error::from_connect(&e))?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %describe(&e), "migration connection ended");
        }
    });
    let result = locked(&mut client, schema).await;
    drop(client); // closing the session also releases the advisory lock
    let _ = task.await;
    result
}

async fn locked(client: &mut tokio_postgres::Client, schema: &str) -> Result<()> {
    client
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &schema],
        )
        .await
        .map_err(|e| Error::from_connect(&e))?;
    let result = apply(client, schema).await;
    let _ = client
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&LOCK_CLASS, &schema],
        )
        .await;
    result
}

async fn apply(client: &mut tokio_postgres::Client, schema: &str) -> Result<()> {
    let db = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(d) => Error::Database(format!("migrating schema {schema:?}: {}", d.message())),
        None => Error::from_connect(&e),
    };
    // `schema` was validated: lower-case letters, digits and `_` only.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(db)?;
    let found: i32 = client
        .query_one(
            &format!("SELECT COALESCE(max(version), 0) AS version FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .map_err(db)?
        .try_get("version")
        .map_err(db)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            schema: schema.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute(&format!("SET LOCAL search_path TO {schema}; {sql}"))
            .await
            .map_err(db)?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[version, name],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(schema, version, name, "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, (v, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i32 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
