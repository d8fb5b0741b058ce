//! Two chat engines, one store, each node on its own NATS client: a message crosses
//! nodes, and one sent while the bus server is down still arrives once it is back
//! (the node resyncs from the store).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::{MemoryConnection, MemoryStore, MemoryTransport};
use chat_core::model::{Message, Visibility};
use chat_core::ports::{Bus, Identity, Store};
use chat_core::{Command, ConversationId, Engine, Event, Reply, Session};
use common::{bus, config, server, user, WITHIN};

async fn node(store: &Arc<MemoryStore>, bus: Arc<dyn Bus>) -> Engine {
    Engine::builder(store.clone() as Arc<dyn Store>)
        .bus(bus)
        .maintenance(None)
        .build()
        .await
        .expect("engine")
}

struct Client {
    session: Session,
    conn: MemoryConnection,
}

impl Client {
    async fn open(engine: &Engine, name: &str) -> Client {
        let (transport, conn) = MemoryTransport::new(1024);
        let session = engine
            .open_session(Identity::new(user(name)), transport)
            .await
            .expect("open session");
        Client { session, conn }
    }

    async fn run(&self, command: Command) -> Reply {
        self.session.execute(command).await.expect("command")
    }

    async fn send(&self, conversation: ConversationId, body: &str) -> Message {
        match self
            .run(Command::Send {
                conversation,
                body: body.into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            })
            .await
        {
            Reply::Sent { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    /// Waits for `message` among this client's events.
    async fn receives(&mut self, message: &Message) {
        assert!(
            self.got_within(message, WITHIN).await,
            "{:?} never arrived",
            message.body
        );
    }

    /// Whether `message` comes among this client's events within `within`.
    async fn got_within(&mut self, message: &Message, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            for event in self.conn.drain() {
                if let Event::Message { message: got } = event {
                    if got.id == message.id {
                        return true;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn create_room(&self, name: &str) -> ConversationId {
        match self
            .run(Command::CreateRoom {
                name: name.into(),
                visibility: Visibility::Public,
            })
            .await
        {
            Reply::Room { conversation, .. } => conversation.id,
            other => panic!("{other:?}"),
        }
    }

    async fn join(&self, room: ConversationId) {
        self.run(Command::Join {
            room: room.into(),
            create: false,
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_nodes_and_survive_a_bus_outage() {
    let server = server().await;
    let store = Arc::new(MemoryStore::new());
    let bus_one = bus(&server.url(), config()).await;
    let one = node(&store, bus_one.clone()).await;
    let two = node(&store, bus(&server.url(), config()).await).await;
    let mut alice = Client::open(&one, "alice").await;
    let mut bob = Client::open(&two, "bob").await;
    let room = alice.create_room("general").await;
    bob.join(room).await;
    // Give node two time to read the room's newest seq after subscribing: see
    // `a_message_right_after_a_join_reaches_the_joiner` for the race this avoids.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let hello = alice.send(room, "across nodes").await;
    bob.receives(&hello).await;
    let back = bob.send(room, "and back").await;
    alice.receives(&back).await;

    // The bus server goes away; a message committed meanwhile is not published (the
    // node logs the bus error), yet bob gets it once the bus is back.
    server.stop().await;
    common::until_disconnected(&bus_one).await;
    let during = alice.send(room, "while the bus was down").await;
    server.resume().await.expect("server back");
    bob.receives(&during).await;
    let after = alice.send(room, "after").await;
    bob.receives(&after).await;
}

/// A message sent the moment another node's user has joined reaches them.
///
/// A message committed right after another node's user joins reaches that user: the
/// engine reads the room's newest seq before subscribing and reads the store again after,
/// so a message committed in between is neither missed nor doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_right_after_a_join_reaches_the_joiner() {
    let server = server().await;
    let store = Arc::new(MemoryStore::new());
    let one = node(&store, bus(&server.url(), config()).await).await;
    let two = node(&store, bus(&server.url(), config()).await).await;
    let alice = Client::open(&one, "alice").await;
    let mut bob = Client::open(&two, "bob").await;
    for round in 0..10 {
        let room = alice.create_room(&format!("room{round}")).await;
        bob.join(room).await;
        let hello = alice.send(room, "right after the join").await;
        assert!(
            bob.got_within(&hello, Duration::from_secs(2)).await,
            "round {round}: the joiner missed it; node two: {:?}",
            two.stats().bus
        );
    }
}
