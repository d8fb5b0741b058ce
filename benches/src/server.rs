//! The bench server: our engine behind `chat_transport_ws::serve` (and, when asked,
//! `chat_transport_grpc::serve` on the same engine), over a chosen store and bus, with the
//! limits raised for load. The `bench-server` binary and the CI smoke test both start it
//! through [`start`]; the smoke test of several nodes in one process gives [`start_with`]
//! one store and one bus for all of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::model::Limits;
use chat_core::ports::{Bus, Store};
use chat_core::{Engine, NodeId};
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

/// How the nodes of a cluster reach each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    /// The engine's in-process bus: one node (or several engines of one process).
    Memory,
    /// `chat-bus-redis` at this `redis://` URL.
    Redis(String),
    /// `chat-bus-nats` at this `nats://` URL (the server runs JetStream).
    Nats(String),
}

impl BusKind {
    /// Parses `memory`, `redis://…` or `nats://…`.
    pub fn parse(s: &str) -> Option<BusKind> {
        if s == "memory" {
            Some(BusKind::Memory)
        } else if s.starts_with("redis://") {
            Some(BusKind::Redis(s.to_owned()))
        } else if s.starts_with("nats://") {
            Some(BusKind::Nats(s.to_owned()))
        } else {
            None
        }
    }
}

/// How the bench server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The store.
    pub store: StoreKind,
    /// The bus. A server bus needs a store that the nodes share (PostgreSQL).
    pub bus: BusKind,
    /// The engine's node id (a new one when `None`).
    pub node_id: Option<NodeId>,
    /// Allows a server bus over a store the nodes cannot share (memory, SQLite): one node
    /// alone on Redis or NATS, to measure what the bus costs a node (its publications
    /// come back to it and are dropped). Two such nodes would not see each other's
    /// messages in their stores.
    pub one_node_bus: bool,
    /// PostgreSQL: use this schema and leave it in place on exit, so that several nodes
    /// share it (whoever started them drops it). `None`: a schema of this process's own,
    /// dropped on exit.
    pub pg_schema: Option<String>,
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
            bus: BusKind::Memory,
            one_node_bus: false,
            node_id: None,
            pg_schema: None,
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

/// Opens the store and the bus, builds the engine and serves on `listener` until
/// [`BenchServer::stop`].
///
/// # Errors
/// A server bus over a store that serves one process only (memory, SQLite); a store or
/// bus that cannot be opened; an unknown address.
pub async fn start(
    listener: tokio::net::TcpListener,
    opts: &ServerOptions,
) -> Result<BenchServer, String> {
    if opts.bus != BusKind::Memory
        && !matches!(opts.store, StoreKind::Postgres(_))
        && !opts.one_node_bus
    {
        return Err(
            "a server bus (redis://, nats://) needs a store the nodes share: --store postgres \
             (or --one-node-bus, to measure the bus's cost on one node)"
                .into(),
        );
    }
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
            let (schema, drop) = match &opts.pg_schema {
                Some(shared) => (shared.clone(), false),
                None => (format!("bench_{}", std::process::id()), true),
            };
            Arc::new(
                chat_store_postgres::PgStore::open(
                    chat_store_postgres::PgConfig::new(url.clone())
                        .schema(schema)
                        .drop_schema_on_drop(drop),
                )
                .await
                .map_err(|e| format!("postgres: {e}"))?,
            )
        }
    };
    let bus: Option<Arc<dyn Bus>> = match &opts.bus {
        BusKind::Memory => None,
        BusKind::Redis(url) => Some(Arc::new(
            chat_bus_redis::RedisBus::connect(url, chat_bus_redis::RedisBusConfig::default())
                .await
                .map_err(|e| format!("redis bus: {e}"))?,
        )),
        BusKind::Nats(url) => Some(Arc::new(
            chat_bus_nats::NatsBus::connect(url, chat_bus_nats::NatsBusConfig::default())
                .await
                .map_err(|e| format!("nats bus: {e}"))?,
        )),
    };
    let mut server = start_with(listener, opts, store, bus).await?;
    server._dir = dir;
    Ok(server)
}

/// Builds an engine over `store` and `bus` (the engine's in-process bus when `None`) and
/// serves on `listener` until [`BenchServer::stop`]. Engines given one store and one
/// [`MemoryBus`](chat_core::memory::MemoryBus) are the nodes of a cluster in one process.
/// `opts.store` and `opts.bus` are not read.
///
/// # Errors
/// When the engine does not start or the address is unknown.
pub async fn start_with(
    listener: tokio::net::TcpListener,
    opts: &ServerOptions,
    store: Arc<dyn Store>,
    bus: Option<Arc<dyn Bus>>,
) -> Result<BenchServer, String> {
    let mut builder = Engine::builder(store).limits(limits(opts));
    if let Some(bus) = bus {
        builder = builder.bus(bus);
    }
    if let Some(node) = opts.node_id {
        builder = builder.node(node);
    }
    let engine = builder.build().await.map_err(|e| format!("engine: {e}"))?;
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
            let listener =
                chat_transport_ws::bind(at).map_err(|e| format!("bind {at} (gRPC): {e}"))?;
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
        _dir: None,
    })
}
