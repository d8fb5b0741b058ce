//! A test world: an engine on the memory store with a manual clock and sequential ids.
#![allow(dead_code)]

pub(crate) mod faulty;
pub(crate) mod logs;

use std::sync::Arc;
use std::time::Duration;

use chat_core::engine::{Command, Event, Reply};
use chat_core::memory::{MemoryBus, MemoryConnection, MemoryStore, MemoryTransport};
use chat_core::model::{Conversation, Limits, Message};
use chat_core::ports::{Bus, Clock, Identity, ManualClock, SequentialIds, Store};
use chat_core::{ConversationId, Engine, ErrorCode, Session, UserId};

pub(crate) struct World {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryStore>,
    pub bus: Arc<MemoryBus>,
}

pub(crate) fn uid(name: &str) -> UserId {
    UserId::new(name).expect("valid user id")
}

pub(crate) struct Client {
    pub session: Session,
    pub conn: MemoryConnection,
}

impl Client {
    pub(crate) async fn run(&self, cmd: Command) -> Reply {
        self.session
            .execute(cmd.clone())
            .await
            .unwrap_or_else(|e| panic!("{} as {}: {e}", cmd.kind(), self.session.user()))
    }

    pub(crate) async fn deny(&self, cmd: Command) -> ErrorCode {
        match self.session.execute(cmd.clone()).await {
            Ok(r) => panic!(
                "{} as {} should fail, got {r:?}",
                cmd.kind(),
                self.session.user()
            ),
            Err(e) => e.code(),
        }
    }

    pub(crate) fn events(&mut self) -> Vec<Event> {
        self.conn.drain()
    }

    pub(crate) fn assert_quiet(&mut self) {
        let events = self.events();
        assert!(
            events.is_empty(),
            "{} expected no events, got {events:?}",
            self.session.user()
        );
    }

    pub(crate) async fn send(&self, conversation: ConversationId, body: &str) -> Message {
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
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub(crate) async fn create_room(&self, name: &str, private: bool) -> Conversation {
        let visibility = if private {
            chat_core::model::Visibility::Private
        } else {
            chat_core::model::Visibility::Public
        };
        match self
            .run(Command::CreateRoom {
                name: name.into(),
                visibility,
            })
            .await
        {
            Reply::Room { conversation, .. } => conversation,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub(crate) async fn join(&self, id: ConversationId) {
        self.run(Command::Join {
            room: id.into(),
            create: false,
        })
        .await;
    }
}

impl World {
    pub(crate) async fn new() -> World {
        Self::with_limits(Limits::default()).await
    }

    pub(crate) async fn with_limits(limits: Limits) -> World {
        let clock = Arc::new(ManualClock::at_epoch());
        let store = Arc::new(MemoryStore::new());
        let bus = Arc::new(MemoryBus::new(clock.clone()));
        let engine = Self::node(&store, &bus, &clock, limits).await;
        World {
            engine,
            clock,
            store,
            bus,
        }
    }

    /// Another engine sharing this world's store and bus: a second node.
    pub(crate) async fn node(
        store: &Arc<MemoryStore>,
        bus: &Arc<MemoryBus>,
        clock: &Arc<ManualClock>,
        limits: Limits,
    ) -> Engine {
        Engine::builder(store.clone() as Arc<dyn Store>)
            .bus(bus.clone() as Arc<dyn Bus>)
            .clock(clock.clone() as Arc<dyn Clock>)
            .ids(Arc::new(SequentialIds::default()))
            .limits(limits)
            .maintenance(None)
            .build()
            .await
            .expect("engine")
    }

    pub(crate) async fn connect(&self, name: &str) -> Client {
        self.connect_to(&self.engine, name, 1024).await
    }

    pub(crate) async fn connect_to(&self, engine: &Engine, name: &str, capacity: usize) -> Client {
        let (transport, conn) = MemoryTransport::new(capacity);
        let session = engine
            .open_session(Identity::new(uid(name)), transport)
            .await
            .expect("open session");
        Client { session, conn }
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    /// Makes two users friends through the engine.
    pub(crate) async fn befriend(&self, a: &mut Client, b: &mut Client) {
        a.run(Command::FriendRequest {
            user: b.session.user().clone(),
        })
        .await;
        b.run(Command::FriendAccept {
            user: a.session.user().clone(),
        })
        .await;
        a.events();
        b.events();
    }
}
