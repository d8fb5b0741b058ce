//! Two engines, one store, this bus: a message sent on one node reaches a session on the
//! other, and one committed while Redis was down still reaches it once Redis is back
//! (the node resyncs from the store).

mod common;

use std::sync::Arc;

use chat_bus_redis::RedisBus;
use chat_core::engine::{Command, Event, Reply};
use chat_core::memory::{MemoryConnection, MemoryStore, MemoryTransport, Received};
use chat_core::model::Visibility;
use chat_core::ports::{Bus, Identity, Store};
use chat_core::{ConversationId, Engine, Session};
use common::{user, Cluster, WITHIN};

async fn node(store: &Arc<MemoryStore>, cluster: &Cluster) -> Engine {
    node_on(store, Arc::new(cluster.bus().await)).await
}

async fn node_on(store: &Arc<MemoryStore>, bus: Arc<RedisBus>) -> Engine {
    Engine::builder(store.clone() as Arc<dyn Store>)
        .bus(bus as Arc<dyn Bus>)
        .maintenance(None)
        .build()
        .await
        .expect("an engine on the Redis bus")
}

async fn open(engine: &Engine, name: &str) -> (Session, MemoryConnection) {
    let (transport, conn) = MemoryTransport::new(1024);
    let session = engine
        .open_session(Identity::new(user(name)), transport)
        .await
        .expect("open a session");
    (session, conn)
}

async fn run(session: &Session, command: Command) -> Reply {
    session
        .execute(command)
        .await
        .unwrap_or_else(|e| panic!("as {}: {e}", session.user()))
}

async fn send(session: &Session, conversation: ConversationId, body: &str) {
    run(
        session,
        Command::Send {
            conversation,
            body: body.into(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        },
    )
    .await;
}

/// Waits for the message with `body`, skipping other events.
async fn message(conn: &mut MemoryConnection, body: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        match tokio::time::timeout_at(deadline, conn.recv()).await {
            Ok(Some(Received::Event(Event::Message { message }))) if message.body == body => {
                return message.seq
            }
            Ok(Some(Received::Event(_))) => {}
            other => panic!("waiting for {body:?}: {other:?}"),
        }
    }
}

/// Alice on node 1 and Bob on node 2, both in one room.
async fn room(
    one: &Engine,
    two: &Engine,
) -> (
    (Session, MemoryConnection),
    (Session, MemoryConnection),
    ConversationId,
) {
    let alice = open(one, "alice").await;
    let bob = open(two, "bob").await;
    let room = match run(
        &alice.0,
        Command::CreateRoom {
            name: "lobby".into(),
            visibility: Visibility::Public,
        },
    )
    .await
    {
        Reply::Room { conversation, .. } => conversation.id,
        other => panic!("creating a room: {other:?}"),
    };
    run(
        &bob.0,
        Command::Join {
            room: room.into(),
            create: false,
        },
    )
    .await;
    (alice, bob, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_on_one_node_reaches_a_session_on_the_other() {
    let cluster = Cluster::start().await;
    let store = Arc::new(MemoryStore::new());
    let (one, two) = (node(&store, &cluster).await, node(&store, &cluster).await);
    let ((alice, _), (_bob, mut bob_conn), room) = room(&one, &two).await;
    send(&alice, room, "hello from node 1").await;
    assert_eq!(message(&mut bob_conn, "hello from node 1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_while_redis_was_down_arrives_after_it_is_back() {
    let cluster = Cluster::start().await;
    let store = Arc::new(MemoryStore::new());
    let bus_one = Arc::new(cluster.bus().await);
    let (one, two) = (
        node_on(&store, bus_one.clone()).await,
        node(&store, &cluster).await,
    );
    let ((alice, _), (_bob, mut bob_conn), room) = room(&one, &two).await;
    send(&alice, room, "before").await;
    assert_eq!(message(&mut bob_conn, "before").await, 1);

    cluster.server.kill();
    // Once node 1's bus knows Redis is gone, its publications fail at once and are not
    // queued for later: "during" is committed in the store and lost on the bus.
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !format!("{bus_one:?}").contains("publisher_connected: false") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 1 did not notice"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    send(&alice, room, "during").await;
    assert_eq!(
        one.stats().bus_errors,
        1,
        "the publication of \"during\" failed"
    );
    cluster.server.start_again().await.expect("start again");
    // Nothing more is sent: node 2 re-reads the room when its bus is back.
    assert_eq!(
        message(&mut bob_conn, "during").await,
        2,
        "a message committed while Redis was down never reached the other node"
    );
    // From the store (the counters move once the gap is filled).
    common::eventually("node 2 counts the message it read from the store", || {
        two.stats().bus.filled_messages >= 1
    })
    .await;
    send(&alice, room, "after").await;
    assert_eq!(message(&mut bob_conn, "after").await, 3);
}
