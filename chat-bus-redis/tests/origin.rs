//! The origin filter: a node never gets back what it published, whoever relays it, and
//! what is not a delivery is dropped without disturbing what follows.

mod common;

use std::sync::Arc;

use chat_core::ports::{envelope, Bus, Topic};
use chat_core::NodeId;
use common::{channel_of, command, conversation, typing, Cluster, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_carrying_the_nodes_own_origin_is_not_delivered_to_it() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let mut a = Node::attach(Arc::new(cluster.bus().await)).await;
    let topic = conversation();
    a.bus
        .subscribe(a.id, Topic::Conversation(topic))
        .await
        .expect("subscribe");
    let channel = channel_of(topic);

    // Published by someone else but stamped with a's id: a drops it.
    let own = envelope::encode(a.id, &typing(topic, 1)).expect("encode");
    let other = envelope::encode(NodeId(uuid::Uuid::new_v4()), &typing(topic, 2)).expect("encode");
    for payload in [own, other] {
        let payload = String::from_utf8(payload).expect("JSON");
        command(&raw, &["PUBLISH", &channel, &payload]).await;
    }
    assert_eq!(
        a.next("the other origin's delivery").await,
        typing(topic, 2),
        "a node got a delivery stamped with its own origin"
    );
    a.nothing_yet("after the marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_one_bus_hear_each_other_but_not_themselves() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let bus = Arc::new(cluster.bus().await);
    let mut a = Node::attach(bus.clone()).await;
    let mut b = Node::attach(bus).await;
    let topic = conversation();
    for n in [&a, &b] {
        n.bus
            .subscribe(n.id, Topic::Conversation(topic))
            .await
            .expect("subscribe");
    }
    assert_eq!(
        common::subscribers(&raw, &channel_of(topic)).await,
        1,
        "one Redis subscription per topic per bus, whatever the number of nodes"
    );

    a.publish(&typing(topic, 1)).await;
    assert_eq!(b.next("b hears a").await, typing(topic, 1));
    b.publish(&typing(topic, 2)).await;
    assert_eq!(
        a.next("a hears b, and not itself first").await,
        typing(topic, 2)
    );
    b.nothing_yet("b got its own publication back");

    // One node leaving keeps the subscription for the other.
    a.bus
        .unsubscribe(a.id, Topic::Conversation(topic))
        .await
        .expect("unsubscribe");
    assert_eq!(common::subscribers(&raw, &channel_of(topic)).await, 1);
    b.bus
        .unsubscribe(b.id, Topic::Conversation(topic))
        .await
        .expect("unsubscribe");
    assert_eq!(common::subscribers(&raw, &channel_of(topic)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_delivery_is_dropped_and_the_next_one_arrives() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw().await;
    let mut a = Node::attach(Arc::new(cluster.bus().await)).await;
    let topic = conversation();
    a.bus
        .subscribe(a.id, Topic::Conversation(topic))
        .await
        .expect("subscribe");
    let channel = channel_of(topic);
    for junk in [
        "",
        "not json",
        "{}",
        r#"{"v":2,"origin":"00000000-0000-0000-0000-000000000001","delivery":{}}"#,
        // A control message on a conversation channel is not obeyed there.
        r#"{"v":1,"resync":"00000000-0000-0000-0000-000000000001"}"#,
    ] {
        command(&raw, &["PUBLISH", &channel, junk]).await;
    }
    let good = envelope::encode(NodeId(uuid::Uuid::new_v4()), &typing(topic, 3)).expect("encode");
    let good = String::from_utf8(good).expect("JSON");
    command(&raw, &["PUBLISH", &channel, &good]).await;
    assert_eq!(a.next("the good one").await, typing(topic, 3));
    assert_eq!(a.resyncs(), 0, "junk made the node resync");
}
