//! What the tests share: a cluster on a private redis-server, a sink that records, and a
//! raw Redis client for looking behind the bus's back.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_bus_redis::testing::RedisServer;
use chat_bus_redis::{RedisBus, RedisBusConfig};
use chat_core::bus_conformance::BusCluster;
use chat_core::event::{Audience, Delivery, Event, Skip};
use chat_core::ports::{Bus, BusSink};
use chat_core::{ConversationId, NodeId, UserId};
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::config::Config;
use fred::types::{Builder, CustomCommand, Value};
use tokio::sync::mpsc;

/// Bounded waits in these tests.
pub(crate) const WITHIN: Duration = Duration::from_secs(10);

/// The bus settings of the tests: quick reconnection, so a restart test is short.
pub(crate) fn config() -> RedisBusConfig {
    RedisBusConfig::default()
        .reconnect_delays(Duration::from_millis(50), Duration::from_millis(500))
        .heartbeat(Duration::from_secs(2))
}

/// A private redis-server and the buses connected to it.
pub(crate) struct Cluster {
    pub(crate) server: RedisServer,
}

impl Cluster {
    pub(crate) async fn start() -> Arc<Cluster> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = RedisServer::start()
            .await
            .unwrap_or_else(|e| panic!("starting a private redis-server: {e}"));
        Arc::new(Cluster { server })
    }

    /// A new bus instance (one per node, as in production).
    pub(crate) async fn bus(&self) -> RedisBus {
        RedisBus::connect(&self.server.url(), config())
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.server.url()))
    }

    /// A plain client for raw commands.
    pub(crate) async fn raw(&self) -> Client {
        raw(&self.server.url()).await
    }
}

#[async_trait]
impl BusCluster for Cluster {
    async fn node(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus().await)
    }

    async fn restart(&self, down: Duration) -> bool {
        self.server
            .restart(down)
            .await
            .unwrap_or_else(|e| panic!("restarting redis-server: {e}"));
        true
    }
}

pub(crate) async fn raw(url: &str) -> Client {
    let config = Config::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let client = Builder::from_config(config)
        .build()
        .unwrap_or_else(|e| panic!("a raw client: {e}"));
    client
        .init()
        .await
        .unwrap_or_else(|e| panic!("a raw client connecting: {e}"));
    client
}

/// Runs a raw command.
pub(crate) async fn command(client: &Client, args: &[&str]) -> Value {
    let (name, rest) = args.split_first().expect("a command");
    let cmd = CustomCommand::new(name.to_string(), fred::types::ClusterHash::FirstKey, false);
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    client
        .custom(cmd, rest)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// How many times Redis ran `command` since the last `CONFIG RESETSTAT`.
pub(crate) async fn calls(client: &Client, command_name: &str) -> u64 {
    let info: String = command(client, &["INFO", "commandstats"])
        .await
        .convert()
        .expect("INFO is text");
    let prefix = format!("cmdstat_{command_name}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map(|n| n.parse().expect("a count"))
        .unwrap_or(0)
}

/// A sink that records what it gets.
pub(crate) struct Recorder {
    tx: mpsc::UnboundedSender<Arc<Delivery>>,
    pub(crate) resyncs: AtomicUsize,
}

impl BusSink for Recorder {
    fn deliver(&self, delivery: Arc<Delivery>) {
        let _ = self.tx.send(delivery);
    }
    fn resync(&self) {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
    }
}

/// One node attached to a bus.
pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) bus: Arc<RedisBus>,
    pub(crate) rx: mpsc::UnboundedReceiver<Arc<Delivery>>,
    pub(crate) sink: Arc<Recorder>,
}

impl Node {
    pub(crate) async fn attach(bus: Arc<RedisBus>) -> Node {
        let id = NodeId(uuid::Uuid::new_v4());
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Arc::new(Recorder {
            tx,
            resyncs: AtomicUsize::new(0),
        });
        bus.attach(id, sink.clone())
            .await
            .unwrap_or_else(|e| panic!("attach: {e}"));
        Node { id, bus, rx, sink }
    }

    pub(crate) fn resyncs(&self) -> usize {
        self.sink.resyncs.load(Ordering::SeqCst)
    }

    pub(crate) async fn next(&mut self, what: &str) -> Delivery {
        match tokio::time::timeout(WITHIN, self.rx.recv()).await {
            Ok(Some(d)) => (*d).clone(),
            Ok(None) => panic!("{what}: the sink was dropped"),
            Err(_) => panic!("{what}: nothing arrived within {WITHIN:?}"),
        }
    }

    pub(crate) fn nothing_yet(&mut self, what: &str) {
        if let Ok(d) = self.rx.try_recv() {
            panic!("{what}: got {d:?}");
        }
    }

    pub(crate) async fn publish(&self, d: &Delivery) {
        self.bus
            .publish(self.id, Arc::new(d.clone()))
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
    }
}

/// Waits until `check` holds, or panics naming `what`.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("user {name}: {e}"))
}

pub(crate) fn conversation() -> ConversationId {
    ConversationId(uuid::Uuid::new_v4())
}

/// A delivery to a conversation, told apart by `n`.
pub(crate) fn typing(conversation: ConversationId, n: u32) -> Delivery {
    Delivery {
        audience: Audience::Conversation { conversation },
        skip: Skip::Nobody,
        event: Event::Typing {
            conversation,
            user: user(&format!("u{n}")),
            typing: true,
        },
    }
}

/// The connections Redis has now: (id, flags), without the asking one.
pub(crate) async fn connections(client: &Client) -> Vec<(String, String)> {
    let list: String = command(client, &["CLIENT", "LIST"])
        .await
        .convert()
        .expect("CLIENT LIST is text");
    let me: String = command(client, &["CLIENT", "ID"])
        .await
        .convert()
        .expect("CLIENT ID");
    list.lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_owned)
            };
            Some((field("id=")?, field("flags=")?))
        })
        .filter(|(id, _)| *id != me)
        .collect()
}

/// How many subscribers `channel` has.
pub(crate) async fn subscribers(client: &Client, channel: &str) -> i64 {
    let reply: Vec<Value> = command(client, &["PUBSUB", "NUMSUB", channel])
        .await
        .convert()
        .expect("PUBSUB NUMSUB is a list");
    reply
        .get(1)
        .and_then(|v| v.as_i64())
        .expect("a subscriber count")
}

/// Waits until `channel` has `n` subscribers.
pub(crate) async fn until_subscribers(client: &Client, channel: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let now = subscribers(client, channel).await;
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel}: {now} subscribers, not {n}, after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn channel_of(conversation: ConversationId) -> String {
    format!("chat:c:{conversation}")
}
