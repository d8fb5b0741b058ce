//! The whole chat-core store conformance suite, against a database file in a temp dir and
//! against an in-memory database.

use std::sync::Arc;

use chat_core::ports::Store;
use chat_store_sqlite::{Config, SqliteStore};

mod file {
    use super::*;

    chat_core::conformance_tests!(|| async {
        // The factory cannot hand the directory's guard to the test, so the directory is
        // kept, under cargo's target/tmp (removed by `cargo clean`), not in /tmp.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir")
            .keep();
        let store = SqliteStore::open(Config::path(dir.join("chat.db")))
            .await
            .expect("open store");
        Arc::new(store) as Arc<dyn Store>
    });
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
