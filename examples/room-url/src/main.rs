//! Run: `cargo run -p example-room-url` (SQLite in ./rooms.db), or with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres` for PostgreSQL.
//!
//! One WebSocket URL per room, with durable history: a client connects to
//! `ws://host/ws/rooms/{room}?token=…`, is joined to that room (created when missing),
//! asks for `history`, sends messages, and sees others join and leave. Messages are kept
//! in SQLite or PostgreSQL; configuration comes from the environment, logs are JSON, and
//! SIGINT or SIGTERM shut down gracefully without losing an acknowledged message.

use std::sync::Arc;
use std::time::Duration;

use chat_core::ports::Store;
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TokenSigner};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8082".into());
    let secret = std::env::var("JWT_SECRET")
        .unwrap_or_else(|_| "example-only-secret-change-me-0123456789".into());

    let store: Arc<dyn Store> = match std::env::var("DATABASE_URL") {
        Ok(url) => Arc::new(
            chat_store_postgres::PgStore::open(
                chat_store_postgres::PgConfig::new(url).schema("rooms_example"),
            )
            .await?,
        ),
        Err(_) => Arc::new(
            chat_store_sqlite::SqliteStore::open(chat_store_sqlite::Config::path("rooms.db"))
                .await?,
        ),
    };
    let engine = Engine::builder(store).build().await?;
    let state = ChatState::new(
        engine,
        Arc::new(JwtAuthenticator::hs256(secret.as_bytes())),
        Config::default(),
    );

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let token = TokenSigner::hs256(secret.as_bytes()).mint(
        "alice",
        Some("Alice"),
        Duration::from_secs(3600),
    )?;
    tracing::info!(%listen, "room service up");
    println!("Connect: ws://{listen}/ws/rooms/general?create=true&token={token}");
    println!(
        r#"Then: {{"id":1,"type":"history","conversation":"<id from the join reply>","limit":50}}"#
    );
    chat_transport_ws::serve(listener, state, shutdown()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
    }
}
