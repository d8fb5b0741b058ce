//! The engine's life: delivery only after the store commits, several nodes on one store and
//! bus, reconnect races, stats, commands without a connection, and shutdown.

mod common;

use std::sync::Arc;

use chat_core::engine::{Command, Event, Reply};
use chat_core::memory::{MemoryTransport, Received};
use chat_core::model::{FriendStatus, Limits, Role};
use chat_core::ports::{CloseReason, Identity};
use chat_core::{ErrorCode, Result};
use common::{uid, World};

#[tokio::test]
async fn nothing_is_delivered_unless_the_store_committed() {
    let store = Arc::new(chat_core::memory::MemoryStore::new());
    let engine = chat_core::Engine::builder(store.clone())
        .maintenance(None)
        .build()
        .await
        .expect("engine");
    let (ta, _ca) = MemoryTransport::new(16);
    let (tb, mut cb) = MemoryTransport::new(16);
    let alice = engine
        .open_session(Identity::new(uid("alice")), ta)
        .await
        .expect("alice");
    let bob = engine
        .open_session(Identity::new(uid("bob")), tb)
        .await
        .expect("bob");
    let Ok(Reply::Room { conversation, .. }) = alice
        .execute(Command::CreateRoom {
            name: "r".into(),
            visibility: Default::default(),
        })
        .await
    else {
        panic!()
    };
    bob.execute(Command::Join {
        room: conversation.id.into(),
        create: false,
    })
    .await
    .expect("join");
    store.fail_appends(true);
    let err = alice
        .execute(Command::Send {
            conversation: conversation.id,
            body: "lost?".into(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
    assert_eq!(
        err.map_err(|e| e.code()).err(),
        Some(ErrorCode::Unavailable),
        "the sender is told, not acked"
    );
    assert!(
        cb.drain().is_empty(),
        "nobody receives an uncommitted message"
    );
    assert_eq!(engine.stats().messages_sent, 0);
    store.fail_appends(false);
    let ok = alice
        .execute(Command::Send {
            conversation: conversation.id,
            body: "now".into(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await;
    assert!(
        matches!(ok, Ok(Reply::Sent { ref message, .. }) if message.seq == 1),
        "{ok:?}"
    );
    assert_eq!(cb.drain().len(), 1);
}

#[tokio::test]
async fn two_nodes_share_a_store_and_a_bus() {
    let w = World::new().await;
    let node2 = World::node(&w.store, &w.bus, &w.clock, Limits::default()).await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect_to(&node2, "bob", 64).await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    assert_eq!(
        alice.events(),
        vec![Event::MemberJoined {
            conversation: room.id,
            user: uid("bob"),
            role: Role::Member
        }]
    );
    let m = alice.send(room.id, "across nodes").await;
    assert_eq!(bob.events(), vec![Event::Message { message: m }]);
    let r = bob.send(room.id, "back").await;
    assert_eq!(alice.events(), vec![Event::Message { message: r }]);
    // A friendship and its presence across nodes.
    w.befriend(&mut alice, &mut bob).await;
    match bob.run(Command::OnlineFriends {}).await {
        Reply::Online { users } => assert_eq!(users, vec![uid("alice")]),
        other => panic!("{other:?}"),
    }
    // Bob's second device on node 1 makes bob online on two nodes; closing one keeps him online.
    let phone = w.connect("bob").await;
    bob.session.close().await;
    alice.assert_quiet();
    phone.session.close().await;
    let got = alice.events();
    assert!(
        matches!(&got[..], [Event::Presence { presence }] if presence.user == uid("bob") && !presence.online),
        "{got:?}"
    );
    assert_eq!(node2.stats().connections, 0);
    assert_eq!(w.engine.stats().connections, 1);
}

/// A bus that yields to the scheduler around every call, as a networked bus would, so
/// that a disconnect and a reconnect of one user really interleave.
struct YieldingBus(chat_core::memory::MemoryBus);

#[async_trait::async_trait]
impl chat_core::ports::Bus for YieldingBus {
    async fn attach(
        &self,
        node: chat_core::NodeId,
        sink: Arc<dyn chat_core::ports::BusSink>,
    ) -> Result<()> {
        self.0.attach(node, sink).await
    }
    async fn detach(&self, node: chat_core::NodeId) -> Result<()> {
        self.0.detach(node).await
    }
    async fn subscribe(
        &self,
        node: chat_core::NodeId,
        topic: chat_core::ports::Topic,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let r = self.0.subscribe(node, topic).await;
        tokio::task::yield_now().await;
        r
    }
    async fn unsubscribe(
        &self,
        node: chat_core::NodeId,
        topic: chat_core::ports::Topic,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let r = self.0.unsubscribe(node, topic).await;
        tokio::task::yield_now().await;
        r
    }
    async fn publish(
        &self,
        origin: chat_core::NodeId,
        d: Arc<chat_core::engine::Delivery>,
    ) -> Result<()> {
        self.0.publish(origin, d).await
    }
    async fn renew_presence(
        &self,
        node: chat_core::NodeId,
        users: &[chat_core::UserId],
        ttl: std::time::Duration,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        self.0.renew_presence(node, users, ttl).await
    }
    async fn drop_presence(&self, node: chat_core::NodeId, user: &chat_core::UserId) -> Result<()> {
        tokio::task::yield_now().await;
        self.0.drop_presence(node, user).await
    }
    async fn online(&self, users: &[chat_core::UserId]) -> Result<Vec<chat_core::UserId>> {
        tokio::task::yield_now().await;
        self.0.online(users).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_racing_the_disconnect_leaves_the_user_online_and_reachable() {
    let w = World::new().await;
    let bus = Arc::new(YieldingBus(chat_core::memory::MemoryBus::new(
        w.clock.clone(),
    )));
    let node = |bus: Arc<YieldingBus>| {
        chat_core::Engine::builder(w.store.clone())
            .bus(bus)
            .clock(w.clock.clone())
            .maintenance(None)
            .build()
    };
    let node1 = node(bus.clone()).await.expect("node 1");
    let node2 = node(bus.clone()).await.expect("node 2");
    let mut alice = w.connect_to(&node1, "alice", 256).await;
    let mut bob = w.connect_to(&node2, "bob", 256).await;
    w.befriend(&mut alice, &mut bob).await;
    for round in 0..50 {
        w.advance(1000); // keep bob under the command rate limit
        let (t, conn) = MemoryTransport::new(256);
        let engine = node1.clone();
        let (_, reopened) = tokio::join!(
            alice.session.close(),
            engine.open_session(Identity::new(uid("alice")), t)
        );
        alice = common::Client {
            session: reopened.expect("reopen"),
            conn,
        };
        let online = chat_core::ports::Bus::online(&*bus, &[uid("alice")])
            .await
            .expect("bus");
        assert_eq!(online, vec![uid("alice")], "round {round}: alice is online");
        // A user-topic event from the other node still reaches the new session.
        bob.run(Command::FriendRemove { user: uid("alice") }).await;
        bob.run(Command::FriendRequest { user: uid("alice") }).await;
        let got = alice.events();
        assert!(
            got.iter().any(|e| matches!(e, Event::Friend { friend } if friend.status == FriendStatus::RequestReceived)),
            "round {round}: {got:?}"
        );
        alice.run(Command::FriendAccept { user: uid("bob") }).await;
        alice.events();
        bob.events();
    }
}

#[tokio::test]
async fn stats_count_connections_users_and_live_conversations() {
    let w = World::new().await;
    let a1 = w.connect("alice").await;
    let _a2 = w.connect("alice").await;
    let b = w.connect("bob").await;
    let room = a1.create_room("general", false).await;
    b.join(room.id).await;
    a1.send(room.id, "x").await;
    let s = w.engine.stats();
    assert_eq!(
        (
            s.connections,
            s.online_users,
            s.live_conversations,
            s.messages_sent
        ),
        (3, 2, 1, 1)
    );
    // conversation_added to alice's other device (1), member_joined to both of alice's
    // sessions (2), the message to alice's other device and bob (2).
    assert_eq!(s.deliveries, 5);
    assert_eq!(s.append_latency.count(), 1, "the append was timed");
    b.session.close().await;
    a1.session.close().await;
    let s = w.engine.stats();
    assert_eq!(
        (s.connections, s.online_users, s.live_conversations),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn http_style_commands_run_without_a_connection() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    w.engine
        .execute_as(
            &uid("bob"),
            Command::Join {
                room: room.id.into(),
                create: false,
            },
        )
        .await
        .expect("join");
    let reply = w
        .engine
        .execute_as(
            &uid("bob"),
            Command::Send {
                conversation: room.id,
                body: "from http".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
        )
        .await
        .expect("send");
    let Reply::Sent { message, .. } = reply else {
        panic!()
    };
    let got = alice.events();
    assert_eq!(got.last(), Some(&Event::Message { message }));
    let denied = w
        .engine
        .execute_as(
            &uid("eve"),
            Command::History {
                conversation: room.id,
                before: None,
                after: None,
                limit: None,
                thread: None,
            },
        )
        .await;
    assert_eq!(
        denied.map_err(|e| e.code()).err(),
        Some(ErrorCode::Forbidden)
    );
}

#[tokio::test]
async fn shutdown_closes_every_session_with_its_reason() {
    let w = World::new().await;
    let mut a = w.connect("alice").await;
    let mut b = w.connect("bob").await;
    w.engine.shutdown().await;
    assert_eq!(
        a.conn.recv().await,
        Some(Received::Closed(CloseReason::Shutdown))
    );
    assert_eq!(
        b.conn.recv().await,
        Some(Received::Closed(CloseReason::Shutdown))
    );
    assert_eq!(w.engine.stats().connections, 0);
}

#[tokio::test]
async fn sessions_opened_after_shutdown_are_refused() {
    let w = World::new().await;
    w.engine.shutdown().await;
    let (t, _conn) = MemoryTransport::new(8);
    let refused = w.engine.open_session(Identity::new(uid("late")), t).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::Unavailable)
    );
    assert_eq!(w.engine.stats().connections, 0);
}

#[tokio::test]
async fn an_embedder_can_disconnect_a_user_and_nobody_else() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut alice2 = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    w.befriend(&mut alice, &mut bob).await;
    alice2.events();
    bob.events();
    let closed = w
        .engine
        .disconnect_user(&uid("alice"), chat_core::ports::CloseReason::Kicked)
        .await;
    assert_eq!(closed, 2, "both of alice's sessions");
    for c in [&alice, &alice2] {
        assert!(c.session.is_closed());
        assert_eq!(
            c.conn.close_reason(),
            Some(chat_core::ports::CloseReason::Kicked)
        );
    }
    assert!(!bob.session.is_closed());
    assert!(
        bob.events().iter().any(|e| matches!(e,
            Event::Presence { presence } if presence.user == uid("alice") && !presence.online)),
        "alice's friend sees her go offline"
    );
    assert_eq!(w.engine.stats().connections, 1);
    // Nobody else is touched, and a user with no session is a no-op.
    assert_eq!(
        w.engine
            .disconnect_user(&uid("nobody"), chat_core::ports::CloseReason::Kicked)
            .await,
        0
    );
}
