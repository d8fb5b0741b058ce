//! Says hello in the room `lobby` and prints the room's messages until its own comes back.
//!
//! Run: `cargo run -p chat-client --example hello -- ws://127.0.0.1:8080/ws <token>`, or
//! with the URL and token in `CHAT_URL` and `CHAT_TOKEN`. With `CHAT_JWT_SECRET` set,
//! `cargo run -p chat-server` serves and `cargo run -p chat-server -- token --user alice`
//! prints a token for alice.

use chat_client::chat_core::model::Message;
use chat_client::chat_core::Event;
use chat_client::{Client, ClientEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("CHAT_URL").ok())
        .ok_or("usage: hello <ws://host/ws> <token> (or CHAT_URL and CHAT_TOKEN)")?;
    let token = args
        .next()
        .or_else(|| std::env::var("CHAT_TOKEN").ok())
        .ok_or("no token: give it after the URL or in CHAT_TOKEN")?;
    hello(&url, token).await?;
    Ok(())
}

// README: begin (chat-client/tests/readme.rs checks that README.md shows this as it is)
/// Joins (or creates) the room `lobby`, says hello, and prints the room's messages until
/// its own comes back, which it returns.
pub async fn hello(url: &str, token: String) -> Result<Message, Box<dyn std::error::Error>> {
    let (client, mut events) = Client::connect(url, token).await?;
    let room = client.join_or_create("lobby").await?;
    let sent = client.send(room.id, "hello").await?;
    while let Some(event) = events.next().await {
        if let ClientEvent::Event(Event::Message { message }) = event {
            println!("{}: {}", message.sender, message.body);
            if message.id == sent.message.id {
                client.close();
                return Ok(message);
            }
        }
    }
    Err("the client closed".into())
}
// README: end
