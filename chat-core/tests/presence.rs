//! Presence and typing: volatile state, told once to those who may know, ended by time, by
//! a message or by the last connection closing.

mod common;

use chat_core::engine::{Command, Event, Reply};
use chat_core::model::{Limits, Presence};
use chat_core::ports::Store;
use common::{uid, World};

#[tokio::test]
async fn typing_is_a_lease_told_once_and_ended_by_time_or_a_message() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.typing_ttl_ms = 5000;
        l
    })
    .await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice.events();
    let typing = |on| Command::Typing {
        conversation: room.id,
        typing: on,
    };
    let ev = |on| Event::Typing {
        conversation: room.id,
        user: uid("bob"),
        typing: on,
    };
    bob.run(typing(true)).await;
    assert_eq!(alice.events(), vec![ev(true)]);
    w.advance(3000);
    bob.run(typing(true)).await;
    alice.assert_quiet();
    w.advance(3000);
    w.engine.tick().await;
    alice.assert_quiet();
    w.advance(2500);
    w.engine.tick().await;
    assert_eq!(alice.events(), vec![ev(false)], "the renewed lease ran out");
    bob.assert_quiet();

    bob.run(typing(true)).await;
    assert_eq!(alice.events(), vec![ev(true)]);
    let m = bob.send(room.id, "done typing").await;
    assert_eq!(
        alice.events(),
        vec![Event::Message { message: m }, ev(false)],
        "the message ends typing, and the others are told at once"
    );
    w.advance(10_000);
    w.engine.tick().await;
    alice.assert_quiet();
    bob.run(typing(true)).await;
    bob.run(typing(false)).await;
    assert_eq!(alice.events(), vec![ev(true), ev(false)]);
    bob.run(typing(false)).await;
    alice.assert_quiet();
}

#[tokio::test]
async fn presence_follows_the_last_connection_and_reaches_friends_and_co_members() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let mut carol = w.connect("carol").await;
    let mut dave = w.connect("dave").await;
    w.befriend(&mut alice, &mut bob).await;
    let room = carol.create_room("general", false).await;
    alice.join(room.id).await;
    carol.events();
    alice.events();
    bob.events();

    match bob.run(Command::OnlineFriends {}).await {
        Reply::Online { users } => assert_eq!(users, vec![uid("alice")]),
        other => panic!("{other:?}"),
    }
    let phone = w.connect("alice").await;
    bob.assert_quiet();
    carol.assert_quiet();
    alice.session.close().await;
    bob.assert_quiet();
    carol.assert_quiet();
    w.advance(60_000);
    phone.session.close().await;
    let offline = Event::Presence {
        presence: Presence {
            user: uid("alice"),
            online: false,
            last_seen: Some(chat_core::ports::Clock::now(&*w.clock)),
        },
    };
    assert_eq!(bob.events(), vec![offline.clone()], "a friend is told");
    assert_eq!(carol.events(), vec![offline], "a co-member is told");
    dave.assert_quiet();
    let profile = w
        .store
        .user(&uid("alice"))
        .await
        .expect("store")
        .expect("profile");
    assert_eq!(
        profile.last_seen,
        Some(chat_core::ports::Clock::now(&*w.clock))
    );
    match bob.run(Command::OnlineFriends {}).await {
        Reply::Online { users } => assert!(users.is_empty()),
        other => panic!("{other:?}"),
    }
    let _back = w.connect("alice").await;
    let online = Event::Presence {
        presence: Presence {
            user: uid("alice"),
            online: true,
            last_seen: None,
        },
    };
    assert_eq!(bob.events(), vec![online.clone()]);
    assert_eq!(carol.events(), vec![online]);
    dave.assert_quiet();
}

#[tokio::test]
async fn a_user_whose_node_died_goes_offline_when_the_lease_runs_out() {
    // Alice is on node a, her friend bob on node b. Node a dies: it never says alice
    // left and never renews her lease. Node b tells bob once the lease has run out.
    let w = World::new().await;
    let b = World::node(&w.store, &w.bus, &w.clock, Limits::default()).await;
    let mut bob = w.connect_to(&b, "bob", 1024).await;
    let mut alice = w.connect("alice").await;
    w.befriend(&mut alice, &mut bob).await;
    b.tick().await; // renews bob's lease; alice's is fresh
    assert!(bob.events().is_empty(), "alice's lease is still fresh");
    std::mem::forget(alice); // node a dies: alice's session never closes
    w.advance(31_000); // past the 30 s lease; node a never renews
    b.tick().await;
    assert!(
        bob.events().is_empty(),
        "not yet: a node that drops a lease announces it itself a moment later"
    );
    w.advance(11_000);
    b.tick().await;
    let events = bob.events();
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        Event::Presence { presence } => {
            assert_eq!(presence.user, uid("alice"));
            assert!(!presence.online);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.stats().bus.presence_expired, 1);
    w.advance(11_000);
    b.tick().await;
    assert!(bob.events().is_empty(), "told once");
}
