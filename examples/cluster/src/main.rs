//! Run (PostgreSQL and Redis or NATS on this machine):
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres BUS=redis://127.0.0.1:6379 \
//!   cargo run -p example-cluster
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres BUS=nats://127.0.0.1:4222 \
//!   cargo run -p example-cluster
//! ```
//!
//! Three nodes of one cluster on one machine: each is an engine of its own with its own
//! connection to the bus, on one PostgreSQL schema, serving WebSocket and HTTP on ports
//! 8091, 8092 and 8093. Connect alice to one node and bob to another: they chat as if on
//! one server. In production each node is its own process (or machine) behind a load
//! balancer: `chat-server --store postgres://… --bus redis://…` on each
//! (docs/operations.md).

use std::sync::Arc;
use std::time::Duration;

use chat_core::ports::{Bus, Store};
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TokenSigner};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    let db = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let bus_url = std::env::var("BUS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let secret = std::env::var("JWT_SECRET")
        .unwrap_or_else(|_| "example-only-secret-change-me-0123456789".into());

    let mut nodes = Vec::new();
    for (i, port) in [8091u16, 8092, 8093].into_iter().enumerate() {
        // Each node opens its own store pool and bus connection, as separate processes do.
        let store: Arc<dyn Store> = Arc::new(
            chat_store_postgres::PgStore::open(
                chat_store_postgres::PgConfig::new(db.clone()).schema("cluster_example"),
            )
            .await?,
        );
        let bus: Arc<dyn Bus> = if bus_url.starts_with("nats://") {
            Arc::new(
                chat_bus_nats::NatsBus::connect(&bus_url, chat_bus_nats::NatsBusConfig::default())
                    .await?,
            )
        } else {
            Arc::new(
                chat_bus_redis::RedisBus::connect(
                    &bus_url,
                    chat_bus_redis::RedisBusConfig::default(),
                )
                .await?,
            )
        };
        let engine = Engine::builder(store).bus(bus).build().await?;
        let state = ChatState::new(
            engine,
            Arc::new(JwtAuthenticator::hs256(secret.as_bytes())),
            Config::default(),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        tracing::info!(node = i, port, "node up");
        nodes.push(tokio::spawn(chat_transport_ws::serve(
            listener,
            state,
            shutdown(),
        )));
    }

    let signer = TokenSigner::hs256(secret.as_bytes());
    let hour = Duration::from_secs(3600);
    let alice = signer.mint("alice", Some("Alice"), hour)?;
    let bob = signer.mint("bob", Some("Bob"), hour)?;
    println!("alice on node 1: ws://127.0.0.1:8091/ws?token={alice}");
    println!("bob on node 3:   ws://127.0.0.1:8093/ws?token={bob}");
    println!(
        r#"Both: {{"id":"1","type":"join","room":"lobby","create":true}} then {{"id":"2","type":"send","conversation":"<id>","body":"hi"}}"#
    );
    for n in futures::future::join_all(nodes).await {
        n??;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Completes on SIGINT or SIGTERM (each node waits on its own).
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
    }
}
