//! One `PUBLISH` per event, whatever the number of subscribed nodes, on the channel the
//! crate docs name; subscriptions come and go with the engine's calls.

mod common;

use std::sync::Arc;

use chat_bus_redis::RedisBusConfig;
use chat_core::event::{Audience, Delivery, Event, Skip};
use chat_core::model::Presence;
use chat_core::ports::{envelope, Bus, Topic};
use common::{
    calls, channel_of, command, conversation, typing, until_subscribers, user, Cluster, Node,
};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_one_redis_publish_whatever_the_subscribers() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let publisher = Node::attach(Arc::new(cluster.bus().await)).await;
    let topic = conversation();
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let n = Node::attach(Arc::new(cluster.bus().await)).await;
        n.bus
            .subscribe(n.id, Topic::Conversation(topic))
            .await
            .expect("subscribe");
        listeners.push(n);
    }
    // A raw subscriber counts what crosses the channel.
    let spy = common::raw(&cluster.server.url()).await;
    let mut seen = spy.message_rx();
    spy.subscribe(channel_of(topic))
        .await
        .expect("spy subscribes");
    until_subscribers(&raw, &channel_of(topic), 4).await;

    command(&raw, &["CONFIG", "RESETSTAT"]).await;
    for n in 0..5 {
        publisher.publish(&typing(topic, n)).await;
    }
    for l in &mut listeners {
        for n in 0..5 {
            assert_eq!(l.next("each listener, each event").await, typing(topic, n));
        }
    }
    assert_eq!(
        calls(&raw, "publish").await,
        5,
        "five events to three nodes are five PUBLISHes"
    );
    for n in 0..5 {
        let m = tokio::time::timeout(common::WITHIN, seen.recv())
            .await
            .expect("the spy hears")
            .expect("a message");
        let (origin, d) = envelope::decode(m.value.as_bytes().expect("bytes"))
            .expect("the payload is the envelope");
        assert_eq!(origin, publisher.id);
        assert_eq!(d, typing(topic, n));
    }
    let _ = spy.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_to_the_documented_channels() {
    let cluster = Cluster::start().await;
    let bus =
        chat_bus_redis::RedisBus::connect(&cluster.server.url(), common::config().prefix("eu1"))
            .await
            .expect("connect");
    let node = chat_core::NodeId(uuid::Uuid::new_v4());
    let spy = common::raw(&cluster.server.url()).await;
    let mut seen = spy.message_rx();
    spy.psubscribe("eu1:*").await.expect("spy subscribes");
    // Answered after the subscription: it is in place.
    let _: fred::types::Value = spy.ping(None).await.expect("ping");

    let c = conversation();
    let alice = user("alice:1");
    let to_user = Delivery {
        audience: Audience::User {
            user: alice.clone(),
        },
        skip: Skip::Nobody,
        event: Event::ConversationRemoved { conversation: c },
    };
    let presence = Delivery {
        audience: Audience::Presence {
            subject: alice.clone(),
            conversations: vec![c],
            users: vec![],
        },
        skip: Skip::Nobody,
        event: Event::Presence {
            presence: Presence {
                user: alice,
                online: true,
                last_seen: None,
            },
        },
    };
    for (d, channel) in [
        (typing(c, 1), format!("eu1:c:{c}")),
        (to_user, "eu1:u:alice:1".to_owned()),
        (presence, "eu1:all".to_owned()),
    ] {
        bus.publish(node, Arc::new(d.clone()))
            .await
            .expect("publish");
        let m = tokio::time::timeout(common::WITHIN, seen.recv())
            .await
            .expect("the spy hears")
            .expect("a message");
        assert_eq!(&*m.channel, channel, "{d:?}");
    }
    let _ = spy.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_subscribe_unsubscribe_and_detach() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let a = Node::attach(Arc::new(cluster.bus().await)).await;
    let (one, two) = (conversation(), conversation());
    let alice = user("alice");
    // Attached: the broadcast channel only.
    assert_eq!(common::subscribers(&raw, "chat:all").await, 1);
    assert_eq!(common::subscribers(&raw, &channel_of(one)).await, 0);

    for t in [
        Topic::Conversation(one),
        Topic::Conversation(two),
        Topic::User(alice.clone()),
    ] {
        a.bus.subscribe(a.id, t).await.expect("subscribe");
    }
    // Subscribed means confirmed by Redis: no waiting needed.
    assert_eq!(common::subscribers(&raw, &channel_of(one)).await, 1);
    assert_eq!(common::subscribers(&raw, &channel_of(two)).await, 1);
    assert_eq!(common::subscribers(&raw, "chat:u:alice").await, 1);

    a.bus
        .unsubscribe(a.id, Topic::Conversation(one))
        .await
        .expect("unsubscribe");
    until_subscribers(&raw, &channel_of(one), 0).await;
    assert_eq!(common::subscribers(&raw, &channel_of(two)).await, 1);

    a.bus.detach(a.id).await.expect("detach");
    for channel in [
        channel_of(two),
        "chat:u:alice".to_owned(),
        "chat:all".to_owned(),
    ] {
        until_subscribers(&raw, &channel, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_deployments_apart() {
    let cluster = Cluster::start().await;
    let a = Node::attach(Arc::new(cluster.bus().await)).await;
    let other = chat_bus_redis::RedisBus::connect(
        &cluster.server.url(),
        RedisBusConfig::default().prefix("other"),
    )
    .await
    .expect("connect");
    let mut b = Node::attach(Arc::new(cluster.bus().await)).await;
    let topic = conversation();
    b.bus
        .subscribe(b.id, Topic::Conversation(topic))
        .await
        .expect("subscribe");
    other
        .publish(
            chat_core::NodeId(uuid::Uuid::new_v4()),
            Arc::new(typing(topic, 1)),
        )
        .await
        .expect("publish under another prefix");
    a.publish(&typing(topic, 2)).await;
    assert_eq!(
        b.next("only its own deployment").await,
        typing(topic, 2),
        "a delivery crossed prefixes"
    );
}
