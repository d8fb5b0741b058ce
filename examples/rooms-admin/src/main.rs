//! Run: `cargo run -p example-rooms-admin`, then follow what it prints.
//!
//! Rooms created on first join, with an admin API. A gateway in front signs users in and
//! puts a JWT in the `access_token` cookie; clients join rooms by name and see join/leave
//! notices and typing; an internal HTTP API, guarded by `x-internal-api-key`, lets other
//! services post system messages into a room and read connection stats. Rooms live in
//! memory, as long as the process.

use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TokenSigner};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The gateway and this service share the secret; the internal key is for other services.
    let secret = std::env::var("JWT_SECRET")
        .unwrap_or_else(|_| "example-only-secret-change-me-0123456789".into());
    let internal_key =
        std::env::var("INTERNAL_API_KEY").unwrap_or_else(|_| "example-internal-key".into());

    // Rooms live as long as the process: nothing here needs to survive a restart.
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    let config = Config::default()
        .token_cookie("access_token")
        .admin_api_key(internal_key.clone());
    let state = ChatState::new(
        engine,
        Arc::new(JwtAuthenticator::hs256(secret.as_bytes())),
        config,
    );

    let listener = chat_transport_ws::bind("127.0.0.1:8081".parse()?)?;
    let signer = TokenSigner::hs256(secret.as_bytes());
    let day = Duration::from_secs(24 * 3600);
    println!("Rooms service on ws://127.0.0.1:8081 (Ctrl-C stops it)\n");
    for user in ["alice", "bob"] {
        println!(
            "  {user}: cookie access_token={}",
            signer.mint(user, None, day)?
        );
    }
    println!(
        "\nJoin a room (created on first join), e.g. with websocat:\n  \
         websocat -H 'Cookie: access_token=<token>' 'ws://127.0.0.1:8081/ws/rooms/lobby?create=true'\n\
         then send {{\"type\":\"send\",\"conversation\":\"<id from the join reply>\",\"body\":\"hi\"}}\n\n\
         Internal API:\n  \
         curl -H 'x-internal-api-key: {internal_key}' -H 'content-type: application/json' \\\n       \
         -d '{{\"body\":\"Server maintenance in 5 minutes\"}}' http://127.0.0.1:8081/api/v1/admin/rooms/lobby/messages\n  \
         curl -H 'x-internal-api-key: {internal_key}' http://127.0.0.1:8081/api/v1/admin/stats\n"
    );
    chat_transport_ws::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
