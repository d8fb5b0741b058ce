//! Shared test setup: a server of the test's own, bus clients, nodes that record what
//! they receive, a raw NATS client, and a TCP proxy that can cut one client off.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_bus_nats::testing::NatsServer;
use chat_bus_nats::{NatsBus, NatsBusConfig};
use chat_core::event::{Audience, Delivery, Event, Skip};
use chat_core::ids::{ConversationId, NodeId, UserId};
use chat_core::ports::{Bus, BusSink, Topic};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long something that should happen may take.
pub(crate) const WITHIN: Duration = Duration::from_secs(10);

/// A fresh server. Fails the test when `nats-server` is missing: never skips.
pub(crate) async fn server() -> NatsServer {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    NatsServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start nats-server for this test: {e}"))
}

/// The tests' config: quick reconnects.
pub(crate) fn config() -> NatsBusConfig {
    NatsBusConfig::default().max_reconnect_delay(Duration::from_millis(250))
}

pub(crate) async fn bus(url: &str, config: NatsBusConfig) -> Arc<NatsBus> {
    Arc::new(
        NatsBus::connect(url, config)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {}", chain(&e))),
    )
}

/// An error and its causes, one per line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!("\n  caused by: {c}"));
        cause = c.source();
    }
    out
}

/// A raw client, to watch subjects behind the bus's back.
pub(crate) async fn raw(url: &str) -> async_nats::Client {
    async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("raw client to {url}: {e}"))
}

pub(crate) fn user(name: &str) -> UserId {
    UserId::new(name).expect("a valid user id")
}

pub(crate) fn conversation() -> ConversationId {
    ConversationId(uuid::Uuid::new_v4())
}

pub(crate) fn to_conversation(conversation: ConversationId, n: u32) -> Delivery {
    Delivery {
        audience: Audience::Conversation { conversation },
        skip: Skip::Nobody,
        event: Event::Typing {
            conversation,
            user: user(&format!("u{n}")),
            typing: n.is_multiple_of(2),
        },
    }
}

/// A sink that records deliveries and counts resyncs; `stall` makes each delivery
/// block its caller for that long (a slow node).
pub(crate) struct Collector {
    tx: mpsc::UnboundedSender<Arc<Delivery>>,
    pub(crate) resyncs: AtomicUsize,
    stall: Mutex<Option<Duration>>,
}

impl BusSink for Collector {
    fn deliver(&self, delivery: Arc<Delivery>) {
        if let Some(d) = *self.stall.lock() {
            std::thread::sleep(d);
        }
        let _ = self.tx.send(delivery);
    }
    fn resync(&self) {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
    }
}

/// One attached node.
pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) bus: Arc<NatsBus>,
    pub(crate) rx: mpsc::UnboundedReceiver<Arc<Delivery>>,
    pub(crate) sink: Arc<Collector>,
}

impl Node {
    pub(crate) async fn attach(bus: &Arc<NatsBus>) -> Node {
        let id = NodeId(uuid::Uuid::new_v4());
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Arc::new(Collector {
            tx,
            resyncs: AtomicUsize::new(0),
            stall: Mutex::new(None),
        });
        bus.attach(id, sink.clone()).await.expect("attach");
        Node {
            id,
            bus: bus.clone(),
            rx,
            sink,
        }
    }

    pub(crate) fn stall(&self, each: Option<Duration>) {
        *self.sink.stall.lock() = each;
    }

    pub(crate) fn resyncs(&self) -> usize {
        self.sink.resyncs.load(Ordering::SeqCst)
    }

    pub(crate) async fn subscribe(&self, topic: Topic) {
        self.bus.subscribe(self.id, topic).await.expect("subscribe");
    }

    pub(crate) async fn publish(&self, delivery: &Delivery) {
        self.bus
            .publish(self.id, Arc::new(delivery.clone()))
            .await
            .expect("publish");
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
}

/// Polls `cond` every 20 ms until it holds, or panics after [`WITHIN`].
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `bus` reports the server gone (its `ready` fails).
pub(crate) async fn until_disconnected(bus: &NatsBus) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while bus.ready().await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bus never saw the server go"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `bus` answers again.
pub(crate) async fn until_ready(bus: &NatsBus) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while bus.ready().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bus did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy on 127.0.0.1 in front of a server, so one client can lose its
/// connection while the others keep theirs.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let port = listener.local_addr().expect("proxy port").port();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (open, links) = (open.clone(), links.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue; // dropped: refused
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().push(link);
                }
            }
        });
        Proxy {
            port,
            open,
            links,
            accept,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy; new ones are refused while `refuse`.
    pub(crate) fn cut(&self, refuse: bool) {
        self.open.store(!refuse, Ordering::SeqCst);
        for link in self.links.lock().drain(..) {
            link.abort();
        }
    }

    /// Accepts connections again.
    pub(crate) fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut(true);
    }
}
