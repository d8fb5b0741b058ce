//! Direct conversations, rooms, members and the conversation list.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Opening a direct conversation for (x, y) and (y, x), even concurrently, yields one
/// conversation with both as members; a pair of one user is `invalid`.
pub async fn one_direct_conversation_per_pair(store: Arc<dyn Store>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let (first, created) = store
        .open_direct(NewDirect {
            id: cid(),
            user: bob.clone(),
            peer: alice.clone(),
            created_at: t(1),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(created);
    assert_eq!(
        first.kind,
        ConversationKind::Direct {
            a: alice.clone(),
            b: bob.clone()
        },
        "kept in sorted order"
    );
    let (second, created) = store
        .open_direct(NewDirect {
            id: cid(),
            user: alice.clone(),
            peer: bob.clone(),
            created_at: t(2),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!created);
    assert_eq!(second, first);
    for u in [&alice, &bob] {
        let m = store
            .member(first.id, u)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("member {u}"));
        assert_eq!(m.role, Role::Member);
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let (x, y) = if i % 2 == 0 {
            (user("carol"), user("dave"))
        } else {
            (user("dave"), user("carol"))
        };
        tasks.push(tokio::spawn(async move {
            store
                .open_direct(NewDirect {
                    id: cid(),
                    user: x,
                    peer: y,
                    created_at: t(3),
                })
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }));
    }
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let (c, new) = task.await.unwrap_or_else(|e| panic!("{e}"));
        ids.insert(c.id);
        created += usize::from(new);
    }
    assert_eq!(
        (ids.len(), created),
        (1, 1),
        "one conversation for the pair"
    );
    let err = store
        .open_direct(NewDirect {
            id: cid(),
            user: alice.clone(),
            peer: alice.clone(),
            created_at: t(4),
        })
        .await;
    assert_eq!(
        err.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::Invalid)
    );
}

/// Rooms have unique names; members are added once, paged in id order, capped, and
/// removed; a user's conversations are listed.
pub async fn rooms_and_members(store: Arc<dyn Store>) {
    let owner = user("olga");
    let r = room(&*store, "general", &owner).await;
    assert_eq!(
        r.kind,
        ConversationKind::Room {
            name: "general".into(),
            visibility: Visibility::Public
        }
    );
    assert_eq!(
        (r.last_seq, r.created_by.clone(), r.created_at),
        (0, owner.clone(), t(0))
    );
    assert_eq!(
        store.conversation(r.id).await.unwrap_or_default(),
        Some(r.clone())
    );
    assert_eq!(
        store.room_by_name("general").await.unwrap_or_default(),
        Some(r.clone())
    );
    assert_eq!(store.room_by_name("nope").await.unwrap_or_default(), None);
    assert_eq!(store.conversation(cid()).await.unwrap_or_default(), None);
    let dup = store
        .create_room(NewRoom {
            id: cid(),
            name: "general".into(),
            visibility: Visibility::Private,
            created_by: user("x"),
            created_at: t(1),
        })
        .await;
    assert_eq!(
        dup.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::Conflict)
    );
    let private = store
        .create_room(NewRoom {
            id: cid(),
            name: "secret".into(),
            visibility: Visibility::Private,
            created_by: owner.clone(),
            created_at: t(1),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        private.kind,
        ConversationKind::Room {
            name: "secret".into(),
            visibility: Visibility::Private
        }
    );

    let m = store
        .member(r.id, &owner)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("owner"));
    assert_eq!((m.role, m.watermarks), (Role::Owner, Watermarks::default()));
    for name in ["eve", "bob", "dan", "cat"] {
        let (m, added) = store
            .add_member(r.id, &user(name), Role::Member, t(5), 5)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(added);
        assert_eq!((m.role, m.joined_at), (Role::Member, t(5)));
    }
    let (_, added) = store
        .add_member(r.id, &user("bob"), Role::Owner, t(6), 5)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!added, "adding a member twice changes nothing");
    let bob = store
        .member(r.id, &user("bob"))
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("bob"));
    assert_eq!(bob.role, Role::Member);
    let full = store
        .add_member(r.id, &user("zed"), Role::Member, t(6), 5)
        .await;
    assert_eq!(
        full.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::Conflict),
        "the room is full"
    );
    let names = |ms: Vec<crate::model::Member>| {
        ms.into_iter()
            .map(|m| m.user.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.members(r.id, None, 3).await.unwrap_or_default()),
        ["bob", "cat", "dan"]
    );
    assert_eq!(
        names(
            store
                .members(r.id, Some(&user("dan")), 3)
                .await
                .unwrap_or_default()
        ),
        ["eve", "olga"]
    );
    assert!(store
        .remove_member(r.id, &user("cat"))
        .await
        .unwrap_or(false));
    assert!(
        !store
            .remove_member(r.id, &user("cat"))
            .await
            .unwrap_or(true),
        "removing twice is false"
    );
    assert!(store
        .member(r.id, &user("cat"))
        .await
        .unwrap_or_default()
        .is_none());
    let err = store
        .add_member(cid(), &user("bob"), Role::Member, t(7), 5)
        .await;
    assert_eq!(
        err.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::NotFound)
    );
    let of_owner = store
        .conversations_of(&owner, 1_000)
        .await
        .unwrap_or_default();
    let mut expected = vec![r.id, private.id];
    expected.sort();
    assert_eq!(of_owner, expected, "ordered by id");
    let first = store.conversations_of(&owner, 1).await.unwrap_or_default();
    assert_eq!(first, expected[..1], "at most `limit`, from the first id");
    assert!(store
        .conversations_of(&user("cat"), 1_000)
        .await
        .unwrap_or_default()
        .is_empty());
}

/// The conversation list puts the most recently active first, with my role, watermarks,
/// the last message and my unread count.
pub async fn list_conversations_orders_by_activity(store: Arc<dyn Store>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let quiet = room(&*store, "quiet", &alice).await.id;
    let busy = room(&*store, "busy", &bob).await.id;
    join(&*store, busy, &alice).await;
    let mut m = new_msg(busy, &bob, "latest", None);
    m.created_at = t(100);
    store.append(m).await.unwrap_or_else(|e| panic!("{e}"));
    let list = store
        .list_conversations(&alice, 10)
        .await
        .unwrap_or_default();
    let ids: Vec<_> = list.iter().map(|s| s.conversation.id).collect();
    assert_eq!(ids, vec![busy, quiet], "most recently active first");
    assert_eq!(list[0].unread, 1);
    assert_eq!(list[0].role, Role::Member);
    assert_eq!(
        list[0].last_message.as_ref().map(|m| m.body.as_str()),
        Some("latest")
    );
    assert_eq!(list[0].conversation.last_seq, 1);
    assert_eq!(
        (list[1].unread, list[1].role, list[1].last_message.is_none()),
        (0, Role::Owner, true)
    );
    assert_eq!(
        store
            .list_conversations(&alice, 1)
            .await
            .unwrap_or_default()
            .len(),
        1,
        "limit holds"
    );
    let mut later = new_msg(quiet, &alice, "now quiet is active", None);
    later.created_at = t(200);
    store.append(later).await.unwrap_or_else(|e| panic!("{e}"));
    store
        .advance_watermarks(busy, &alice, None, Some(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let list = store
        .list_conversations(&alice, 10)
        .await
        .unwrap_or_default();
    assert_eq!(
        list.iter().map(|s| s.conversation.id).collect::<Vec<_>>(),
        vec![quiet, busy]
    );
    assert_eq!((list[0].unread, list[1].unread), (0, 0));
    assert_eq!(
        list[1].watermarks,
        Watermarks {
            delivered_seq: 1,
            read_seq: 1
        }
    );
}

/// Deleting a conversation removes its members and messages, and frees its name.
pub async fn delete_conversation_removes_everything(store: Arc<dyn Store>) {
    let alice = user("alice");
    let r = room(&*store, "doomed", &alice).await.id;
    store
        .append(new_msg(r, &alice, "bye", Some("k")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .delete_conversation(r)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.conversation(r).await.unwrap_or_default(), None);
    assert!(store
        .conversations_of(&alice, 1_000)
        .await
        .unwrap_or_default()
        .is_empty());
    assert_eq!(store.unread_total(&alice).await.unwrap_or(9), 0);
    let err = store.delete_conversation(r).await;
    assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::NotFound));
    let again = room(&*store, "doomed", &alice).await.id;
    assert_ne!(again, r, "the name is free again");
}

/// Concurrent joins of a room near its cap: exactly enough are added to fill it, the
/// rest are `conflict`, and a member joining again at the cap is still `added == false`.
pub async fn concurrent_joins_respect_the_member_cap(store: Arc<dyn Store>) {
    let room = store
        .create_room(NewRoom {
            id: cid(),
            name: "crowded".into(),
            visibility: Visibility::Public,
            created_by: user("owner"),
            created_at: t(1),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    const CAP: u32 = 10;
    let joins = (0..40).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .add_member(room.id, &user(&format!("u{i:02}")), Role::Member, t(2), CAP)
                .await
        })
    });
    let (mut added, mut refused) = (0, 0);
    for join in joins.collect::<Vec<_>>() {
        match join.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok((_, true)) => added += 1,
            Ok((m, false)) => panic!("{} was not a member yet", m.user),
            Err(e) if e.code() == ErrorCode::Conflict => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        (added, refused),
        (CAP - 1, 40 - (CAP - 1)),
        "the owner is the first"
    );
    let members = store
        .members(room.id, None, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(members.len(), CAP as usize);
    let again = members
        .iter()
        .find(|m| m.role == Role::Member)
        .unwrap_or_else(|| panic!("a member"));
    let (m, added) = store
        .add_member(room.id, &again.user, Role::Member, t(3), CAP)
        .await
        .unwrap_or_else(|e| panic!("a member joining a full room again: {e}"));
    assert!(!added);
    assert_eq!(m.user, again.user);
}
