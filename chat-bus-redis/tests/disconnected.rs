//! Redis down: connecting fails plainly, publishing and readiness fail fast, subscribing
//! is recorded and restored, and nothing shows a password.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_bus_redis::testing::RedisServer;
use chat_bus_redis::{RedisBus, RedisBusConfig};
use chat_core::ports::{Bus, Topic};
use chat_core::ErrorCode;
use common::{conversation, eventually, typing, Cluster, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_is_unavailable_and_bad_urls_are_invalid() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let started = Instant::now();
    let e = RedisBus::connect(&format!("redis://127.0.0.1:{port}"), common::config())
        .await
        .expect_err("nothing listens there");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));

    for (url, why) in [
        ("not a url", "malformed"),
        ("rediss://127.0.0.1:6379", "TLS is not supported"),
        (
            "redis-sentinel://127.0.0.1:26379?sentinelServiceName=x",
            "sentinel",
        ),
        ("redis-cluster://127.0.0.1:7000", "cluster"),
    ] {
        let e = RedisBus::connect(url, RedisBusConfig::default())
            .await
            .expect_err(why);
        assert_eq!(e.code(), ErrorCode::Invalid, "{url}: {e}");
    }
    let e = RedisBus::connect(
        &format!("redis://127.0.0.1:{port}"),
        RedisBusConfig::default().prefix("a:b"),
    )
    .await
    .expect_err("a bad prefix");
    assert_eq!(e.code(), ErrorCode::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_and_readiness_fail_fast_while_redis_is_down() {
    let cluster = Cluster::start().await;
    let a = Node::attach(Arc::new(cluster.bus().await)).await;
    a.bus.ready().await.expect("ready while up");
    cluster.server.kill();
    let topic = conversation();
    for n in 0..5 {
        let started = Instant::now();
        let e = a
            .bus
            .publish(a.id, Arc::new(typing(topic, n)))
            .await
            .expect_err("a publish while Redis is down");
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(
            started.elapsed() <= Duration::from_secs(1) + Duration::from_millis(200),
            "a publish while down took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let e = a.bus.ready().await.expect_err("not ready while down");
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(started.elapsed() <= Duration::from_secs(1) + Duration::from_millis(200));
    }
    cluster.server.start_again().await.expect("start again");
    let deadline = Instant::now() + common::WITHIN;
    while a.bus.ready().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "not ready again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_while_redis_is_down_is_recorded_and_restored() {
    let cluster = Cluster::start().await;
    let mut a = Node::attach(Arc::new(cluster.bus().await)).await;
    let b = Node::attach(Arc::new(cluster.bus().await)).await;
    let (kept, added, dropped) = (conversation(), conversation(), conversation());
    for t in [kept, dropped] {
        a.bus
            .subscribe(a.id, Topic::Conversation(t))
            .await
            .expect("subscribe");
    }
    cluster.server.kill();
    // Neither fails. Right after the loss, before the client has noticed, a call may
    // wait for the command time-out; once it has, a call does not wait at all.
    let started = Instant::now();
    a.bus
        .subscribe(a.id, Topic::Conversation(added))
        .await
        .expect("subscribe while down");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "subscribing while down took {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let started = Instant::now();
    a.bus
        .unsubscribe(a.id, Topic::Conversation(dropped))
        .await
        .expect("unsubscribe while down");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "unsubscribing while down took {:?}",
        started.elapsed()
    );
    cluster.server.start_again().await.expect("start again");

    eventually("a resyncs once its subscriptions are back", || {
        a.resyncs() >= 1
    })
    .await;
    // b's publisher may still be reconnecting: retry until a publish goes through.
    let deadline = Instant::now() + common::WITHIN;
    while b
        .bus
        .publish(b.id, Arc::new(typing(dropped, 0)))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "b cannot publish again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in [added, kept] {
        b.publish(&typing(t, 1)).await;
    }
    assert_eq!(
        a.next("the topic added while down").await,
        typing(added, 1),
        "a heard the topic it dropped while down, or missed the one it added"
    );
    assert_eq!(a.next("the kept topic").await, typing(kept, 1));
    let raw = cluster.raw().await;
    assert_eq!(
        common::subscribers(&raw, &common::channel_of(dropped)).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_shows_no_password() {
    let server = RedisServer::start_with(&["--requirepass", "hunter2"])
        .await
        .unwrap_or_else(|e| panic!("starting redis-server: {e}"));
    let url = format!("redis://:hunter2@127.0.0.1:{}", server.port());
    let bus = RedisBus::connect(&url, common::config())
        .await
        .expect("connect with the password");
    bus.ready().await.expect("authenticated");
    let shown = format!("{bus:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains(":***@127.0.0.1"), "{shown}");

    let e = RedisBus::connect(
        &format!("redis://:wrong@127.0.0.1:{}", server.port()),
        common::config(),
    )
    .await
    .expect_err("a wrong password");
    assert!(!e.to_string().contains("wrong@"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_bus_closes_its_connections() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let bus = cluster.bus().await;
    assert_eq!(
        common::connections(&raw).await.len(),
        2,
        "publishing and subscribing"
    );
    drop(bus);
    let deadline = Instant::now() + common::WITHIN;
    while !common::connections(&raw).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "a dropped bus left connections open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
