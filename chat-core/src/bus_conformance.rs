//! The bus conformance suite: one `pub async fn` per bus behaviour, next to the store's.
//!
//! Every bus crate runs all of them with one line:
//!
//! ```text
//! chat_core::bus_conformance_tests!(|| async { MyCluster::start().await });
//! ```
//!
//! where the factory returns an `Arc<dyn BusCluster>`: a fresh bus server (or a fresh
//! in-process bus) that hands out one [`Bus`] client per node. Each behaviour panics on
//! the first broken expectation, naming it. Waits are bounded: a delivery that should
//! come has [`ARRIVES_WITHIN`]; one that should not is checked with a marker published
//! after it on a topic the node does hear (a bus that orders each topic on its own makes
//! that check weaker, never flaky). Only `detach_stops_delivery` sleeps to prove an
//! absence: a detached node has no topic left to carry a marker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::event::{Audience, Delivery, Event, Skip};
use crate::ids::{ConversationId, NodeId, UserId};
use crate::model::Presence;
use crate::ports::{Bus, BusSink, Topic};

/// How long a delivery that should arrive may take.
pub const ARRIVES_WITHIN: Duration = Duration::from_secs(10);

/// A bus under test: one server (or one in-process bus) and its clients.
#[async_trait]
pub trait BusCluster: Send + Sync + 'static {
    /// A bus client for one more node of this cluster (an in-process bus may hand out
    /// the same instance every time).
    async fn node(&self) -> Arc<dyn Bus>;

    /// Stops the bus server, keeps it down for `down`, and starts it again on the same
    /// address. Returns false when this bus has no server (an in-process bus), in which
    /// case nothing happened.
    async fn restart(&self, down: Duration) -> bool;
}

/// Runs every behaviour as its own `#[tokio::test]`, each with a fresh cluster from
/// `$factory`, an expression callable as `$factory().await -> Arc<dyn BusCluster>`.
#[macro_export]
macro_rules! bus_conformance_tests {
    ($factory:expr) => {
        $crate::bus_conformance_tests!(@each $factory;
            publish_reaches_subscribed_nodes_only,
            publish_never_returns_to_its_origin,
            user_topics_are_separate,
            unsubscribe_stops_delivery,
            detach_stops_delivery,
            broadcast_reaches_every_node,
            one_publisher_arrives_in_order,
            presence_is_seen_from_every_node,
            presence_leases_renew_and_expire,
            presence_drop_is_per_node,
            delivery_resumes_after_the_server_restarts
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let cluster: ::std::sync::Arc<dyn $crate::bus_conformance::BusCluster> =
                    ($factory)().await;
                $crate::bus_conformance::$name(cluster).await;
            }
        )*
    };
}

/// A node's sink in the tests: what arrived, in order, and how often it was resynced.
struct Collector {
    tx: mpsc::UnboundedSender<Arc<Delivery>>,
    resyncs: AtomicUsize,
}

impl BusSink for Collector {
    fn deliver(&self, delivery: Arc<Delivery>) {
        let _ = self.tx.send(delivery);
    }
    fn resync(&self) {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
    }
}

/// One attached node.
struct Node {
    id: NodeId,
    bus: Arc<dyn Bus>,
    rx: mpsc::UnboundedReceiver<Arc<Delivery>>,
    sink: Arc<Collector>,
}

impl Node {
    async fn attach(cluster: &dyn BusCluster) -> Node {
        let bus = cluster.node().await;
        let id = NodeId(uuid::Uuid::new_v4());
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Arc::new(Collector {
            tx,
            resyncs: AtomicUsize::new(0),
        });
        bus.attach(id, sink.clone())
            .await
            .unwrap_or_else(|e| panic!("attach: {e}"));
        Node { id, bus, rx, sink }
    }

    async fn subscribe(&self, topic: Topic) {
        self.bus
            .subscribe(self.id, topic.clone())
            .await
            .unwrap_or_else(|e| panic!("subscribe to {topic:?}: {e}"));
    }

    async fn unsubscribe(&self, topic: Topic) {
        self.bus
            .unsubscribe(self.id, topic.clone())
            .await
            .unwrap_or_else(|e| panic!("unsubscribe from {topic:?}: {e}"));
    }

    async fn publish(&self, delivery: &Delivery) {
        self.bus
            .publish(self.id, Arc::new(delivery.clone()))
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
    }

    /// The next delivery, which must come within [`ARRIVES_WITHIN`].
    async fn next(&mut self, what: &str) -> Delivery {
        match tokio::time::timeout(ARRIVES_WITHIN, self.rx.recv()).await {
            Ok(Some(d)) => (*d).clone(),
            Ok(None) => panic!("{what}: the sink was dropped"),
            Err(_) => panic!("{what}: nothing arrived within {ARRIVES_WITHIN:?}"),
        }
    }

    /// Nothing has arrived (checked after a later marker arrived, or at the end).
    fn nothing_yet(&mut self, what: &str) {
        if let Ok(d) = self.rx.try_recv() {
            panic!("{what}: got {d:?}");
        }
    }
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("test user id {name:?}: {e}"))
}

fn conversation() -> ConversationId {
    ConversationId(uuid::Uuid::new_v4())
}

/// A delivery to a conversation, told apart by `n`.
fn to_conversation(conversation: ConversationId, n: u32) -> Delivery {
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

fn to_user(who: &UserId, n: u32) -> Delivery {
    Delivery {
        audience: Audience::User { user: who.clone() },
        skip: Skip::Nobody,
        event: Event::ConversationRemoved {
            conversation: ConversationId(uuid::Uuid::from_u128(u128::from(n))),
        },
    }
}

fn presence_of(who: &UserId) -> Delivery {
    Delivery {
        audience: Audience::Presence {
            subject: who.clone(),
            conversations: vec![conversation()],
            users: vec![user("friend")],
        },
        skip: Skip::Nobody,
        event: Event::Presence {
            presence: Presence {
                user: who.clone(),
                online: true,
                last_seen: None,
            },
        },
    }
}

/// A publish reaches the nodes subscribed to its topic, each once, and no other node.
pub async fn publish_reaches_subscribed_nodes_only(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let mut c = Node::attach(&*cluster).await;
    let mut d = Node::attach(&*cluster).await;
    let (here, elsewhere) = (conversation(), conversation());
    b.subscribe(Topic::Conversation(here)).await;
    c.subscribe(Topic::Conversation(here)).await;
    d.subscribe(Topic::Conversation(elsewhere)).await;

    let sent = to_conversation(here, 1);
    a.publish(&sent).await;
    let marker = to_conversation(elsewhere, 2);
    a.publish(&marker).await;
    assert_eq!(b.next("b hears its topic").await, sent);
    assert_eq!(c.next("c hears its topic").await, sent);
    assert_eq!(d.next("d hears the marker").await, marker);
    d.nothing_yet("d is not subscribed to the first topic");
    // Each once: a second publish is the very next thing b and c get.
    let again = to_conversation(here, 3);
    a.publish(&again).await;
    assert_eq!(b.next("b, once each").await, again);
    assert_eq!(c.next("c, once each").await, again);
}

/// A node never gets its own publications back, even on a topic it subscribed to.
pub async fn publish_never_returns_to_its_origin(cluster: Arc<dyn BusCluster>) {
    let mut a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let topic = conversation();
    a.subscribe(Topic::Conversation(topic)).await;
    b.subscribe(Topic::Conversation(topic)).await;
    let own = to_conversation(topic, 1);
    a.publish(&own).await;
    assert_eq!(b.next("b hears a").await, own);
    let reply = to_conversation(topic, 2);
    b.publish(&reply).await;
    assert_eq!(
        a.next("a hears b, and not itself first").await,
        reply,
        "a node got its own publication back"
    );
    b.nothing_yet("b got its own publication back");
}

/// User topics are per user.
pub async fn user_topics_are_separate(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let mut c = Node::attach(&*cluster).await;
    let (alice, bob) = (user("alice"), user("bob"));
    b.subscribe(Topic::User(alice.clone())).await;
    c.subscribe(Topic::User(bob.clone())).await;
    let for_alice = to_user(&alice, 1);
    let for_bob = to_user(&bob, 2);
    a.publish(&for_alice).await;
    a.publish(&for_bob).await;
    assert_eq!(b.next("b hears alice's topic").await, for_alice);
    assert_eq!(c.next("c hears bob's topic").await, for_bob);
    b.nothing_yet("b heard bob's topic");
    c.nothing_yet("c heard alice's topic");
}

/// After unsubscribe, a topic's publications stop reaching the node.
pub async fn unsubscribe_stops_delivery(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let (dropped, kept) = (conversation(), conversation());
    b.subscribe(Topic::Conversation(dropped)).await;
    b.subscribe(Topic::Conversation(kept)).await;
    let first = to_conversation(dropped, 1);
    a.publish(&first).await;
    assert_eq!(b.next("subscribed").await, first);

    b.unsubscribe(Topic::Conversation(dropped)).await;
    a.publish(&to_conversation(dropped, 2)).await;
    let marker = to_conversation(kept, 3);
    a.publish(&marker).await;
    assert_eq!(
        b.next("the marker, and not the unsubscribed topic").await,
        marker,
        "a publication reached a node after it unsubscribed"
    );
    // Subscribing again works.
    b.subscribe(Topic::Conversation(dropped)).await;
    let back = to_conversation(dropped, 4);
    a.publish(&back).await;
    assert_eq!(b.next("subscribed again").await, back);
}

/// A detached node hears nothing more, and the others are unaffected.
pub async fn detach_stops_delivery(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let mut c = Node::attach(&*cluster).await;
    let topic = conversation();
    b.subscribe(Topic::Conversation(topic)).await;
    c.subscribe(Topic::Conversation(topic)).await;
    b.bus
        .detach(b.id)
        .await
        .unwrap_or_else(|e| panic!("detach: {e}"));
    let after = to_conversation(topic, 1);
    a.publish(&after).await;
    assert_eq!(c.next("c still hears").await, after);
    // b's publications from before detaching would have arrived by now; give a
    // delivery in flight the same time c took, then check.
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.nothing_yet("a detached node still hears its topic");
}

/// Broadcast (presence) reaches every attached node but its origin, with no subscribe.
pub async fn broadcast_reaches_every_node(cluster: Arc<dyn BusCluster>) {
    let mut a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let mut c = Node::attach(&*cluster).await;
    let sent = presence_of(&user("carol"));
    a.publish(&sent).await;
    assert_eq!(b.next("b hears broadcast").await, sent);
    assert_eq!(c.next("c hears broadcast").await, sent);
    let marker = presence_of(&user("dave"));
    b.publish(&marker).await;
    assert_eq!(a.next("a hears b's broadcast, not its own").await, marker);
}

/// One node's publications on one topic arrive in the order published (the engine's
/// gap detection relies on it).
pub async fn one_publisher_arrives_in_order(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let topic = conversation();
    b.subscribe(Topic::Conversation(topic)).await;
    for n in 0..200 {
        a.publish(&to_conversation(topic, n)).await;
    }
    for n in 0..200 {
        assert_eq!(
            b.next("in order").await,
            to_conversation(topic, n),
            "publication {n} out of order"
        );
    }
}

fn sorted(mut users: Vec<UserId>) -> Vec<UserId> {
    users.sort();
    users
}

/// Leases set on one node are seen from every node, in one call for many users.
pub async fn presence_is_seen_from_every_node(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let b = Node::attach(&*cluster).await;
    let c = Node::attach(&*cluster).await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let ttl = Duration::from_secs(30);
    a.bus
        .renew_presence(a.id, &[alice.clone(), bob.clone()], ttl)
        .await
        .unwrap_or_else(|e| panic!("renew on a: {e}"));
    b.bus
        .renew_presence(b.id, std::slice::from_ref(&bob), ttl)
        .await
        .unwrap_or_else(|e| panic!("renew on b: {e}"));
    let everyone = [alice.clone(), bob.clone(), carol.clone()];
    for (name, node) in [("a", &a), ("b", &b), ("c", &c)] {
        let online = node
            .bus
            .online(&everyone)
            .await
            .unwrap_or_else(|e| panic!("online from {name}: {e}"));
        assert_eq!(
            sorted(online),
            vec![alice.clone(), bob.clone()],
            "online as seen from {name}"
        );
    }
    let none = c
        .bus
        .online(&[])
        .await
        .unwrap_or_else(|e| panic!("online of nobody: {e}"));
    assert!(none.is_empty(), "online of nobody: {none:?}");
}

/// A lease lives while renewed and ends by itself when its node stops renewing.
pub async fn presence_leases_renew_and_expire(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let b = Node::attach(&*cluster).await;
    let alice = user("alice");
    let ttl = Duration::from_millis(1500);
    let renew = || async {
        a.bus
            .renew_presence(a.id, std::slice::from_ref(&alice), ttl)
            .await
            .unwrap_or_else(|e| panic!("renew: {e}"));
    };
    let online = || async {
        b.bus
            .online(std::slice::from_ref(&alice))
            .await
            .unwrap_or_else(|e| panic!("online: {e}"))
    };
    renew().await;
    // Renewed every half lease for two leases: online throughout.
    for step in 0..4 {
        tokio::time::sleep(ttl / 2).await;
        assert_eq!(
            online().await,
            vec![alice.clone()],
            "renewed lease lost at step {step}"
        );
        renew().await;
    }
    // No more renewals: gone within the lease (plus slack for the server's expiry).
    let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(5);
    loop {
        if online().await.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a lease that was not renewed did not expire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Dropping a user's lease on one node leaves their lease on another.
pub async fn presence_drop_is_per_node(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let b = Node::attach(&*cluster).await;
    let alice = user("alice");
    let ttl = Duration::from_secs(30);
    for node in [&a, &b] {
        node.bus
            .renew_presence(node.id, std::slice::from_ref(&alice), ttl)
            .await
            .unwrap_or_else(|e| panic!("renew: {e}"));
    }
    a.bus
        .drop_presence(a.id, &alice)
        .await
        .unwrap_or_else(|e| panic!("drop on a: {e}"));
    let online = a
        .bus
        .online(std::slice::from_ref(&alice))
        .await
        .unwrap_or_else(|e| panic!("online: {e}"));
    assert_eq!(online, vec![alice.clone()], "b's lease went with a's");
    b.bus
        .drop_presence(b.id, &alice)
        .await
        .unwrap_or_else(|e| panic!("drop on b: {e}"));
    let online = a
        .bus
        .online(std::slice::from_ref(&alice))
        .await
        .unwrap_or_else(|e| panic!("online: {e}"));
    assert!(
        online.is_empty(),
        "dropped everywhere yet online: {online:?}"
    );
}

/// After the bus server restarts, subscriptions are restored with no new `attach` or
/// `subscribe`, the node is told to resync (it may have missed deliveries), and
/// publishing works again.
pub async fn delivery_resumes_after_the_server_restarts(cluster: Arc<dyn BusCluster>) {
    let a = Node::attach(&*cluster).await;
    let mut b = Node::attach(&*cluster).await;
    let topic = conversation();
    b.subscribe(Topic::Conversation(topic)).await;
    let before = to_conversation(topic, 0);
    a.publish(&before).await;
    assert_eq!(b.next("before the restart").await, before);

    let restarted = cluster.restart(Duration::from_secs(2)).await;
    // Publish until one gets through: the publisher may still be reconnecting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut n = 1;
    let got = loop {
        let d = to_conversation(topic, n);
        let _ = a.bus.publish(a.id, Arc::new(d)).await;
        if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(500), b.rx.recv()).await {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery within 30 s of the bus server's restart"
        );
        n += 1;
    };
    assert!(
        matches!(&got.audience, Audience::Conversation { conversation } if *conversation == topic),
        "after the restart: {got:?}"
    );
    if restarted {
        assert!(
            b.sink.resyncs.load(Ordering::SeqCst) >= 1,
            "the subscriber was not told to resync after the server restarted"
        );
    }
    // Broadcast is restored too.
    let marker = presence_of(&user("erin"));
    a.publish(&marker).await;
    loop {
        let d = b.next("broadcast after the restart").await;
        if d == marker {
            break;
        }
    }
}
