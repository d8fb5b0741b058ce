//! When deliveries may have been lost, the nodes that may have missed them are told to
//! resync: after their own subscriber reconnects (once subscriptions are back), when
//! another node's publisher reconnects or failed to publish (the control message), and
//! when received messages overflow the buffer.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::event::Delivery;
use chat_core::ports::{Bus, BusSink, Topic};
use chat_core::ErrorCode;
use common::{command, connections, conversation, eventually, typing, Cluster, Node};

/// Kills the connection of `bus`'s node that is (`pubsub`) or is not subscribing, found
/// as the connections that appeared when it connected.
async fn kill_connection(raw: &fred::clients::Client, theirs: &[(String, String)], pubsub: bool) {
    let (id, _) = theirs
        .iter()
        .find(|(_, flags)| flags.contains('P') == pubsub)
        .unwrap_or_else(|| {
            panic!(
                "no {} connection in {theirs:?}",
                if pubsub { "subscribing" } else { "publishing" }
            )
        });
    command(raw, &["CLIENT", "KILL", "ID", id]).await;
}

/// Attaches a node on a bus of its own, and returns its Redis connections too.
async fn attach_tracked(
    cluster: &Cluster,
    raw: &fred::clients::Client,
) -> (Node, Vec<(String, String)>) {
    let before: HashSet<String> = connections(raw)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let node = Node::attach(Arc::new(cluster.bus().await)).await;
    let theirs = connections(raw)
        .await
        .into_iter()
        .filter(|(id, _)| !before.contains(id))
        .collect::<Vec<_>>();
    assert_eq!(theirs.len(), 2, "a bus has two connections: {theirs:?}");
    (node, theirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_reconnect_makes_the_other_nodes_resync() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let (mut b, _) = attach_tracked(&cluster, &raw).await;
    let (a, a_connections) = attach_tracked(&cluster, &raw).await;
    let topic = conversation();
    b.bus
        .subscribe(b.id, Topic::Conversation(topic))
        .await
        .expect("subscribe");

    kill_connection(&raw, &a_connections, false).await;
    eventually("b is told to resync by a's control message", || {
        b.resyncs() >= 1
    })
    .await;
    assert_eq!(
        a.resyncs(),
        0,
        "a's subscriber never dropped: a has nothing to re-read"
    );
    // a publishes again.
    a.publish(&typing(topic, 1)).await;
    assert_eq!(b.next("after a's reconnection").await, typing(topic, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_reconnect_restores_subscriptions_then_resyncs_its_nodes() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let (mut a, a_connections) = attach_tracked(&cluster, &raw).await;
    let (b, _) = attach_tracked(&cluster, &raw).await;
    let topic = conversation();
    a.bus
        .subscribe(a.id, Topic::Conversation(topic))
        .await
        .expect("subscribe");

    kill_connection(&raw, &a_connections, true).await;
    eventually("a resyncs after its subscriber came back", || {
        a.resyncs() >= 1
    })
    .await;
    // Told to resync only once the subscriptions were back: what is published now
    // arrives, with no waiting.
    b.publish(&typing(topic, 1)).await;
    assert_eq!(a.next("right after the resync").await, typing(topic, 1));
    assert_eq!(
        b.resyncs(),
        0,
        "nobody's publisher reconnected: b had nothing to re-read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_message_resyncs_every_node_of_a_bus_but_not_other_prefixes() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let bus = Arc::new(cluster.bus().await);
    let a = Node::attach(bus.clone()).await;
    let b = Node::attach(bus).await;
    let other = Node::attach(Arc::new(
        chat_bus_redis::RedisBus::connect(&cluster.server.url(), common::config().prefix("other"))
            .await
            .expect("connect"),
    ))
    .await;
    let control = format!(r#"{{"v":1,"resync":"{}"}}"#, uuid::Uuid::new_v4());
    command(&raw, &["PUBLISH", "chat:all", &control]).await;
    eventually("both nodes of the bus resync", || {
        a.resyncs() == 1 && b.resyncs() == 1
    })
    .await;
    assert_eq!(other.resyncs(), 0, "another prefix's node resynced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_is_bounded_and_followed_by_a_resync_message() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let a = Node::attach(Arc::new(cluster.bus().await)).await;
    let mut b = Node::attach(Arc::new(cluster.bus().await)).await;
    let topic = conversation();
    b.bus
        .subscribe(b.id, Topic::Conversation(topic))
        .await
        .expect("subscribe");

    // Redis holds writes (PUBLISH included) for a while, connections open.
    command(&raw, &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    let started = Instant::now();
    let e = a
        .bus
        .publish(a.id, Arc::new(typing(topic, 1)))
        .await
        .expect_err("a publish Redis does not answer in time fails");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the failed publish took {:?}",
        started.elapsed()
    );
    command(&raw, &["CLIENT", "UNPAUSE"]).await;

    // The next publish first tells the others to resync (the failed one may be lost).
    a.publish(&typing(topic, 2)).await;
    eventually("b resyncs", || b.resyncs() >= 1).await;
    loop {
        // The failed publish may still have gone through after the pause.
        if b.next("the next publish").await == typing(topic, 2) {
            break;
        }
    }
}

/// A sink that is slow until it is told to resync, holding up the bus's receiving task.
struct Slow {
    delivered: AtomicUsize,
    resyncs: AtomicUsize,
}

impl BusSink for Slow {
    fn deliver(&self, _: Arc<Delivery>) {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        if self.resyncs.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn resync(&self) {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_buffer_makes_the_nodes_resync() {
    let cluster = Cluster::start().await;
    let bus = chat_bus_redis::RedisBus::connect(&cluster.server.url(), common::config().buffer(8))
        .await
        .expect("connect");
    let slow = Arc::new(Slow {
        delivered: AtomicUsize::new(0),
        resyncs: AtomicUsize::new(0),
    });
    let node = chat_core::NodeId(uuid::Uuid::new_v4());
    bus.attach(node, slow.clone()).await.expect("attach");
    let topic = conversation();
    bus.subscribe(node, Topic::Conversation(topic))
        .await
        .expect("subscribe");
    let a = Node::attach(Arc::new(cluster.bus().await)).await;
    for n in 0..100 {
        a.publish(&typing(topic, n)).await;
    }
    eventually("the overflow is noticed", || {
        slow.resyncs.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(
        slow.delivered.load(Ordering::SeqCst) < 100,
        "nothing was lost, yet the node was told to resync"
    );
}
