//! Shared test setup: the server's URL, and a fresh store in a schema of its own that is
//! dropped with the store.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chat_store_postgres::{PgConfig, PgStore};

/// The server under test: `CHAT_TEST_PG_URL`, else the local default.
pub(crate) fn url() -> String {
    std::env::var("CHAT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A schema name nobody else uses: `chat_test_<unix secs>_<random>`; the time lets
/// [`sweep_stale_schemas`] find leftovers of crashed runs.
pub(crate) fn fresh_schema() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("chat_test_{secs}_{}", &rand[..12])
}

/// A config for a fresh schema, dropped when the store is.
pub(crate) fn config() -> PgConfig {
    PgConfig::new(url())
        .schema(fresh_schema())
        .pool_size(8)
        .drop_schema_on_drop(true)
}

/// Opens a store in a fresh schema. Panics with a clear message when the server cannot be
/// reached: PostgreSQL tests never skip silently.
pub(crate) async fn open() -> PgStore {
    open_with(config()).await
}

/// Opens a store with `config`, sweeping stale schemas once per test binary.
pub(crate) async fn open_with(config: PgConfig) -> PgStore {
    sweep_stale_schemas().await;
    PgStore::open(config).await.unwrap_or_else(|e| {
        panic!(
            "cannot open the PostgreSQL store at {} ({e}); start the server \
             (scripts/test.sh does) or set CHAT_TEST_PG_URL",
            url()
        )
    })
}

/// A plain connection to the server, for checks behind the store's back.
pub(crate) async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", url()));
    tokio::spawn(conn);
    client
}

/// Drops `chat_test_*` schemas older than an hour (left by runs that crashed).
pub(crate) async fn sweep_stale_schemas() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok((client, conn)) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await else {
        return; // open() reports the unreachable server
    };
    tokio::spawn(conn);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let Ok(rows) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'chat\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get("nspname");
        let secs = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if secs.saturating_add(3600) < now {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}

/// True when a schema exists.
pub(crate) async fn schema_exists(name: &str) -> bool {
    raw()
        .await
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
        .await
        .expect("query pg_namespace")
        .is_some()
}

/// Drops a schema when dropped (for tests that open several stores on one schema).
pub(crate) struct DropSchema(pub String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        let name = self.0.clone();
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = raw().await;
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await;
            });
        });
        let _ = worker.join();
    }
}

/// A new room in `store`, owned by `owner`.
pub(crate) async fn room(
    store: &dyn chat_core::ports::Store,
    name: &str,
    owner: &str,
) -> chat_core::ConversationId {
    store
        .create_room(chat_core::model::NewRoom {
            id: chat_core::ConversationId(uuid::Uuid::new_v4()),
            name: name.to_owned(),
            visibility: chat_core::model::Visibility::Public,
            created_by: user(owner),
            created_at: chrono::DateTime::from_timestamp_millis(1_704_067_200_123).expect("time"),
        })
        .await
        .expect("create room")
        .id
}

/// A user id.
pub(crate) fn user(name: &str) -> chat_core::UserId {
    chat_core::UserId::new(name).expect("user id")
}

/// A new message.
pub(crate) fn msg(
    conv: chat_core::ConversationId,
    sender: &str,
    body: &str,
    client_id: Option<&str>,
) -> chat_core::model::NewMessage {
    chat_core::model::NewMessage {
        id: chat_core::MessageId(uuid::Uuid::new_v4()),
        conversation: conv,
        sender: user(sender),
        client_id: client_id.map(str::to_owned),
        kind: chat_core::model::MessageKind::User,
        body: body.to_owned(),
        created_at: chrono::Utc::now(),
        reply_to: None,
        thread: None,
        attachments: Vec::new(),
    }
}
