//! Losing the connection: one client cut off through a proxy while the others keep
//! theirs, or the whole server stopped.

mod common;

use std::time::{Duration, Instant};

use chat_core::ports::{Bus, Topic};
use chat_core::ErrorCode;
use common::{
    bus, config, conversation, eventually, raw, server, to_conversation, until_disconnected,
    until_ready, user, Node, Proxy,
};
use futures::StreamExt as _;

/// When one client's connection comes back, its own nodes resync, and it tells the
/// others (which never lost theirs) with `{"v":1,"resync":<id>}` on `chat.all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_makes_every_node_resync() {
    let server = server().await;
    let proxy = Proxy::start(server.port()).await;
    let watcher = raw(&server.url()).await;
    let mut all = watcher.subscribe("chat.all").await.expect("raw subscribe");
    watcher.flush().await.expect("flush");
    let a = Node::attach(&bus(&proxy.url(), config()).await).await;
    let b = Node::attach(&bus(&server.url(), config()).await).await;
    assert_eq!((a.resyncs(), b.resyncs()), (0, 0));

    proxy.cut(false);
    eventually("a resynced after its reconnect", || a.resyncs() == 1).await;
    eventually("b resynced on a's control message", || b.resyncs() == 1).await;
    let control = tokio::time::timeout(common::WITHIN, all.next())
        .await
        .expect("a control message on chat.all")
        .expect("raw subscription open");
    let body: serde_json::Value = serde_json::from_slice(&control.payload).expect("json");
    assert_eq!(body["v"], 1, "{body}");
    assert!(body["resync"].as_str().is_some(), "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    // Exactly once each.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((a.resyncs(), b.resyncs()), (1, 1));
}

/// While disconnected, `publish` fails fast with `unavailable` and sends nothing later;
/// the first publish that works again is preceded by no stale one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_while_disconnected_fails_fast_and_is_not_sent_later() {
    let server = server().await;
    let proxy = Proxy::start(server.port()).await;
    let a = Node::attach(&bus(&proxy.url(), config()).await).await;
    let mut b = Node::attach(&bus(&server.url(), config()).await).await;
    let topic = conversation();
    b.subscribe(Topic::Conversation(topic)).await;

    proxy.cut(true);
    until_disconnected(&a.bus).await;
    for n in 0..5 {
        let started = Instant::now();
        let e = a
            .bus
            .publish(a.id, std::sync::Arc::new(to_conversation(topic, n)))
            .await
            .expect_err("published while disconnected");
        assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let e = a
        .bus
        .renew_presence(a.id, &[user("alice")], Duration::from_secs(30))
        .await
        .expect_err("renewed while disconnected");
    assert_eq!(e.code(), ErrorCode::Unavailable);

    proxy.reopen();
    until_ready(&a.bus).await;
    let after = to_conversation(topic, 100);
    a.publish(&after).await;
    assert_eq!(
        b.next("the first publication after the reconnect").await,
        after,
        "a publication refused while disconnected was sent later"
    );
}

/// Subscribing and unsubscribing while disconnected succeed, and the server has the
/// result once the client is back, with no further call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_changed_while_disconnected_hold_after_the_reconnect() {
    let server = server().await;
    let proxy = Proxy::start(server.port()).await;
    let mut a = Node::attach(&bus(&proxy.url(), config()).await).await;
    let publisher = Node::attach(&bus(&server.url(), config()).await).await;
    let (kept, dropped, added) = (conversation(), conversation(), conversation());
    a.subscribe(Topic::Conversation(kept)).await;
    a.subscribe(Topic::Conversation(dropped)).await;

    proxy.cut(true);
    until_disconnected(&a.bus).await;
    let started = Instant::now();
    a.subscribe(Topic::Conversation(added)).await;
    a.bus
        .unsubscribe(a.id, Topic::Conversation(dropped))
        .await
        .expect("unsubscribe while disconnected");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    proxy.reopen();
    until_ready(&a.bus).await;
    publisher.publish(&to_conversation(dropped, 1)).await;
    let on_added = to_conversation(added, 2);
    publisher.publish(&on_added).await;
    assert_eq!(a.next("the topic subscribed while away").await, on_added);
    let on_kept = to_conversation(kept, 3);
    publisher.publish(&on_kept).await;
    assert_eq!(a.next("the topic subscribed before").await, on_kept);
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.nothing_yet("the topic unsubscribed while away");
}

/// `ready` fails fast while the server is down and succeeds once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_server() {
    let server = server().await;
    let bus = bus(&server.url(), config()).await;
    bus.ready().await.expect("ready");
    server.stop().await;
    until_disconnected(&bus).await;
    let started = Instant::now();
    let e = bus.ready().await.expect_err("ready with the server down");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(1));
    server.resume().await.expect("server back");
    until_ready(&bus).await;
}

/// The presence view is rebuilt after a reconnect: leases renewed and dropped by others
/// while this client was away are seen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presence_view_catches_up_after_a_reconnect() {
    let server = server().await;
    let proxy = Proxy::start(server.port()).await;
    let a = Node::attach(&bus(&proxy.url(), config()).await).await;
    let b = Node::attach(&bus(&server.url(), config()).await).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let ttl = Duration::from_secs(30);
    b.bus
        .renew_presence(b.id, std::slice::from_ref(&bob), ttl)
        .await
        .expect("renew bob");
    assert_eq!(
        a.bus
            .online(&[alice.clone(), bob.clone()])
            .await
            .expect("online"),
        vec![bob.clone()]
    );

    proxy.cut(true);
    until_disconnected(&a.bus).await;
    // Away, the view answers as it was, at once.
    let started = Instant::now();
    assert_eq!(
        a.bus
            .online(std::slice::from_ref(&bob))
            .await
            .expect("online while away"),
        vec![bob.clone()]
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    b.bus
        .renew_presence(b.id, std::slice::from_ref(&alice), ttl)
        .await
        .expect("renew alice");
    b.bus.drop_presence(b.id, &bob).await.expect("drop bob");

    proxy.reopen();
    until_ready(&a.bus).await;
    assert_eq!(
        a.bus
            .online(&[alice.clone(), bob.clone()])
            .await
            .expect("online"),
        vec![alice.clone()],
        "changes made while a was away"
    );
}

/// A node that cannot keep up overflows its subscription: the client drops messages and
/// the node is told to resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_is_resynced() {
    let server = server().await;
    let slow = Node::attach(&bus(&server.url(), config().subscription_capacity(4)).await).await;
    let publisher = Node::attach(&bus(&server.url(), config()).await).await;
    let topic = conversation();
    slow.subscribe(Topic::Conversation(topic)).await;
    slow.stall(Some(Duration::from_millis(20)));
    for n in 0..100 {
        publisher.publish(&to_conversation(topic, n)).await;
    }
    eventually("the slow node resynced", || slow.resyncs() >= 1).await;
    slow.stall(None);
}
