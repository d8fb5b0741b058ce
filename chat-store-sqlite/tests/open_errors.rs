//! Bad input at open: each case gives a typed error naming the problem, and the file on
//! disk is left byte for byte as it was.

use std::path::Path;

use chat_store_sqlite::{Config, Error, SqliteStore, SCHEMA_VERSION};

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).expect("read file")
}

#[tokio::test]
async fn a_missing_directory_is_named_and_not_created() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("nope").join("chat.db");
    let err = SqliteStore::open(Config::path(&path))
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, Error::MissingDirectory { dir, .. } if dir == &tmp.path().join("nope")),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!tmp.path().join("nope").exists(), "nothing was created");
}

#[tokio::test]
async fn a_read_only_file_is_refused_untouched() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("chat.db");
    drop(
        SqliteStore::open(Config::path(&path))
            .await
            .expect("create"),
    );
    // Let the first store's writer finish and close.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let before = bytes(&path);
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).expect("chmod");
    let err = SqliteStore::open(Config::path(&path))
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, Error::ReadOnly { path: p } if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(bytes(&path), before, "the file is unchanged");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_untouched() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("notes.txt");
    let text: Vec<u8> = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).expect("write");
    let err = SqliteStore::open(Config::path(&path))
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, Error::NotADatabase { path: p } if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(bytes(&path), text, "the file is unchanged");
    assert!(
        !tmp.path().join("notes.txt-wal").exists(),
        "no WAL was created"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_untouched() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("future.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create");
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .expect("future schema");
    }
    let before = bytes(&path);
    let err = SqliteStore::open(Config::path(&path))
        .await
        .expect_err("must fail");
    assert!(
        matches!(&err, Error::SchemaTooNew { found: 99, supported, .. } if *supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(bytes(&path), before, "the file is unchanged");
    let conn = rusqlite::Connection::open(&path).expect("reopen");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get("journal_mode"))
        .expect("mode");
    assert_eq!(mode, "delete", "not even switched to WAL");
}

#[tokio::test]
async fn an_existing_database_reopens_with_its_data() {
    use chat_core::model::{NewRoom, Visibility};
    use chat_core::ports::Store;
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("chat.db");
    let alice = chat_core::UserId::new("alice").expect("user");
    let id = chat_core::ConversationId(uuid::Uuid::new_v4());
    {
        let store = SqliteStore::open(Config::path(&path))
            .await
            .expect("create");
        store
            .create_room(NewRoom {
                id,
                name: "kept".into(),
                visibility: Visibility::Public,
                created_by: alice.clone(),
                created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_123)
                    .expect("time"),
            })
            .await
            .expect("room");
    }
    let store = SqliteStore::open(Config::path(&path))
        .await
        .expect("reopen");
    let room = store
        .room_by_name("kept")
        .await
        .expect("read")
        .expect("room");
    assert_eq!(room.id, id);
    assert_eq!(room.created_at.timestamp_millis(), 1_700_000_000_123);
}

#[tokio::test]
async fn a_zero_pool_is_a_config_error() {
    let err = SqliteStore::open(Config::in_memory().read_pool_size(0))
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}
