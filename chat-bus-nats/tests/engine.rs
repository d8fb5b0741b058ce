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
            })
            .await
        {
            Reply::Sent { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    /// Waits for `message` among this client's events.
    async fn receives(&mut self, message: &Message) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            for event in self.conn.drain() {
                if let Event::Message { message: got } = event {
                    if got.id == message.id {
                        return;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?} never arrived",
                message.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
    let room = match alice
        .run(Command::CreateRoom {
            name: "general".into(),
            visibility: Visibility::Public,
        })
        .await
    {
        Reply::Room { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    };
    bob.run(Command::Join {
        room: room.id.into(),
        create: false,
    })
    .await;

    let hello = alice.send(room.id, "across nodes").await;
    bob.receives(&hello).await;
    let back = bob.send(room.id, "and back").await;
    alice.receives(&back).await;

    // The bus server goes away; a message committed meanwhile is not published (the
    // node logs the bus error), yet bob gets it once the bus is back.
    server.stop().await;
    common::until_disconnected(&bus_one).await;
    let during = alice.send(room.id, "while the bus was down").await;
    server.resume().await.expect("server back");
    bob.receives(&during).await;
    let after = alice.send(room.id, "after").await;
    bob.receives(&after).await;
}
