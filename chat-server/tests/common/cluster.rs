//! A cluster as the tests run it: its own `redis-server` or `nats-server` on a free port
//! (stopped and started at will), a PostgreSQL schema of its own, three real
//! `chat-server` processes, and clients that keep every frame they get.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{Server, Ws};

/// Which bus server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Redis,
    Nats,
}

/// A bus server of this test's own, on a free loopback port (the bus crates' test
/// servers: they find the binary and fail, never skip, when it is missing).
pub(crate) enum BusServer {
    Redis(chat_bus_redis::testing::RedisServer),
    Nats(chat_bus_nats::testing::NatsServer),
}

impl BusServer {
    pub(crate) async fn start(kind: Kind) -> BusServer {
        match kind {
            Kind::Redis => BusServer::Redis(
                chat_bus_redis::testing::RedisServer::start()
                    .await
                    .expect("a redis-server of the test's own"),
            ),
            Kind::Nats => BusServer::Nats(
                chat_bus_nats::testing::NatsServer::start()
                    .await
                    .expect("a nats-server of the test's own"),
            ),
        }
    }

    pub(crate) fn url(&self) -> String {
        match self {
            BusServer::Redis(s) => s.url(),
            BusServer::Nats(s) => s.url(),
        }
    }

    /// Kills the server (like a crash).
    pub(crate) async fn down(&self) {
        match self {
            BusServer::Redis(s) => s.kill(),
            BusServer::Nats(s) => s.stop().await,
        }
    }

    /// Starts it again on the same port.
    pub(crate) async fn up(&self) {
        match self {
            BusServer::Redis(s) => s.start_again().await.expect("redis-server again"),
            BusServer::Nats(s) => s.resume().await.expect("nats-server again"),
        }
    }
}

/// A PostgreSQL schema of this test's own, dropped at the end.
pub(crate) struct Schema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Schema {
    pub(crate) fn new(tag: &str, url: &str) -> Schema {
        let url = url.to_owned();
        let name = format!(
            "cluster_{tag}_{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        Schema { url, name }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.url,
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Presence lease of the test clusters: short, so a dead node's users go offline soon.
pub(crate) const PRESENCE_TTL: &str = "2s";

/// Three nodes on one schema and one bus.
pub(crate) struct Cluster {
    pub(crate) bus: BusServer,
    pub(crate) schema: Schema,
    pub(crate) nodes: Vec<Option<Server>>,
}

impl Cluster {
    /// On the PostgreSQL of `CHAT_TEST_PG_URL` (or the local default).
    pub(crate) async fn start(kind: Kind, tag: &str) -> Cluster {
        let url = std::env::var("CHAT_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        Cluster::start_on(kind, tag, &url).await
    }

    /// On the PostgreSQL at `url`.
    pub(crate) async fn start_on(kind: Kind, tag: &str, url: &str) -> Cluster {
        let bus = BusServer::start(kind).await;
        let schema = Schema::new(tag, url);
        let mut c = Cluster {
            bus,
            schema,
            nodes: Vec::new(),
        };
        // The first node migrates the schema; the others start after it.
        for _ in 0..3 {
            let node = c.node();
            c.nodes.push(Some(node));
        }
        c
    }

    /// One more node on this cluster's store and bus.
    pub(crate) fn node(&self) -> Server {
        Server::spawn(
            &[
                "--store",
                &self.schema.url,
                "--pg-schema",
                &self.schema.name,
                "--bus",
                &self.bus.url(),
                "--presence-ttl",
                PRESENCE_TTL,
                "--commands-per-second",
                "10000",
                "--command-burst",
                "10000",
            ],
            &[],
        )
    }

    pub(crate) fn addr(&self, i: usize) -> String {
        self.nodes[i].as_ref().expect("a live node").addr.clone()
    }

    pub(crate) async fn connect(&self, i: usize, user: &str) -> Client {
        Client::connect(&self.addr(i), user).await
    }

    /// Sums a counter's value over the live nodes' `/metrics`.
    pub(crate) fn metric(&self, name: &str) -> u64 {
        self.nodes
            .iter()
            .flatten()
            .map(|n| metric(&n.get("/metrics"), name))
            .sum()
    }
}

/// One counter from a `/metrics` page.
pub(crate) fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

/// A WebSocket client that keeps every event it gets, and matches replies by id.
pub(crate) struct Client {
    pub(crate) user: String,
    sink: SplitSink<Ws, Message>,
    rx: mpsc::UnboundedReceiver<Frame>,
    /// Events (not replies) in arrival order.
    pub(crate) events: Vec<Value>,
    /// Replies and errors not yet claimed, by id.
    answers: HashMap<String, Value>,
    next: u64,
    /// The close code, once the server closed.
    pub(crate) closed: Option<u16>,
}

enum Frame {
    Json(Value),
    Closed(Option<u16>),
}

impl Client {
    pub(crate) async fn connect(addr: &str, user: &str) -> Client {
        let url = format!("ws://{addr}/ws?token={}", Server::token(user));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("{user} connects to {addr}: {e}"));
        let (sink, mut stream): (_, SplitStream<Ws>) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let v = serde_json::from_str(&t).expect("json from the server");
                        if tx.send(Frame::Json(v)).is_err() {
                            return;
                        }
                    }
                    Ok(Message::Close(f)) => {
                        let _ = tx.send(Frame::Closed(f.map(|f| u16::from(f.code))));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = tx.send(Frame::Closed(None));
                        return;
                    }
                }
            }
            let _ = tx.send(Frame::Closed(None));
        });
        let mut c = Client {
            user: user.to_owned(),
            sink,
            rx,
            events: Vec::new(),
            answers: HashMap::new(),
            next: 0,
            closed: None,
        };
        let hello = c.pump(Duration::from_secs(10)).await;
        assert!(hello, "{user}: no hello");
        assert_eq!(
            c.events.first().map(|e| e["type"].clone()),
            Some(json!("hello"))
        );
        c.events.clear();
        c
    }

    /// Takes one frame (waiting up to `wait`); false when none came or the socket closed.
    async fn pump(&mut self, wait: Duration) -> bool {
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(Frame::Json(v))) => {
                if matches!(v["type"].as_str(), Some("reply" | "error")) && v["id"].is_string() {
                    let id = v["id"].as_str().unwrap_or_default().to_owned();
                    self.answers.insert(id, v);
                } else {
                    self.events.push(v);
                }
                true
            }
            Ok(Some(Frame::Closed(code))) => {
                self.closed = Some(code.unwrap_or(1006));
                false
            }
            Ok(None) | Err(_) => false,
        }
    }

    /// Sends a command without waiting; returns its id.
    pub(crate) async fn send_cmd(&mut self, mut cmd: Value) -> String {
        self.next += 1;
        let id = format!("{}-{}", self.user, self.next);
        cmd["id"] = json!(id);
        self.sink
            .send(Message::text(cmd.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{}: send: {e}", self.user));
        id
    }

    /// The answer to `id` (a `reply` or an `error` frame), waiting up to 10 s.
    pub(crate) async fn answer(&mut self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = self.answers.remove(id) {
                return v;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero() && self.closed.is_none(),
                "{}: no answer to {id} (closed: {:?})",
                self.user,
                self.closed
            );
            self.pump(left).await;
        }
    }

    /// The answer to `id` if it has arrived (never waits).
    pub(crate) fn take_answer(&mut self, id: &str) -> Option<Value> {
        self.answers.remove(id)
    }

    /// Runs a command; panics on an error.
    pub(crate) async fn call(&mut self, cmd: Value) -> Value {
        let id = self.send_cmd(cmd.clone()).await;
        let v = self.answer(&id).await;
        assert_eq!(v["type"], "reply", "{}: {cmd} → {v}", self.user);
        v["reply"].clone()
    }

    /// Runs a command, returning the reply or the error frame.
    pub(crate) async fn try_call(&mut self, cmd: Value) -> Result<Value, Value> {
        let id = self.send_cmd(cmd).await;
        let v = self.answer(&id).await;
        if v["type"] == "reply" {
            Ok(v["reply"].clone())
        } else {
            Err(v)
        }
    }

    /// Reads frames until `done(events)` holds (bounded by `wait`); true when it did.
    pub(crate) async fn until(&mut self, wait: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if done(&self.events) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.closed.is_some() {
                return done(&self.events);
            }
            self.pump(left).await;
        }
    }

    /// Reads whatever arrives within `wait`.
    pub(crate) async fn settle(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.pump(left).await {
                return;
            }
        }
    }

    /// Seqs of `message` events of one conversation, in arrival order.
    pub(crate) fn message_seqs(&self, conversation: &str) -> Vec<u64> {
        self.events
            .iter()
            .filter(|e| e["type"] == "message" && e["message"]["conversation"] == conversation)
            .filter_map(|e| e["message"]["seq"].as_u64())
            .collect()
    }

    pub(crate) async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
        let _ = self.sink.close().await;
    }
}

/// The `message` of a `sent` reply.
pub(crate) fn sent_seq(reply: &Value) -> u64 {
    assert_eq!(reply["type"], "sent", "{reply}");
    reply["message"]["seq"].as_u64().expect("seq")
}
