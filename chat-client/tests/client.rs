//! The client's own behaviours against a real server: typed errors, ordering, the kick,
//! reconnecting and resuming, saved resume points, and the token provider.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_client::chat_core::engine::ResumePoint;
use chat_client::chat_core::model::{Message, Visibility};
use chat_client::chat_core::ports::CloseReason;
use chat_client::chat_core::{ConversationId, ErrorCode, Event};
use chat_client::{Client, ClientError, ClientEvent, Config, Events, State};
use common::*;

/// A config for `server` that reconnects quickly.
fn config(server: &Server) -> Config {
    let mut config = Config::new(server.url.clone());
    config.backoff_initial = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(100);
    config
}

async fn connect(server: &Server, user: &str) -> (Client, Events) {
    tokio::time::timeout(WAIT, Client::connect(config(server), token(user)))
        .await
        .expect("connects in time")
        .expect("connects")
}

/// The next event, within [`WAIT`].
async fn next(events: &mut Events) -> ClientEvent {
    tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an event in time")
        .expect("the events go on")
}

/// The next message event, skipping every other event; panics on a disconnect.
async fn next_message(events: &mut Events) -> Message {
    loop {
        match next(events).await {
            ClientEvent::Event(Event::Message { message }) => return message,
            ClientEvent::Event(_) | ClientEvent::Connected { .. } => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Every message event for `wait`, which must end with nothing else than events.
async fn messages_within(events: &mut Events, wait: Duration) -> Vec<Message> {
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + wait;
    while let Ok(event) = tokio::time::timeout_at(until, events.next()).await {
        match event.expect("the events go on") {
            ClientEvent::Event(Event::Message { message }) => got.push(message),
            ClientEvent::Event(_) | ClientEvent::Connected { .. } => {}
            other => panic!("expected messages only, got {other:?}"),
        }
    }
    got
}

async fn public_room(client: &Client, name: &str) -> ConversationId {
    client
        .create_room(name, Visibility::Public)
        .await
        .expect("room")
        .id
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_a_typed_server_error_and_the_connection_goes_on() {
    let server = Server::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, _bob_events) = connect(&server, "bob").await;
    assert!(matches!(
        next(&mut alice_events).await,
        ClientEvent::Connected { .. }
    ));

    let missing = alice
        .join(String::from("nowhere"))
        .await
        .expect_err("no such room");
    assert!(
        matches!(&missing, ClientError::Server(e) if e.code() == ErrorCode::NotFound),
        "{missing:?}"
    );
    assert_eq!(missing.code(), Some(ErrorCode::NotFound));

    let room = public_room(&alice, "r").await;
    bob.join(room).await.expect("bob joins");
    let sent = alice.send(room, "mine").await.expect("sent");
    let denied = bob
        .delete(room, sent.message.seq)
        .await
        .expect_err("only the sender deletes");
    assert!(
        matches!(&denied, ClientError::Server(e) if e.code() == ErrorCode::Forbidden),
        "{denied:?}"
    );

    // Both connections are the ones they were, and still answer.
    assert_eq!(alice.state(), State::Open);
    assert_eq!(bob.state(), State::Open);
    assert_eq!(server.engine.stats().connections, 2);
    assert_eq!(bob.unread_total().await.expect("bob goes on"), 1);
    let edited = alice
        .edit(room, sent.message.seq, "still mine")
        .await
        .expect("alice goes on");
    assert_eq!(edited.body, "still mine");
    // Alice saw her own message, and no disconnect, on the way.
    assert_eq!(next_message(&mut alice_events).await.body, "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_many_senders_come_in_seq_order_each_once() {
    let server = Server::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, mut bob_events) = connect(&server, "bob").await;
    let room = public_room(&alice, "busy").await;
    bob.join(room).await.expect("bob joins");

    // Bob's sends run at once, and the server posts in between.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let bob = bob.clone();
        tasks.push(tokio::spawn(async move {
            bob.send(room, format!("bob {i}")).await.expect("sent")
        }));
    }
    for i in 0..10 {
        server
            .engine
            .system_message(room, &uid("alice"), &format!("system {i}"))
            .await
            .expect("system message");
    }
    for task in tasks {
        task.await.expect("task");
    }
    let expected: Vec<u64> = (1..=30).collect();
    for events in [&mut alice_events, &mut bob_events] {
        let mut got = Vec::new();
        while got.len() < 30 {
            got.push(next_message(events).await);
        }
        assert_eq!(seqs(&got), expected, "in order, none twice, none missing");
        assert!(got.iter().all(|m| m.conversation == room));
        // And nothing after.
        assert!(messages_within(events, Duration::from_millis(200))
            .await
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_closes_the_client_with_4003_and_it_does_not_come_back() {
    let server = Server::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = {
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(token("alice")) }
        }
    };
    let (alice, mut events) =
        tokio::time::timeout(WAIT, Client::connect(config(&server), provider))
            .await
            .expect("in time")
            .expect("connects");
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Connected { .. }
    ));
    server.wait_connections(1).await;

    let kicked = server
        .engine
        .disconnect_user(&uid("alice"), CloseReason::Kicked)
        .await;
    assert_eq!(kicked, 1);
    match next(&mut events).await {
        ClientEvent::Closed { code, .. } => assert_eq!(code, Some(4003)),
        other => panic!("expected Closed with 4003, got {other:?}"),
    }
    // The last event: the stream ends.
    assert_eq!(
        tokio::time::timeout(WAIT, events.next())
            .await
            .expect("ends in time"),
        None
    );
    assert_eq!(alice.state(), State::Closed);
    assert_eq!(
        alice.unread_total().await.expect_err("closed"),
        ClientError::Closed
    );
    // Many reconnect delays later, it has not asked for a token or connected again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(server.engine.stats().connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_drop_the_client_reconnects_with_a_fresh_token_and_gets_what_it_missed_once() {
    let server = Server::start().await;
    let (bob, _bob_events) = connect(&server, "bob").await;
    let room = public_room(&bob, "r").await;

    // Alice's token provider counts its calls; from the second on, each waits for a
    // permit, so that the test decides when she comes back.
    let calls = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(0));
    let provider = {
        let (calls, permits) = (calls.clone(), permits.clone());
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let permits = permits.clone();
            async move {
                if n > 1 {
                    permits.acquire().await.map_err(|e| e.to_string())?.forget();
                }
                Ok::<_, String>(token("alice"))
            }
        }
    };
    let (alice, mut events) =
        tokio::time::timeout(WAIT, Client::connect(config(&server), provider))
            .await
            .expect("in time")
            .expect("connects");
    alice.join(room).await.expect("alice joins");
    bob.send(room, "before").await.expect("sent");
    assert_eq!(next_message(&mut events).await.body, "before");

    // The server drops her (4008: it wants her to resume).
    server
        .engine
        .disconnect_user(&uid("alice"), CloseReason::SlowConsumer)
        .await;
    loop {
        match next(&mut events).await {
            ClientEvent::Disconnected { code, .. } => {
                assert_eq!(code, Some(4008));
                break;
            }
            ClientEvent::Event(Event::Message { message }) => panic!("{message:?}"),
            ClientEvent::Closed { .. } => panic!("closed instead of reconnecting"),
            _ => {}
        }
    }
    server.wait_connections(1).await;
    assert_eq!(alice.state(), State::Reconnecting);
    // Meanwhile bob writes, and so does she (her send waits for the connection).
    for body in ["one", "two", "three"] {
        bob.send(room, body).await.expect("sent");
    }
    let her_send = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.send(room, "mine").await })
    };
    tokio::time::timeout(WAIT, async {
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("she asks for a token to reconnect");
    permits.add_permits(100);

    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(next_message(&mut events).await);
    }
    assert_eq!(seqs(&got), vec![2, 3, 4, 5]);
    assert_eq!(bodies(&got), vec!["one", "two", "three", "mine"]);
    let sent = tokio::time::timeout(WAIT, her_send)
        .await
        .expect("her send is acknowledged")
        .expect("task")
        .expect("sent");
    assert_eq!((sent.message.seq, sent.duplicate), (5, false));
    // Live again: the next message comes once, and nothing comes twice.
    bob.send(room, "after").await.expect("sent");
    let rest = messages_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(bodies(&rest), vec!["after"]);
    assert_eq!(rest[0].seq, 6);
    assert_eq!(alice.state(), State::Open);
    // One token per connection: the first, and the reconnect.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_resume_points_let_a_later_client_pick_up_where_this_one_stopped() {
    let server = Server::start().await;
    let (bob, _bob_events) = connect(&server, "bob").await;
    let room = public_room(&bob, "r").await;
    let (alice, mut events) = connect(&server, "alice").await;
    alice.join(room).await.expect("alice joins");
    for body in ["a", "b", "c"] {
        bob.send(room, body).await.expect("sent");
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(next_message(&mut events).await);
    }
    let points = alice.resume_points().await;
    assert_eq!(
        points,
        vec![ResumePoint {
            conversation: room,
            last_seq: 3
        }]
    );
    alice.close();
    server.wait_connections(1).await;

    for body in ["d", "e"] {
        bob.send(room, body).await.expect("sent");
    }
    // A client without the points follows from the newest message: it gets nothing old.
    let (fresh, mut fresh_events) = connect(&server, "alice").await;
    assert!(
        messages_within(&mut fresh_events, Duration::from_millis(300))
            .await
            .is_empty()
    );
    fresh.close();
    // With them, exactly what came after.
    let mut config = config(&server);
    config.resume_from = points;
    let (again, mut again_events) =
        tokio::time::timeout(WAIT, Client::connect(config, token("alice")))
            .await
            .expect("in time")
            .expect("connects");
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(next_message(&mut again_events).await);
    }
    assert_eq!(seqs(&got), vec![4, 5]);
    assert_eq!(bodies(&got), vec!["d", "e"]);
    assert!(
        messages_within(&mut again_events, Duration::from_millis(200))
            .await
            .is_empty()
    );
    assert_eq!(
        again.resume_points().await,
        vec![ResumePoint {
            conversation: room,
            last_seq: 5
        }]
    );
}
