//! The whole chat-core store conformance suite, against a database file in a temp dir and
//! against an in-memory database.

use std::path::PathBuf;
use std::sync::Arc;

use chat_core::ports::Store;
use chat_store_sqlite::{Config, SqliteStore};

/// A store on a database file in a fresh temp dir, and the dir's path.
///
/// `conformance_tests!` hands the test only the store, so the test's runtime owns the
/// directory: a task that never finishes holds the `TempDir`, and tokio drops it — which
/// removes the directory — when the runtime shuts down at the end of the test, passed or
/// failed.
async fn open_in_temp_dir() -> (Arc<dyn Store>, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("chat-sqlite-conformance-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let path = dir.path().to_owned();
    let store = SqliteStore::open(Config::path(path.join("chat.db")))
        .await
        .expect("open store");
    tokio::spawn(async move {
        let _dir = dir;
        std::future::pending::<()>().await;
    });
    (Arc::new(store), path)
}

mod file {
    use super::*;

    chat_core::conformance_tests!(|| async { open_in_temp_dir().await.0 });

    /// What the factory relies on: the directory outlives the store for as long as the
    /// test runs, and is gone once the test's runtime has shut down.
    #[test]
    fn the_temp_dir_is_removed_when_the_test_ends() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let path = rt.block_on(async {
            let (store, path) = open_in_temp_dir().await;
            assert!(path.join("chat.db").is_file(), "the database is in the dir");
            drop(store);
            path
        });
        assert!(path.is_dir(), "kept while the test's runtime runs");
        drop(rt);
        assert!(!path.exists(), "removed when the runtime shut down");
    }
}

mod memory {
    use super::*;

    chat_core::conformance_tests!(|| async {
        let store = SqliteStore::open(Config::in_memory().read_pool_size(2))
            .await
            .expect("open store");
        Arc::new(store) as Arc<dyn Store>
    });
}
