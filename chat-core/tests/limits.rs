//! Limits that used to be hidden constants, and lists that page through everything
//! instead of stopping at one page.

mod common;

use chat_core::engine::{Command, Event, Reply};
use chat_core::model::Limits;
use common::{uid, World};

/// `list_friends`, `online_friends` and the presence announcement read every friend, a
/// page (`max_list_page`) at a time, not only the first page.
#[tokio::test]
async fn friends_are_read_past_the_first_page() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.max_list_page = 2;
        l
    })
    .await;
    let mut alice = w.connect("alice").await;
    let names = ["bob", "cat", "dan", "eve", "fay"];
    let mut friends = Vec::new();
    for name in names {
        let mut f = w.connect(name).await;
        w.befriend(&mut alice, &mut f).await;
        f.events();
        friends.push(f);
        w.advance(1000); // keep alice under the command rate limit
    }
    alice.events();
    match alice.run(Command::ListFriends {}).await {
        Reply::Friends { friends } => {
            let users: Vec<_> = friends.iter().map(|f| f.user.as_str().to_owned()).collect();
            assert_eq!(users, names, "every friend, in order, across three pages");
        }
        other => panic!("{other:?}"),
    }
    match alice.run(Command::OnlineFriends {}).await {
        Reply::Online { mut users } => {
            users.sort();
            assert_eq!(users, names.map(uid), "every online friend");
        }
        other => panic!("{other:?}"),
    }
    // Alice goes offline: every friend hears it, not only the first page of them.
    alice.session.close().await;
    for (f, name) in friends.iter_mut().zip(names) {
        let heard = f
            .events()
            .iter()
            .any(|e| matches!(e, Event::Presence { presence } if presence.user == uid("alice") && !presence.online));
        assert!(heard, "{name} hears that alice went offline");
    }
}

/// Above `status_member_limit` members, history carries no per-message status and no
/// member watermarks; at or below it, it does.
#[tokio::test]
async fn history_status_stops_at_the_configured_room_size() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.status_member_limit = 2;
        l
    })
    .await;
    let alice = w.connect("alice").await;
    let bob = w.connect("bob").await;
    let cat = w.connect("cat").await;
    let room = alice.create_room("small", false).await;
    bob.join(room.id).await;
    alice.send(room.id, "hi").await;
    let history = Command::History {
        conversation: room.id,
        before: None,
        after: None,
        limit: None,
        thread: None,
    };
    match alice.run(history.clone()).await {
        Reply::History {
            messages, members, ..
        } => {
            assert_eq!(members.len(), 2);
            assert!(messages[0].status.is_some(), "two members: status derived");
        }
        other => panic!("{other:?}"),
    }
    cat.join(room.id).await;
    match alice.run(history).await {
        Reply::History {
            messages, members, ..
        } => {
            assert!(members.is_empty(), "three members: above the limit");
            assert!(messages[0].status.is_none());
        }
        other => panic!("{other:?}"),
    }
}
