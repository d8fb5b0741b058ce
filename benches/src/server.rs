//! The bench server: our engine behind `chat_transport_ws::serve` (and, when asked,
//! `chat_transport_grpc::serve` on the same engine), over a chosen store, with the limits
//! raised for load. The `bench-server` binary and the CI smoke test
//! both start it through [`start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::model::Limits;
use chat_core::ports::Store;
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the server keeps messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// `MemoryStore`.
    Memory,
    /// SQLite in a fresh temporary directory (removed on exit).
    Sqlite,
    /// PostgreSQL at this URL, in a schema of its own (dropped on exit).
    Postgres(String),
}

impl StoreKind {
    /// Parses `memory`, `sqlite` or `postgres` (the URL from `CHAT_TEST_PG_URL`, else
    /// `postgres://postgres@127.0.0.1:5432/postgres`).
    pub fn parse(s: &str) -> Option<StoreKind> {
        match s {
            "memory" => Some(StoreKind::Memory),
            "sqlite" => Some(StoreKind::Sqlite),
            "postgres" | "pg" => Some(StoreKind::Postgres(
                std::env::var("CHAT_TEST_PG_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            )),
            _ => None,
        }
    }
}

/// How the bench server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The store.
    pub store: StoreKind,
    /// The HS256 secret of the tokens.
    pub secret: String,
    /// Frames queued per connection before a slow consumer is cut off.
    pub queue_capacity: usize,
    /// Appends that may wait for the store at once (`Limits::max_pending_appends`; 0:
    /// no bound). The engine's default when `None`.
    pub max_pending_appends: Option<usize>,
    /// Turns on the admin routes (`GET /api/v1/admin/stats`) with this key.
    pub admin_key: Option<String>,
    /// Serve `wss://` with this certificate and key instead of `ws://` (to compare the
    /// two).
    pub tls: Option<chat_tls::TlsFiles>,
    /// Also serve the gRPC transport (`chat.ChatService`) on this address, on the same
    /// engine; over TLS with the same certificate when `tls` is set.
    pub grpc: Option<SocketAddr>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            store: StoreKind::Memory,
            secret: "bench-secret".into(),
            queue_capacity: Config::default().queue_capacity,
            max_pending_appends: None,
            admin_key: None,
            tls: None,
            grpc: None,
        }
    }
}

/// A running bench server.
#[derive(Debug)]
pub struct BenchServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the gRPC transport listens, when [`ServerOptions::grpc`] was set.
    pub grpc_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    grpc_stop: Option<oneshot::Sender<()>>,
    grpc_task: Option<JoinHandle<chat_transport_grpc::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchServer {
    /// Stops it gracefully and waits (at most 15 s).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.grpc_stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.task).await;
        if let Some(task) = self.grpc_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

/// The transport settings for load: the product's queue and batching, but no flood cap
/// and no idle timeout or pings during a run.
pub fn transport_config(opts: &ServerOptions) -> Config {
    let mut c = Config::default()
        .queue_capacity(opts.queue_capacity)
        .keepalive(Duration::from_secs(600), Duration::from_secs(1200))
        .flood_limit(1_000_000, Duration::from_secs(1));
    c.write_timeout = Duration::from_secs(30);
    c.shutdown_grace = Duration::from_secs(5);
    if let Some(key) = &opts.admin_key {
        c = c.admin_api_key(key.clone());
    }
    c
}

/// The gRPC transport's settings for load, matching [`transport_config`]: the same queue,
/// no HTTP/2 pings during a run, the same write timeout and shutdown grace.
pub fn grpc_config(opts: &ServerOptions) -> chat_transport_grpc::GrpcConfig {
    chat_transport_grpc::GrpcConfig::default()
        .queue_capacity(opts.queue_capacity)
        .keepalive(Duration::from_secs(600), Duration::from_secs(1200))
        .write_timeout(Duration::from_secs(30))
        .shutdown_grace(Duration::from_secs(5))
}

/// The engine's limits for load: no per-session command rate; the bound on pending
/// appends as asked.
pub fn limits(opts: &ServerOptions) -> Limits {
    let mut limits = Limits::default();
    limits.commands_per_second = 0;
    limits.max_resume_gap = 10_000;
    if let Some(n) = opts.max_pending_appends {
        limits.max_pending_appends = n;
    }
    limits
}

/// Opens the store, builds the engine and serves on `listener` until [`BenchServer::stop`].
///
/// # Errors
/// When the store cannot be opened or the address is unknown.
pub async fn start(
    listener: tokio::net::TcpListener,
    opts: &ServerOptions,
) -> Result<BenchServer, String> {
    let mut dir = None;
    let store: Arc<dyn Store> = match &opts.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Sqlite => {
            let d = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let path = d.path().join("bench.db");
            dir = Some(d);
            Arc::new(
                chat_store_sqlite::SqliteStore::open(chat_store_sqlite::Config::path(path))
                    .await
                    .map_err(|e| format!("sqlite: {e}"))?,
            )
        }
        StoreKind::Postgres(url) => {
            let schema = format!("bench_{}", std::process::id());
            Arc::new(
                chat_store_postgres::PgStore::open(
                    chat_store_postgres::PgConfig::new(url.clone())
                        .schema(schema)
                        .drop_schema_on_drop(true),
                )
                .await
                .map_err(|e| format!("postgres: {e}"))?,
            )
        }
    };
    let engine = Engine::builder(store)
        .limits(limits(opts))
        .build()
        .await
        .map_err(|e| format!("engine: {e}"))?;
    let auth = Arc::new(JwtAuthenticator::hs256(opts.secret.as_bytes()));
    let grpc_state =
        chat_transport_grpc::GrpcState::new(engine.clone(), auth.clone(), grpc_config(opts));
    let state = ChatState::new(engine, auth, transport_config(opts));
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    let tls = match &opts.tls {
        Some(files) => {
            Some(chat_tls::ServerTls::load(files.clone()).map_err(|e| format!("TLS: {e}"))?)
        }
        None => None,
    };
    let (grpc_stop, grpc_task, grpc_addr) = match opts.grpc {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| format!("bind {at} (gRPC): {e}"))?;
            let grpc_addr = listener
                .local_addr()
                .map_err(|e| format!("local address: {e}"))?;
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(chat_transport_grpc::serve(
                listener,
                grpc_state,
                tls.as_ref().map(|t| t.config()),
                async move {
                    let _ = stopped.await;
                },
            ));
            (Some(stop), Some(task), Some(grpc_addr))
        }
        None => (None, None, None),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let task = match tls {
        Some(tls) => tokio::spawn(chat_transport_ws::serve_tls(
            listener,
            state,
            tls.config(),
            stopped,
        )),
        None => tokio::spawn(chat_transport_ws::serve(listener, state, stopped)),
    };
    Ok(BenchServer {
        addr,
        grpc_addr,
        stop: Some(stop),
        task,
        grpc_stop,
        grpc_task,
        _dir: dir,
    })
}
