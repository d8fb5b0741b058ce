//! The store is the truth, the bus a fast path: a node fills the gaps a lossy bus leaves
//! from the store, drops what arrives twice, and tells its sessions to resume when the
//! store cannot be read.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::engine::{Event, Stats};
use chat_core::event::Delivery;
use chat_core::memory::{MemoryBus, MemoryTransport};
use chat_core::model::Limits;
use chat_core::ports::{Bus, BusSink, Clock, Identity, ManualClock, SequentialIds, Store, Topic};
use chat_core::{Engine, ErrorCode, NodeId, Result, UserId};
use common::faulty::FaultyStore;
use common::{uid, Client};
use parking_lot::Mutex;

/// What the bus does with the next `message` publications, in turn (then: pass).
#[derive(Debug, Clone, Copy)]
enum Fate {
    Drop,
    Twice,
    Hold,
}

/// The memory bus, losing, doubling or holding `message` publications on demand, and
/// able to tell every node to resync as a server bus does after a reconnect.
struct LossyBus {
    inner: MemoryBus,
    fates: Mutex<VecDeque<Fate>>,
    held: Mutex<Vec<(NodeId, Arc<Delivery>)>>,
    sinks: Mutex<HashMap<NodeId, Arc<dyn BusSink>>>,
}

impl LossyBus {
    fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(LossyBus {
            inner: MemoryBus::new(clock),
            fates: Mutex::new(VecDeque::new()),
            held: Mutex::new(Vec::new()),
            sinks: Mutex::new(HashMap::new()),
        })
    }

    fn next(&self, fates: &[Fate]) {
        self.fates.lock().extend(fates.iter().copied());
    }

    async fn release(&self) {
        let held = std::mem::take(&mut *self.held.lock());
        for (origin, d) in held {
            self.inner.publish(origin, d).await.expect("memory bus");
        }
    }

    fn resync_all(&self) {
        let sinks: Vec<_> = self.sinks.lock().values().cloned().collect();
        for s in sinks {
            s.resync();
        }
    }
}

#[async_trait]
impl Bus for LossyBus {
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()> {
        self.sinks.lock().insert(node, sink.clone());
        self.inner.attach(node, sink).await
    }
    async fn detach(&self, node: NodeId) -> Result<()> {
        self.sinks.lock().remove(&node);
        self.inner.detach(node).await
    }
    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        self.inner.subscribe(node, topic).await
    }
    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        self.inner.unsubscribe(node, topic).await
    }
    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()> {
        let fate = if matches!(delivery.event, Event::Message { .. }) {
            self.fates.lock().pop_front()
        } else {
            None
        };
        match fate {
            None => self.inner.publish(origin, delivery).await,
            Some(Fate::Drop) => Ok(()),
            Some(Fate::Twice) => {
                self.inner.publish(origin, delivery.clone()).await?;
                self.inner.publish(origin, delivery).await
            }
            Some(Fate::Hold) => {
                self.held.lock().push((origin, delivery));
                Ok(())
            }
        }
    }
    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        self.inner.renew_presence(node, users, ttl).await
    }
    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()> {
        self.inner.drop_presence(node, user).await
    }
    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        self.inner.online(users).await
    }
    // Not lossless: each node reads a newly followed conversation's newest seq.
}

struct Cluster {
    store: Arc<FaultyStore>,
    bus: Arc<LossyBus>,
    a: Engine,
    b: Engine,
}

impl Cluster {
    async fn new() -> Cluster {
        let clock = Arc::new(ManualClock::at_epoch());
        let store = FaultyStore::new();
        let bus = LossyBus::new(clock.clone());
        let node = || async {
            Engine::builder(store.clone() as Arc<dyn Store>)
                .bus(bus.clone() as Arc<dyn Bus>)
                .clock(clock.clone() as Arc<dyn Clock>)
                .ids(Arc::new(SequentialIds::default()))
                .limits(Limits::default())
                .maintenance(None)
                .build()
                .await
                .expect("engine")
        };
        let a = node().await;
        let b = node().await;
        Cluster { store, bus, a, b }
    }

    async fn connect(engine: &Engine, name: &str) -> Client {
        let (transport, conn) = MemoryTransport::new(1024);
        let session = engine
            .open_session(Identity::new(uid(name)), transport)
            .await
            .expect("open session");
        Client { session, conn }
    }
}

/// Collects `client`'s events until `n` arrived (bounded: 5 s).
async fn events(client: &mut Client, n: usize) -> Vec<Event> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        got.extend(client.events());
        if got.len() >= n {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} events, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .map(|e| match e {
            Event::Message { message } => message.seq,
            other => panic!("expected a message, got {other:?}"),
        })
        .collect()
}

/// Alice on node a, bob on node b, both in one room; bob's events drained.
async fn room_across_nodes(c: &Cluster) -> (Client, Client, chat_core::ConversationId) {
    let alice = Cluster::connect(&c.a, "alice").await;
    let mut bob = Cluster::connect(&c.b, "bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    // Let node b's mark start from the store (it reads the room's newest seq).
    tokio::time::sleep(Duration::from_millis(50)).await;
    bob.events();
    (alice, bob, room.id)
}

fn bus_stats(e: &Engine) -> chat_core::engine::BusStats {
    let s: Stats = e.stats();
    s.bus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_delivery_is_filled_from_the_store_when_the_next_arrives() {
    let c = Cluster::new().await;
    let (alice, mut bob, room) = room_across_nodes(&c).await;
    c.bus.next(&[Fate::Drop]);
    alice.send(room, "one").await;
    alice.send(room, "two").await;
    alice.send(room, "three").await;
    let got = events(&mut bob, 3).await;
    assert_eq!(seqs(&got), vec![1, 2, 3], "in order, none missing");
    tokio::time::sleep(Duration::from_millis(50)).await;
    bob.assert_quiet();
    let s = bus_stats(&c.b);
    assert_eq!((s.gap_fills, s.filled_messages), (1, 1), "{s:?}");
    assert_eq!(s.resume_required, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_with_nothing_after_it_is_filled_when_the_bus_resyncs() {
    let c = Cluster::new().await;
    let (alice, mut bob, room) = room_across_nodes(&c).await;
    c.bus.next(&[Fate::Drop, Fate::Drop]);
    alice.send(room, "one").await;
    alice.send(room, "two").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    bob.assert_quiet();
    c.bus.resync_all();
    let got = events(&mut bob, 2).await;
    assert_eq!(seqs(&got), vec![1, 2]);
    let s = bus_stats(&c.b);
    assert_eq!((s.resyncs, s.filled_messages), (1, 2), "{s:?}");
    // The sender's node had passed both on already: its resync reads nothing new.
    assert_eq!(bus_stats(&c.a).filled_messages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_before_the_first_live_message_is_seen_at_resync() {
    // Node b follows the room but has passed nothing on yet: its mark starts from the
    // store's newest seq, so a loss right away is still noticed.
    let c = Cluster::new().await;
    let (alice, mut bob, room) = room_across_nodes(&c).await;
    c.bus.next(&[Fate::Drop]);
    alice.send(room, "lost").await;
    c.bus.resync_all();
    let got = events(&mut bob, 1).await;
    assert_eq!(seqs(&got), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_arrives_twice_is_passed_on_once() {
    let c = Cluster::new().await;
    let (alice, mut bob, room) = room_across_nodes(&c).await;
    c.bus.next(&[Fate::Twice, Fate::Twice]);
    alice.send(room, "one").await;
    alice.send(room, "two").await;
    let got = events(&mut bob, 2).await;
    assert_eq!(seqs(&got), vec![1, 2]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    bob.assert_quiet();
    assert_eq!(bus_stats(&c.b).duplicates, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_deliveries_are_put_back_in_order() {
    // The first publication is held back and arrives after the second: bob still gets
    // them in seq order, and the late one is not passed on twice.
    let c = Cluster::new().await;
    let (alice, mut bob, room) = room_across_nodes(&c).await;
    c.bus.next(&[Fate::Hold]);
    alice.send(room, "one").await;
    alice.send(room, "two").await;
    c.bus.release().await;
    let got = events(&mut bob, 2).await;
    assert_eq!(seqs(&got), vec![1, 2]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    bob.assert_quiet();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_store_cannot_fill_a_gap_the_sessions_are_told_to_resume() {
    let c = Cluster::new().await;
    let (alice, mut bob, room) = room_across_nodes(&c).await;
    c.bus.next(&[Fate::Drop, Fate::Hold]);
    alice.send(room, "lost").await;
    alice.send(room, "late").await;
    c.store.fail(Some(ErrorCode::Unavailable));
    c.bus.release().await;
    let got = events(&mut bob, 2).await;
    assert_eq!(got[0], Event::ResumeRequired { conversation: room });
    assert_eq!(
        seqs(&got[1..]),
        vec![2],
        "live traffic flows on after the gap"
    );
    assert_eq!(bus_stats(&c.b).resume_required, 1);
    // The store back: the next message passes straight on.
    c.store.fail(None);
    alice.send(room, "after").await;
    let got = events(&mut bob, 1).await;
    assert_eq!(seqs(&got), vec![3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publish_per_event_whatever_the_recipients() {
    // Five members on node b: one bus publication per send, fanned out there.
    let c = Cluster::new().await;
    let alice = Cluster::connect(&c.a, "alice").await;
    let room = alice.create_room("many", false).await;
    let mut others = Vec::new();
    for i in 0..5 {
        let m = Cluster::connect(&c.b, &format!("m{i}")).await;
        m.join(room.id).await;
        others.push(m);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for m in &mut others {
        m.events();
    }
    let before = bus_stats(&c.a).published;
    let received = bus_stats(&c.b).received;
    alice.send(room.id, "hello").await;
    for m in &mut others {
        assert_eq!(seqs(&events(m, 1).await), vec![1]);
    }
    assert_eq!(bus_stats(&c.a).published - before, 1);
    assert_eq!(bus_stats(&c.b).received - received, 1);
}
