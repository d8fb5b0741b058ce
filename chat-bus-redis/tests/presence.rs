//! Presence leases: they end by themselves when a node dies, on Redis's clock, their
//! sets vanish, and batches cost one script per chunk of users.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chat_core::ports::Bus;
use chat_core::{NodeId, UserId};
use common::{calls, command, user, Cluster};

fn now_ms(time: Vec<String>) -> i64 {
    let secs: i64 = time[0].parse().expect("seconds");
    let micros: i64 = time[1].parse().expect("microseconds");
    secs * 1000 + micros / 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leases_of_a_node_that_dies_expire_within_the_ttl() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let observer = cluster.bus().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let ttl = Duration::from_millis(1500);
    let node = NodeId(uuid::Uuid::new_v4());
    {
        let dying = cluster.bus().await;
        dying
            .renew_presence(node, &[alice.clone(), bob.clone()], ttl)
            .await
            .expect("renew");
        // The lease is on Redis's clock: its score is Redis's now plus the ttl.
        let time: Vec<String> = command(&raw, &["TIME"]).await.convert().expect("TIME");
        let score: f64 = command(&raw, &["ZSCORE", "chat:p:alice", &node.to_string()])
            .await
            .convert()
            .expect("a score");
        let left = score as i64 - now_ms(time);
        assert!(
            (1000..=1500).contains(&left),
            "the lease ends {left} ms from Redis's now, not about 1500"
        );
        let pttl: i64 = command(&raw, &["PTTL", "chat:p:alice"])
            .await
            .convert()
            .expect("PTTL");
        assert!(
            (1..=1500).contains(&pttl),
            "the set expires with its last lease: PTTL {pttl}"
        );
        // Dies: dropped without drop_presence.
    }
    let everyone = [alice.clone(), bob.clone()];
    assert_eq!(
        observer.online(&everyone).await.expect("online"),
        everyone.to_vec(),
        "online right after renewing"
    );
    let started = tokio::time::Instant::now();
    loop {
        if observer.online(&everyone).await.expect("online").is_empty() {
            break;
        }
        assert!(
            started.elapsed() < ttl + Duration::from_millis(500),
            "a dead node's leases outlived their ttl"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the abandoned sets are gone from Redis (expiry by PEXPIREAT, not merely
    // filtered out).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let exists: i64 = command(&raw, &["EXISTS", "chat:p:alice", "chat:p:bob"])
        .await
        .convert()
        .expect("EXISTS");
    assert_eq!(exists, 0, "abandoned presence sets are still in Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_prunes_expired_leases_and_keeps_the_longest() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let bus = cluster.bus().await;
    let alice = user("alice");
    let (short, long) = (NodeId(uuid::Uuid::new_v4()), NodeId(uuid::Uuid::new_v4()));
    bus.renew_presence(
        short,
        std::slice::from_ref(&alice),
        Duration::from_millis(200),
    )
    .await
    .expect("renew");
    bus.renew_presence(long, std::slice::from_ref(&alice), Duration::from_secs(30))
        .await
        .expect("renew");
    // A shorter lease renewed after a longer one does not shorten the set's life.
    bus.renew_presence(
        short,
        std::slice::from_ref(&alice),
        Duration::from_millis(200),
    )
    .await
    .expect("renew");
    let pttl: i64 = command(&raw, &["PTTL", "chat:p:alice"])
        .await
        .convert()
        .expect("PTTL");
    assert!(
        pttl > 20_000,
        "the set's expiry follows its longest lease: {pttl}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    bus.renew_presence(long, std::slice::from_ref(&alice), Duration::from_secs(30))
        .await
        .expect("renew");
    let members: i64 = command(&raw, &["ZCARD", "chat:p:alice"])
        .await
        .convert()
        .expect("ZCARD");
    assert_eq!(members, 1, "the expired lease was not pruned");
    assert_eq!(
        bus.online(std::slice::from_ref(&alice))
            .await
            .expect("online"),
        vec![alice]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_costs_one_script_per_chunk_of_users() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let bus = cluster.bus().await;
    let node = NodeId(uuid::Uuid::new_v4());
    let users: Vec<UserId> = (0..600).map(|n| user(&format!("user{n}"))).collect();
    command(&raw, &["CONFIG", "RESETSTAT"]).await;
    bus.renew_presence(node, &users[..300], Duration::from_secs(30))
        .await
        .expect("renew");
    // 300 users: two scripts (256 + 44).
    assert_eq!(calls(&raw, "eval").await, 2);
    let online = bus.online(&users).await.expect("online");
    assert_eq!(online, users[..300].to_vec(), "online, in the order asked");
    // 600 users: three more scripts, and nothing else.
    assert_eq!(calls(&raw, "eval").await, 5);
    assert_eq!(calls(&raw, "zcount").await, 600, "run inside the scripts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_about_nobody_does_not_touch_redis() {
    let cluster = Cluster::start().await;
    let bus = cluster.bus().await;
    let node = NodeId(uuid::Uuid::new_v4());
    cluster.server.kill();
    assert!(bus
        .online(&[])
        .await
        .expect("no call, no failure")
        .is_empty());
    bus.renew_presence(node, &[], Duration::from_secs(1))
        .await
        .expect("no call, no failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_calls_fail_fast_while_redis_is_down() {
    let cluster = Cluster::start().await;
    let bus = Arc::new(cluster.bus().await);
    let node = NodeId(uuid::Uuid::new_v4());
    let alice = user("alice");
    cluster.server.kill();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let e = bus
            .online(std::slice::from_ref(&alice))
            .await
            .expect_err("online with Redis down");
        assert_eq!(e.code(), chat_core::ErrorCode::Unavailable);
        let e = bus
            .renew_presence(node, std::slice::from_ref(&alice), Duration::from_secs(1))
            .await
            .expect_err("renew with Redis down");
        assert_eq!(e.code(), chat_core::ErrorCode::Unavailable);
        let e = bus
            .drop_presence(node, &alice)
            .await
            .expect_err("drop with Redis down");
        assert_eq!(e.code(), chat_core::ErrorCode::Unavailable);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "nine calls took {:?}",
        started.elapsed()
    );
}
