//! Bus subscriptions change one topic at a time, with no node-wide lock held across a bus
//! call: a bus that is slow for one conversation does not hold up joins to others.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::engine::{Command, Delivery, Reply};
use chat_core::memory::{MemoryBus, MemoryStore, MemoryTransport};
use chat_core::model::RoomRef;
use chat_core::ports::{Bus, BusSink, Identity, SystemClock, Topic};
use chat_core::{ConversationId, Engine, NodeId, Result, UserId};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// A memory bus whose `subscribe` to one chosen conversation waits until released.
struct StuckBus {
    inner: MemoryBus,
    stuck: Mutex<Option<ConversationId>>,
    release: Notify,
}

#[async_trait]
impl Bus for StuckBus {
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()> {
        self.inner.attach(node, sink).await
    }
    async fn detach(&self, node: NodeId) -> Result<()> {
        self.inner.detach(node).await
    }
    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        let stuck = *self.stuck.lock();
        if matches!((&topic, stuck), (Topic::Conversation(c), Some(s)) if *c == s) {
            self.release.notified().await;
        }
        self.inner.subscribe(node, topic).await
    }
    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        self.inner.unsubscribe(node, topic).await
    }
    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()> {
        self.inner.publish(origin, delivery).await
    }
    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        self.inner.renew_presence(node, users, ttl).await
    }
    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()> {
        self.inner.drop_presence(node, user).await
    }
    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        self.inner.online(users).await
    }
}

fn uid(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
}

async fn room(engine: &Engine, owner: &str, name: &str) -> ConversationId {
    let reply = engine
        .execute_as(
            &uid(owner),
            Command::CreateRoom {
                name: name.into(),
                visibility: Default::default(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    match reply {
        Reply::Room { conversation, .. } => conversation.id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_stuck_on_one_topic_does_not_hold_up_joins_to_others() {
    let bus = Arc::new(StuckBus {
        inner: MemoryBus::new(Arc::new(SystemClock)),
        stuck: Mutex::new(None),
        release: Notify::new(),
    });
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .bus(bus.clone())
        .maintenance(None)
        .build()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let slow = room(&engine, "owner", "slow").await;
    let fast = room(&engine, "owner", "fast").await;
    *bus.stuck.lock() = Some(slow);

    let (t_ann, _c_ann) = MemoryTransport::new(64);
    let ann = engine
        .open_session(Identity::new(uid("ann")), t_ann)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (t_bob, _c_bob) = MemoryTransport::new(64);
    let bob = engine
        .open_session(Identity::new(uid("bob")), t_bob)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Ann's join needs the stuck subscription and waits for it.
    let ann_join = tokio::spawn(async move {
        let r = ann
            .execute(Command::Join {
                room: RoomRef::Id(slow),
                create: false,
            })
            .await;
        (ann, r)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!ann_join.is_finished(), "the stuck topic holds ann's join");

    // Bob's join to another conversation goes through meanwhile.
    let bob_join = tokio::time::timeout(
        Duration::from_secs(5),
        bob.execute(Command::Join {
            room: RoomRef::Id(fast),
            create: false,
        }),
    )
    .await
    .expect("a join to another topic does not wait for the stuck one");
    assert!(
        matches!(bob_join, Ok(Reply::Room { joined: true, .. })),
        "{bob_join:?}"
    );

    // Released, ann's join completes and her subscription is in place.
    bus.release.notify_one();
    let (_ann, r) = tokio::time::timeout(Duration::from_secs(5), ann_join)
        .await
        .expect("released")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(r, Ok(Reply::Room { joined: true, .. })), "{r:?}");
    assert_eq!(engine.stats().live_conversations, 2);
}
