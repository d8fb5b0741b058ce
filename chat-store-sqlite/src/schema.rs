//! The schema and its versioned migrations, applied on open.
//!
//! A small runner on `PRAGMA user_version` rather than the `rusqlite_migration` crate:
//! that crate keeps its version the same way, but it ties our rusqlite version to its own,
//! and we need one thing it does not give us in the shape we want: to refuse a database
//! from a newer version *before* writing anything to it (not even switching it to WAL),
//! with our own typed [`Error::SchemaTooNew`](crate::Error::SchemaTooNew). The runner is
//! the few lines of [`migrate`].
//!
//! Rules: a migration is never edited once released; a change is a new entry at the end
//! of [`MIGRATIONS`]. Each runs in its own transaction together with the bump of
//! `user_version`, so a crash leaves the database at one version or the next.

use rusqlite::Connection;

/// Every migration, in order; the database's `user_version` is how many have run.
///
/// Version 1 — the tables of ARCHITECTURE.md, few and narrow indexes:
/// - `messages` is `WITHOUT ROWID`, keyed by `(conversation, seq)`: history pages, a single
///   message, the newest message and unread counts are all range walks of that key, and
///   appends to one conversation land on the same last page.
/// - one narrow partial unique index on `(sender, client_id)` only where a client id was
///   given (idempotent appends).
/// - `members` keyed by `(conversation, user)`, plus `(user)` (which carries the key) for
///   "my conversations", unread totals and the conversation list.
/// - rooms' names and direct pairs unique through partial indexes.
/// - Times are INTEGER unix milliseconds; ids are 16-byte BLOBs.
///
/// Version 2 — replies, threads and attachments: a message's `reply_to` and `thread`
/// (its root's seq), the root's `reply_count` (kept in the appending and deleting
/// transactions), `attachments` as a JSON array (NULL when none), and a partial index on
/// `(conversation, thread, seq)` over replies only, so a thread page is a range walk.
pub(crate) const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE users (
    id           TEXT PRIMARY KEY NOT NULL,
    display_name TEXT,
    last_seen    INTEGER
) WITHOUT ROWID;

CREATE TABLE conversations (
    id         BLOB PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('room', 'direct')),
    name       TEXT,
    visibility TEXT,
    user_a     TEXT,
    user_b     TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX conversations_name ON conversations (name) WHERE name IS NOT NULL;
CREATE UNIQUE INDEX conversations_pair ON conversations (user_a, user_b) WHERE user_a IS NOT NULL;

CREATE TABLE members (
    conversation  BLOB NOT NULL,
    user          TEXT NOT NULL,
    role          TEXT NOT NULL,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    read_seq      INTEGER NOT NULL DEFAULT 0,
    joined_at     INTEGER NOT NULL,
    PRIMARY KEY (conversation, user)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user);

CREATE TABLE messages (
    conversation BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    id           BLOB NOT NULL,
    sender       TEXT NOT NULL,
    client_id    TEXT,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    edited_at    INTEGER,
    deleted_at   INTEGER,
    PRIMARY KEY (conversation, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_client_id ON messages (sender, client_id) WHERE client_id IS NOT NULL;

CREATE TABLE friendships (
    a            TEXT NOT NULL,
    b            TEXT NOT NULL,
    state        TEXT NOT NULL,
    pending_from TEXT,
    a_blocks_b   INTEGER NOT NULL,
    b_blocks_a   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX friendships_by_b ON friendships (b);
",
    r"
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN thread INTEGER;
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN attachments TEXT;
CREATE INDEX messages_thread ON messages (conversation, thread, seq) WHERE thread IS NOT NULL;
",
];

/// The schema version this code writes: the number of migrations.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's schema version (`PRAGMA user_version`). Reading it is also the first
/// touch of the file, so a file that is not a database fails here, before any write.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get("user_version"))
}

/// Applies every migration after `from`, each in its own immediate transaction.
pub(crate) fn migrate(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 1;
        if target <= from {
            continue;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Re-check under the write lock: another process may have migrated meanwhile.
        if version(&tx)? >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
    }
    Ok(())
}
