//! Run: `cargo run -p example-friends-dm`
//!
//! Direct messages between friends only, with message status and unread counts. It starts
//! a server on a free port, then plays alice and bob over real WebSockets and prints what
//! each sees: a message refused before they are friends, the request and its acceptance,
//! a message going sent → delivered → read, a delete only the sender may make, unread
//! counts and online friends. It exits with an error if anything is not as expected.

use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TokenSigner};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One user's connection, speaking protocol v1 (docs/protocol.md).
struct Client {
    name: &'static str,
    ws: Socket,
    next: u64,
    events: Vec<Value>,
}

impl Client {
    async fn connect(addr: &str, signer: &TokenSigner, name: &'static str) -> Fallible<Client> {
        let token = signer.mint(name, None, Duration::from_secs(600))?;
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}")).await?;
        let mut c = Client {
            name,
            ws,
            next: 0,
            events: Vec::new(),
        };
        let hello = c.frame().await?;
        expect(hello["type"] == "hello", "the first frame is hello")?;
        Ok(c)
    }

    async fn frame(&mut self) -> Fallible<Value> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await?
                .ok_or("closed")??;
            if let Message::Text(t) = msg {
                return Ok(serde_json::from_str(&t)?);
            }
        }
    }

    /// Sends a command; returns the reply, or the error frame as `Err(code)`.
    async fn call(&mut self, mut cmd: Value) -> Fallible<Result<Value, String>> {
        self.next += 1;
        let id = format!("{}-{}", self.name, self.next);
        cmd["id"] = json!(id);
        self.ws.send(Message::text(cmd.to_string())).await?;
        loop {
            let f = self.frame().await?;
            match f["type"].as_str() {
                Some("reply") if f["id"] == id => return Ok(Ok(f["reply"].clone())),
                Some("error") if f["id"] == id => {
                    return Ok(Err(f["code"].as_str().unwrap_or("?").to_owned()))
                }
                _ => self.events.push(f),
            }
        }
    }

    async fn ok(&mut self, cmd: Value) -> Fallible<Value> {
        self.call(cmd.clone())
            .await?
            .map_err(|code| format!("{} {cmd}: {code}", self.name).into())
    }

    /// Waits for the next pushed event of a type.
    async fn event(&mut self, kind: &str) -> Fallible<Value> {
        if let Some(i) = self.events.iter().position(|e| e["type"] == kind) {
            return Ok(self.events.remove(i));
        }
        loop {
            let f = self.frame().await?;
            if f["type"] == kind {
                return Ok(f);
            }
            self.events.push(f);
        }
    }
}

fn expect(ok: bool, what: &str) -> Fallible<()> {
    if ok {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(format!("not as expected: {what}").into())
    }
}

#[tokio::main]
async fn main() -> Fallible<()> {
    let secret = b"example-only-secret-change-me-0123456789";
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    let state = ChatState::new(
        engine,
        Arc::new(JwtAuthenticator::hs256(secret)),
        Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chat_transport_ws::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let signer = TokenSigner::hs256(secret);
    let mut alice = Client::connect(&addr, &signer, "alice").await?;
    let mut bob = Client::connect(&addr, &signer, "bob").await?;

    println!("Before they are friends:");
    let refused = alice
        .call(json!({"type": "open_direct", "user": "bob"}))
        .await?;
    expect(
        refused == Err("not_friends".into()),
        "alice cannot message bob (not_friends)",
    )?;

    println!("Friendship:");
    alice
        .ok(json!({"type": "friend_request", "user": "bob"}))
        .await?;
    let request = bob.event("friend").await?;
    expect(
        request["friend"]["status"] == "request_received",
        "bob sees alice's request",
    )?;
    bob.ok(json!({"type": "friend_accept", "user": "alice"}))
        .await?;
    expect(
        alice.event("friend").await?["friend"]["status"] == "friends",
        "alice sees the acceptance",
    )?;
    let online = alice.ok(json!({"type": "online_friends"})).await?;
    expect(
        online["users"] == json!(["bob"]),
        "alice sees bob among her online friends",
    )?;

    println!("A direct message, sent → delivered → read:");
    let direct = alice
        .ok(json!({"type": "open_direct", "user": "bob"}))
        .await?;
    let conv = direct["conversation"]["id"].clone();
    let sent = alice
        .ok(json!({"type": "send", "conversation": conv, "body": "hi bob", "client_id": "m1"}))
        .await?;
    let seq = sent["message"]["seq"].clone();
    let status = |h: &Value| h["messages"][0]["status"].clone();
    let history = json!({"type": "history", "conversation": conv});
    expect(
        status(&alice.ok(history.clone()).await?) == "sent",
        "status: sent",
    )?;
    let got = bob.event("message").await?;
    expect(got["message"]["body"] == "hi bob", "bob receives it")?;
    expect(
        bob.ok(json!({"type": "unread_total"})).await?["unread"] == 1,
        "bob has 1 unread",
    )?;
    bob.ok(json!({"type": "mark_delivered", "conversation": conv, "seq": seq}))
        .await?;
    alice.event("receipt").await?;
    expect(
        status(&alice.ok(history.clone()).await?) == "delivered",
        "status: delivered",
    )?;
    bob.ok(json!({"type": "mark_read", "conversation": conv, "seq": seq}))
        .await?;
    alice.event("receipt").await?;
    expect(
        status(&alice.ok(history.clone()).await?) == "read",
        "status: read",
    )?;
    expect(
        bob.ok(json!({"type": "unread_total"})).await?["unread"] == 0,
        "bob has 0 unread",
    )?;

    println!("Soft delete, by the sender only:");
    let denied = bob
        .call(json!({"type": "delete", "conversation": conv, "seq": seq}))
        .await?;
    expect(
        denied == Err("forbidden".into()),
        "bob cannot delete alice's message",
    )?;
    let deleted = alice
        .ok(json!({"type": "delete", "conversation": conv, "seq": seq}))
        .await?;
    expect(
        deleted["message"]["deleted_at"].is_string() && deleted["message"]["body"] == "",
        "alice deletes it; a tombstone stays",
    )?;
    expect(
        bob.event("message_deleted").await?["message"]["seq"] == seq,
        "bob sees the deletion",
    )?;

    let _ = stop.send(());
    server.await??;
    println!("All as expected.");
    Ok(())
}
