//! Presence leases in the key-value bucket, as other clients see them.

mod common;

use std::time::{Duration, Instant};

use chat_core::ids::UserId;
use chat_core::ports::Bus;
use common::{bus, config, raw, server, user, Node};

fn sorted(mut users: Vec<UserId>) -> Vec<UserId> {
    users.sort();
    users
}

/// A node that dies (its client dropped: no drop, no detach) is offline for the others
/// within its lease, and the server removes its keys with the bucket's `max_age`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_goes_offline_within_the_ttl() {
    let server = server().await;
    let ttl = Duration::from_secs(2);
    let cfg = || config().presence_ttl(ttl);
    let dying = Node::attach(&bus(&server.url(), cfg()).await).await;
    let observer = Node::attach(&bus(&server.url(), cfg()).await).await;
    let alice = user("alice");
    dying
        .bus
        .renew_presence(dying.id, std::slice::from_ref(&alice), ttl)
        .await
        .expect("renew");
    let renewed = Instant::now();
    assert_eq!(
        observer
            .bus
            .online(std::slice::from_ref(&alice))
            .await
            .expect("online"),
        vec![alice.clone()]
    );
    drop(dying);

    loop {
        let online = observer
            .bus
            .online(std::slice::from_ref(&alice))
            .await
            .expect("online");
        if online.is_empty() {
            break;
        }
        assert!(
            renewed.elapsed() < ttl + Duration::from_millis(500),
            "a dead node's lease outlived its TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        renewed.elapsed() >= ttl - Duration::from_millis(200),
        "offline before the lease ended: {:?}",
        renewed.elapsed()
    );

    // The bucket has max_age = the TTL: the key is gone from the server too.
    let js = async_nats::jetstream::new(raw(&server.url()).await);
    let kv = js.get_key_value("chat_presence").await.expect("the bucket");
    assert_eq!(kv.stream.cached_info().config.max_age, ttl);
    let deadline = Instant::now() + Duration::from_secs(5);
    while kv
        .stream
        .get_info()
        .await
        .expect("stream info")
        .state
        .messages
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "max_age did not remove the dead node's key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch renewal on one client is seen whole from another the moment it returns, and
/// so is a drop; one key per (user, node), named as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_and_drops_are_seen_at_once_elsewhere() {
    let server = server().await;
    let a = Node::attach(&bus(&server.url(), config()).await).await;
    let b = Node::attach(&bus(&server.url(), config()).await).await;
    let users: Vec<UserId> = (0..500)
        .map(|n| user(&format!("user {n}.x")))
        .chain(["*", ">", "ü", "a.>"].map(user))
        .collect();
    let ttl = Duration::from_secs(30);
    for round in 0..3 {
        a.bus
            .renew_presence(a.id, &users, ttl)
            .await
            .expect("renew");
        assert_eq!(
            sorted(b.bus.online(&users).await.expect("online")),
            sorted(users.clone()),
            "round {round}"
        );
        a.bus
            .drop_presence(a.id, &users[round])
            .await
            .expect("drop");
        let online = b.bus.online(&users).await.expect("online");
        assert_eq!(online.len(), users.len() - 1, "round {round}");
        assert!(!online.contains(&users[round]), "round {round}");
    }
    assert!(b.bus.online(&[]).await.expect("nobody").is_empty());

    let js = async_nats::jetstream::new(raw(&server.url()).await);
    let kv = js.get_key_value("chat_presence").await.expect("the bucket");
    let value = kv
        .get(format!("YS4-.{}", a.id.0.as_simple()))
        .await
        .expect("get")
        .expect("the key of user \"a.>\" (base64url YS4-) on node a");
    assert_eq!(&value[..], br#"{"v":1,"ttl_ms":30000}"#);
}

/// A lease asked for longer than the bucket's `max_age` ends with `max_age`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_longer_than_the_bucket_ends_with_the_bucket() {
    let server = server().await;
    let max_age = Duration::from_secs(1);
    let cfg = || config().presence_ttl(max_age);
    let a = Node::attach(&bus(&server.url(), cfg()).await).await;
    let b = Node::attach(&bus(&server.url(), cfg()).await).await;
    let alice = user("alice");
    a.bus
        .renew_presence(a.id, std::slice::from_ref(&alice), Duration::from_secs(60))
        .await
        .expect("renew");
    let renewed = Instant::now();
    assert_eq!(
        b.bus
            .online(std::slice::from_ref(&alice))
            .await
            .expect("online"),
        vec![alice.clone()]
    );
    while !b
        .bus
        .online(std::slice::from_ref(&alice))
        .await
        .expect("online")
        .is_empty()
    {
        assert!(
            renewed.elapsed() < max_age + Duration::from_millis(500),
            "lease outlived max_age"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node that detaches takes its leases with it (deleted concurrently: each delete
/// must reach every watch); another node's stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_drops_the_nodes_leases() {
    let server = server().await;
    let shared = bus(&server.url(), config()).await;
    let a = Node::attach(&shared).await;
    let b = Node::attach(&shared).await;
    let observer = Node::attach(&bus(&server.url(), config()).await).await;
    let users: Vec<UserId> = (0..50).map(|n| user(&format!("user{n}"))).collect();
    let kept = users[7].clone();
    let ttl = Duration::from_secs(30);
    for round in 0..3 {
        a.bus
            .renew_presence(a.id, &users, ttl)
            .await
            .expect("renew a");
        b.bus
            .renew_presence(b.id, std::slice::from_ref(&kept), ttl)
            .await
            .expect("renew b");
        a.bus.detach(a.id).await.expect("detach");
        assert_eq!(
            observer.bus.online(&users).await.expect("online"),
            vec![kept.clone()],
            "round {round}"
        );
    }
}

/// A client that connects after leases were written sees them at once (its watch
/// replays the bucket), in one call for many users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_connects_later_sees_the_leases_already_there() {
    let server = server().await;
    let a = Node::attach(&bus(&server.url(), config()).await).await;
    let users: Vec<UserId> = (0..100).map(|n| user(&format!("early{n}"))).collect();
    a.bus
        .renew_presence(a.id, &users[..60], Duration::from_secs(30))
        .await
        .expect("renew");
    a.bus.drop_presence(a.id, &users[0]).await.expect("drop");
    let late = bus(&server.url(), config()).await;
    let started = Instant::now();
    let online = late.online(&users).await.expect("online");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "online waited {:?}: the late client's view did not catch up",
        started.elapsed()
    );
    assert_eq!(sorted(online), sorted(users[1..60].to_vec()));
}
