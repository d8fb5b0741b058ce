//! Deliveries: who hears what, once, under which subject, and the control message.

mod common;

use std::time::Duration;

use chat_bus_nats::NatsBusConfig;
use chat_core::ports::{envelope, Bus, Topic};
use common::{bus, config, conversation, raw, server, to_conversation, user, Node};
use futures::StreamExt as _;

/// Two nodes on one client and one on another: the publisher's own node never hears
/// itself, its neighbour on the same connection does, and so does the other client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_ignores_its_own_publications_but_not_its_neighbours() {
    let server = server().await;
    let shared = bus(&server.url(), config()).await;
    let mut a = Node::attach(&shared).await;
    let mut b = Node::attach(&shared).await;
    let mut c = Node::attach(&bus(&server.url(), config()).await).await;
    let topic = conversation();
    for n in [&a, &b, &c] {
        n.subscribe(Topic::Conversation(topic)).await;
    }
    let from_a = to_conversation(topic, 1);
    a.publish(&from_a).await;
    assert_eq!(b.next("a's neighbour on the same client").await, from_a);
    assert_eq!(c.next("a node on another client").await, from_a);
    let from_b = to_conversation(topic, 2);
    b.publish(&from_b).await;
    assert_eq!(
        a.next("a hears b first, never itself").await,
        from_b,
        "a node got its own publication back"
    );
    assert_eq!(c.next("c hears b").await, from_b);
    b.nothing_yet("b heard itself");
}

/// A publish is one NATS message on the topic's subject, whatever the number of nodes
/// and clients that hear it, and it carries chat-core's envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nats_message_per_event() {
    let server = server().await;
    let watcher = raw(&server.url()).await;
    let mut everything = watcher.subscribe("chat.>").await.expect("raw subscribe");
    watcher.flush().await.expect("flush");

    let one = bus(&server.url(), config()).await;
    let publisher = Node::attach(&bus(&server.url(), config()).await).await;
    let mut hearers = vec![Node::attach(&one).await, Node::attach(&one).await];
    for _ in 0..3 {
        hearers.push(Node::attach(&bus(&server.url(), config()).await).await);
    }
    let topic = conversation();
    for h in &hearers {
        h.subscribe(Topic::Conversation(topic)).await;
    }
    for n in 0..10 {
        publisher.publish(&to_conversation(topic, n)).await;
    }
    let marker_user = user("marker.user");
    let marker = chat_core::event::Delivery {
        audience: chat_core::event::Audience::User {
            user: marker_user.clone(),
        },
        skip: chat_core::event::Skip::Nobody,
        event: chat_core::event::Event::ConversationRemoved {
            conversation: topic,
        },
    };
    publisher.publish(&marker).await;
    for h in &mut hearers {
        for n in 0..10 {
            assert_eq!(
                h.next("every hearer, in order").await,
                to_conversation(topic, n)
            );
        }
    }

    let subject = format!("chat.c.{}", topic.0.as_hyphenated());
    let mut seen = 0;
    loop {
        let m = tokio::time::timeout(common::WITHIN, everything.next())
            .await
            .expect("the raw subscriber heard the marker")
            .expect("raw subscription open");
        if m.subject.as_str() == subject {
            let (origin, delivery) = envelope::decode(&m.payload).expect("an envelope");
            assert_eq!(origin, publisher.id);
            assert_eq!(delivery, to_conversation(topic, seen));
            seen += 1;
        } else if m.subject.as_str() == "chat.u.bWFya2VyLnVzZXI" {
            break; // the marker, published last, on the user's base64url subject
        }
    }
    assert_eq!(
        seen, 10,
        "NATS messages for 10 events heard by 5 nodes on 4 clients"
    );
}

/// One subscription per client and subject: a node's unsubscribe leaves its neighbour
/// subscribed; the last one's ends the subject; detach ends all of a node's subjects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subjects_end_with_their_last_node() {
    let server = server().await;
    let shared = bus(&server.url(), config()).await;
    let mut a = Node::attach(&shared).await;
    let mut b = Node::attach(&shared).await;
    let publisher = Node::attach(&bus(&server.url(), config()).await).await;
    let (topic, marker_topic) = (conversation(), conversation());
    for n in [&a, &b] {
        n.subscribe(Topic::Conversation(topic)).await;
        n.subscribe(Topic::Conversation(marker_topic)).await;
    }
    a.bus
        .unsubscribe(a.id, Topic::Conversation(topic))
        .await
        .expect("unsubscribe a");
    let first = to_conversation(topic, 1);
    publisher.publish(&first).await;
    let marker = to_conversation(marker_topic, 2);
    publisher.publish(&marker).await;
    // Two subjects: each in order, but not ordered with each other.
    let mut heard = vec![
        b.next("b, first of two").await,
        b.next("b, second of two").await,
    ];
    heard.sort_by_key(|d| d == &marker);
    assert_eq!(heard, [first, marker.clone()], "b is still subscribed");
    assert_eq!(a.next("a only hears the marker").await, marker);
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.nothing_yet("a heard the subject it left");

    b.bus
        .unsubscribe(b.id, Topic::Conversation(topic))
        .await
        .expect("unsubscribe b");
    a.bus.detach(a.id).await.expect("detach a");
    publisher.publish(&to_conversation(topic, 3)).await;
    let marker = to_conversation(marker_topic, 4);
    publisher.publish(&marker).await;
    assert_eq!(b.next("b hears only the marker").await, marker);
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.nothing_yet("a detached node");
    // Subscribing again after the subject ended works.
    b.subscribe(Topic::Conversation(topic)).await;
    let again = to_conversation(topic, 5);
    publisher.publish(&again).await;
    assert_eq!(b.next("subscribed again").await, again);
}

/// The prefix is configurable, and user ids that are not subject tokens still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_prefix_and_awkward_user_ids() {
    let server = server().await;
    let cfg = || config().prefix("app.chat").presence_bucket("app_presence");
    let watcher = raw(&server.url()).await;
    let mut sub = watcher
        .subscribe("app.chat.u.*")
        .await
        .expect("raw subscribe");
    watcher.flush().await.expect("flush");
    let publisher = Node::attach(&bus(&server.url(), cfg()).await).await;
    let hearer_bus = bus(&server.url(), cfg()).await;
    let mut hearers = Vec::new();
    let users = ["a.b", "*", ">", "ü x", "a.>"];
    for name in users {
        let node = Node::attach(&hearer_bus).await;
        node.subscribe(Topic::User(user(name))).await;
        hearers.push(node);
    }
    for (n, name) in users.iter().enumerate() {
        let delivery = chat_core::event::Delivery {
            audience: chat_core::event::Audience::User { user: user(name) },
            skip: chat_core::event::Skip::Nobody,
            event: chat_core::event::Event::ConversationRemoved {
                conversation: chat_core::ids::ConversationId(uuid::Uuid::from_u128(n as u128)),
            },
        };
        publisher.publish(&delivery).await;
        let m = tokio::time::timeout(common::WITHIN, sub.next())
            .await
            .expect("raw message")
            .expect("raw subscription open");
        assert_eq!(m.subject.split('.').count(), 4, "{name:?} -> {}", m.subject);
        assert_eq!(hearers[n].next(name).await, delivery);
    }
    for h in &mut hearers {
        h.nothing_yet("each user's node hears its own user only");
    }
    // Anything else is refused before connecting.
    for bad in ["", "a b", "a.*", "a..b"] {
        let e =
            chat_bus_nats::NatsBus::connect(&server.url(), NatsBusConfig::default().prefix(bad))
                .await
                .expect_err(bad);
        assert_eq!(e.code(), chat_core::ErrorCode::Invalid, "{bad:?}");
    }
}

/// `{"v":1,"resync":…}` from another client resyncs every node; malformed payloads are
/// ignored, and neither reaches a sink as a delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_message_resyncs_and_junk_is_ignored() {
    let server = server().await;
    let shared = bus(&server.url(), config()).await;
    let mut a = Node::attach(&shared).await;
    let mut b = Node::attach(&shared).await;
    let topic = conversation();
    a.subscribe(Topic::Conversation(topic)).await;
    let other = raw(&server.url()).await;
    let control = format!(r#"{{"v":1,"resync":"{}"}}"#, uuid::Uuid::new_v4());
    other
        .publish("chat.all", control.into())
        .await
        .expect("raw publish");
    let subject = format!("chat.c.{}", topic.0.as_hyphenated());
    other
        .publish(subject, "not json".into())
        .await
        .expect("raw publish");
    other
        .publish("chat.all", r#"{"v":1,"resync":"nope"}"#.into())
        .await
        .expect("raw publish");
    other.flush().await.expect("flush");
    common::eventually("both nodes resynced", || {
        a.resyncs() == 1 && b.resyncs() == 1
    })
    .await;
    let publisher = Node::attach(&bus(&server.url(), config()).await).await;
    let marker = to_conversation(topic, 1);
    publisher.publish(&marker).await;
    assert_eq!(a.next("after the junk").await, marker);
    b.nothing_yet("b got a control message as a delivery");
    assert_eq!(a.resyncs(), 1);
}
