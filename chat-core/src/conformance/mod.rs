//! The store conformance suite: one `pub async fn` per store behaviour.
//!
//! Every store crate runs all of them in its tests with one line:
//!
//! ```text
//! chat_core::conformance_tests!(|| async { std::sync::Arc::new(MyStore::open_temp().await) as std::sync::Arc<dyn chat_core::ports::Store> });
//! ```
//!
//! Each behaviour gets a fresh, empty store from the factory and panics (failing the
//! test) on the first broken expectation, naming it.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::error::ErrorCode;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::model::{
    Conversation, ConversationKind, FriendAction, FriendState, HistoryPage, MessageKind, NewDirect,
    NewMessage, NewRoom, Role, Visibility, Watermarks,
};
use crate::ports::Store;

/// Every behaviour's name, in the order [`conformance_tests!`](crate::conformance_tests)
/// runs them.
pub const BEHAVIOURS: &[&str] = &[
    "seq_is_gap_free_under_concurrent_appends",
    "seq_is_per_conversation",
    "append_is_idempotent_by_sender_and_client_id",
    "concurrent_retries_append_once",
    "append_to_missing_conversation_is_not_found",
    "watermarks_only_move_forward",
    "unread_excludes_own_and_deleted",
    "history_pages_both_ways_with_tombstones",
    "edit_and_delete",
    "one_direct_conversation_per_pair",
    "rooms_and_members",
    "list_conversations_orders_by_activity",
    "friendship_transitions",
    "users_and_last_seen",
    "delete_conversation_removes_everything",
];

/// Runs every behaviour as its own `#[tokio::test]`, each with a fresh store from
/// `$factory`, an expression callable as `$factory().await -> Arc<dyn Store>`.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            seq_is_gap_free_under_concurrent_appends,
            seq_is_per_conversation,
            append_is_idempotent_by_sender_and_client_id,
            concurrent_retries_append_once,
            append_to_missing_conversation_is_not_found,
            watermarks_only_move_forward,
            unread_excludes_own_and_deleted,
            history_pages_both_ways_with_tombstones,
            edit_and_delete,
            one_direct_conversation_per_pair,
            rooms_and_members,
            list_conversations_orders_by_activity,
            friendship_transitions,
            users_and_last_seen,
            delete_conversation_removes_everything
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: ::std::sync::Arc<dyn $crate::ports::Store> = ($factory)().await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200 + secs, 0).unwrap_or_default()
        + Duration::milliseconds(secs % 7)
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("test user id {name:?}: {e}"))
}

fn cid() -> ConversationId {
    ConversationId(uuid::Uuid::new_v4())
}

async fn room(store: &dyn Store, name: &str, owner: &UserId) -> Conversation {
    store
        .create_room(NewRoom {
            id: cid(),
            name: name.to_owned(),
            visibility: Visibility::Public,
            created_by: owner.clone(),
            created_at: t(0),
        })
        .await
        .unwrap_or_else(|e| panic!("create_room {name}: {e}"))
}

async fn join(store: &dyn Store, conv: ConversationId, who: &UserId) {
    store
        .add_member(conv, who, Role::Member, t(1), 1_000_000)
        .await
        .unwrap_or_else(|e| panic!("add_member: {e}"));
}

fn new_msg(
    conv: ConversationId,
    sender: &UserId,
    body: &str,
    client_id: Option<&str>,
) -> NewMessage {
    NewMessage {
        id: MessageId(uuid::Uuid::new_v4()),
        conversation: conv,
        sender: sender.clone(),
        client_id: client_id.map(str::to_owned),
        kind: MessageKind::User,
        body: body.to_owned(),
        created_at: t(10),
    }
}

async fn send(store: &dyn Store, conv: ConversationId, sender: &UserId, body: &str) -> u64 {
    store
        .append(new_msg(conv, sender, body, None))
        .await
        .unwrap_or_else(|e| panic!("append: {e}"))
        .message
        .seq
}

/// 8 tasks × 500 appends to one conversation give exactly seqs 1..=4000, and the
/// conversation's last seq is 4000 (invariant 1).
pub async fn seq_is_gap_free_under_concurrent_appends(store: Arc<dyn Store>) {
    let alice = user("alice");
    let conv = room(&*store, "busy", &alice).await.id;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(500);
            for i in 0..500 {
                let body = format!("t{task} m{i}");
                let a = store
                    .append(new_msg(conv, &alice, &body, None))
                    .await
                    .unwrap_or_else(|e| panic!("append: {e}"));
                assert!(!a.duplicate, "a fresh append is not a duplicate");
                assert_eq!(a.message.body, body);
                seqs.push(a.message.seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap_or_else(|e| panic!("task: {e}"));
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's appends get increasing seqs"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=4000).collect::<Vec<u64>>(),
        "seqs are exactly 1..=4000"
    );
    let c = store
        .conversation(conv)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("conversation"));
    assert_eq!(c.last_seq, 4000);
    let last = store
        .history(conv, HistoryPage::Before(None), 1)
        .await
        .unwrap_or_default();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].seq, 4000);
}

/// Each conversation has its own log: concurrent appends to several conversations give
/// each one 1..=n.
pub async fn seq_is_per_conversation(store: Arc<dyn Store>) {
    let bob = user("bob");
    let mut convs = Vec::new();
    for i in 0..10 {
        convs.push(room(&*store, &format!("room {i}"), &bob).await.id);
    }
    let mut tasks = Vec::new();
    for (i, conv) in convs.iter().copied().enumerate() {
        let store = store.clone();
        let bob = bob.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..(20 + i) {
                send(&*store, conv, &bob, &format!("{j}")).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("task: {e}"));
    }
    for (i, conv) in convs.iter().enumerate() {
        let page = store
            .history(*conv, HistoryPage::After(0), 100)
            .await
            .unwrap_or_default();
        let seqs: Vec<u64> = page.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=(20 + i as u64)).collect::<Vec<_>>(),
            "conversation {i}"
        );
    }
}

/// (sender, client id) appends once: a retry returns the original message, marked
/// duplicate, and takes no seq (invariant 3). Another sender may use the same client id.
pub async fn append_is_idempotent_by_sender_and_client_id(store: Arc<dyn Store>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let conv = room(&*store, "idem", &alice).await.id;
    join(&*store, conv, &bob).await;
    let first = store
        .append(new_msg(conv, &alice, "hello", Some("c-1")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!first.duplicate);
    assert_eq!(first.message.client_id.as_deref(), Some("c-1"));
    let retry = store
        .append(new_msg(conv, &alice, "hello (retried)", Some("c-1")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(retry.duplicate, "the retry is reported as a duplicate");
    assert_eq!(
        retry.message, first.message,
        "the retry returns the original message"
    );
    let other = store
        .append(new_msg(conv, &bob, "hi", Some("c-1")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !other.duplicate,
        "the same client id from another sender is a new message"
    );
    assert_eq!(other.message.seq, 2);
    let plain = send(&*store, conv, &alice, "no client id").await;
    assert_eq!(plain, 3, "the retry took no seq");
    let c = store
        .conversation(conv)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("conversation"));
    assert_eq!(c.last_seq, 3);
}

/// 16 concurrent sends with the same (sender, client id) create exactly one message.
pub async fn concurrent_retries_append_once(store: Arc<dyn Store>) {
    let alice = user("alice");
    let conv = room(&*store, "retries", &alice).await.id;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(new_msg(conv, &alice, "once", Some("same")))
                .await
                .unwrap_or_else(|e| panic!("append: {e}"))
        }));
    }
    let mut ids = BTreeSet::new();
    let mut fresh = 0;
    for task in tasks {
        let a = task.await.unwrap_or_else(|e| panic!("task: {e}"));
        ids.insert(a.message.id);
        if !a.duplicate {
            fresh += 1;
        }
    }
    assert_eq!(ids.len(), 1, "every retry sees the same message");
    assert_eq!(fresh, 1, "exactly one append is not a duplicate");
    let all = store
        .history(conv, HistoryPage::After(0), 100)
        .await
        .unwrap_or_default();
    assert_eq!(all.len(), 1);
}

/// Appending to a conversation that does not exist is `not_found` and writes nothing.
pub async fn append_to_missing_conversation_is_not_found(store: Arc<dyn Store>) {
    let alice = user("alice");
    let err = store
        .append(new_msg(cid(), &alice, "void", Some("x")))
        .await;
    assert_eq!(
        err.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::NotFound)
    );
    let missing = store.history(cid(), HistoryPage::Before(None), 10).await;
    assert_eq!(
        missing.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::NotFound)
    );
    // The client id was not consumed by the failed append.
    let conv = room(&*store, "after", &alice).await.id;
    let a = store
        .append(new_msg(conv, &alice, "now", Some("x")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!a.duplicate);
}

/// Watermarks only move forward, read implies delivered, both are clamped to the last
/// seq, and a non-member has none (invariant 4).
pub async fn watermarks_only_move_forward(store: Arc<dyn Store>) {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let conv = room(&*store, "marks", &alice).await.id;
    join(&*store, conv, &bob).await;
    for i in 0..10 {
        send(&*store, conv, &alice, &format!("{i}")).await;
    }
    let w = |d, r| Watermarks {
        delivered_seq: d,
        read_seq: r,
    };
    let adv = |d: Option<u64>, r: Option<u64>| {
        let store = store.clone();
        let bob = bob.clone();
        async move {
            store
                .advance_watermarks(conv, &bob, d, r)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(adv(Some(5), None).await, w(5, 0));
    assert_eq!(
        adv(Some(3), None).await,
        w(5, 0),
        "delivered does not move back"
    );
    assert_eq!(adv(None, Some(7)).await, w(7, 7), "read implies delivered");
    assert_eq!(adv(Some(6), Some(2)).await, w(7, 7), "neither moves back");
    assert_eq!(
        adv(Some(99), None).await,
        w(10, 7),
        "clamped to the last seq"
    );
    assert_eq!(adv(None, Some(99)).await, w(10, 10));
    let m = store
        .member(conv, &bob)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("member"));
    assert_eq!(m.watermarks, w(10, 10), "the watermarks were stored");
    let err = store.advance_watermarks(conv, &carol, Some(1), None).await;
    assert_eq!(
        err.map_err(|e| e.code()),
        Err(ErrorCode::NotFound),
        "a non-member has no watermarks"
    );
}

/// Unread counts messages after my read watermark, sent by others, not deleted; the
/// total adds up every conversation.
pub async fn unread_excludes_own_and_deleted(store: Arc<dyn Store>) {
    let (alice, bob) = (user("alice"), user("bob"));
    let conv = room(&*store, "unread", &alice).await.id;
    join(&*store, conv, &bob).await;
    let b1 = send(&*store, conv, &bob, "b1").await;
    send(&*store, conv, &alice, "a1").await;
    let b2 = send(&*store, conv, &bob, "b2").await;
    send(&*store, conv, &bob, "b3").await;
    send(&*store, conv, &alice, "a2").await;
    store
        .delete_message(conv, b2, t(20))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let unread = |u: UserId| {
        let store = store.clone();
        async move {
            store
                .unread(conv, &u)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(
        unread(alice.clone()).await,
        2,
        "b1 and b3: own and deleted excluded"
    );
    assert_eq!(unread(bob.clone()).await, 2, "a1 and a2");
    store
        .advance_watermarks(conv, &alice, None, Some(b1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unread(alice.clone()).await, 1, "b1 is read");

    let direct = store
        .open_direct(NewDirect {
            id: cid(),
            user: bob.clone(),
            peer: alice.clone(),
            created_at: t(2),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
        .id;
    for i in 0..4 {
        send(&*store, direct, &bob, &format!("d{i}")).await;
    }
    assert_eq!(store.unread_total(&alice).await.unwrap_or_default(), 5);
    assert_eq!(store.unread_total(&bob).await.unwrap_or_default(), 2);
    assert_eq!(store.unread_total(&user("nobody")).await.unwrap_or(99), 0);
    let err = store.unread(conv, &user("nobody")).await;
    assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::NotFound));
}

/// History pages go both ways, ascending within a page, with limits, tombstones in
/// place and empty pages at the ends.
pub async fn history_pages_both_ways_with_tombstones(store: Arc<dyn Store>) {
    let alice = user("alice");
    let conv = room(&*store, "history", &alice).await.id;
    for i in 1..=25 {
        send(&*store, conv, &alice, &format!("m{i}")).await;
    }
    store
        .delete_message(conv, 10, t(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seqs = |page: Vec<crate::model::Message>| page.iter().map(|m| m.seq).collect::<Vec<_>>();
    let page = |p: HistoryPage, limit: u32| {
        let store = store.clone();
        async move {
            store
                .history(conv, p, limit)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(
        seqs(page(HistoryPage::Before(None), 10).await),
        (16..=25).collect::<Vec<_>>()
    );
    let older = page(HistoryPage::Before(Some(16)), 10).await;
    assert_eq!(seqs(older.clone()), (6..=15).collect::<Vec<_>>());
    let tomb = older
        .iter()
        .find(|m| m.seq == 10)
        .unwrap_or_else(|| panic!("tombstone in place"));
    assert!(
        tomb.is_deleted() && tomb.body.is_empty(),
        "a deleted message is a tombstone"
    );
    assert_eq!(older[0].body, "m6");
    assert_eq!(
        seqs(page(HistoryPage::Before(Some(6)), 10).await),
        (1..=5).collect::<Vec<_>>()
    );
    assert!(page(HistoryPage::Before(Some(1)), 10).await.is_empty());
    assert_eq!(seqs(page(HistoryPage::After(0), 3).await), vec![1, 2, 3]);
    assert_eq!(
        seqs(page(HistoryPage::After(20), 10).await),
        (21..=25).collect::<Vec<_>>()
    );
    assert!(page(HistoryPage::After(25), 10).await.is_empty());
    assert!(page(HistoryPage::After(1000), 10).await.is_empty());
    assert_eq!(
        seqs(page(HistoryPage::Before(Some(1000)), 2).await),
        vec![24, 25]
    );
    let one = store
        .message(conv, 7)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("message 7"));
    assert_eq!(
        (one.seq, one.body.as_str(), one.created_at),
        (7, "m7", t(10))
    );
    assert!(store.message(conv, 26).await.unwrap_or_default().is_none());
    assert!(store.message(conv, 0).await.unwrap_or_default().is_none());
}

/// Edits replace the body and stamp `edited_at`; a tombstone cannot be edited;
/// deleting twice is harmless; missing messages are `not_found`.
pub async fn edit_and_delete(store: Arc<dyn Store>) {
    let alice = user("alice");
    let conv = room(&*store, "edits", &alice).await.id;
    let seq = send(&*store, conv, &alice, "typo").await;
    let edited = store
        .edit_message(conv, seq, "fixed", t(40))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (edited.body.as_str(), edited.edited_at),
        ("fixed", Some(t(40)))
    );
    let stored = store
        .message(conv, seq)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("message"));
    assert_eq!(stored, edited, "the edit was stored");
    let deleted = store
        .delete_message(conv, seq, t(41))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (deleted.body.as_str(), deleted.deleted_at),
        ("", Some(t(41)))
    );
    let again = store
        .delete_message(conv, seq, t(42))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again.deleted_at,
        Some(t(41)),
        "deleting a tombstone changes nothing"
    );
    let err = store.edit_message(conv, seq, "zombie", t(43)).await;
    assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::Conflict));
    let err = store.edit_message(conv, 99, "nothing", t(43)).await;
    assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::NotFound));
    let err = store.delete_message(conv, 99, t(43)).await;
    assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::NotFound));
    let next = send(&*store, conv, &alice, "after").await;
    assert_eq!(next, seq + 1, "a deleted seq is never reused");
}

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

/// Every friendship transition, legal and illegal, applied atomically by the store.
pub async fn friendship_transitions(store: Arc<dyn Store>) {
    let (ann, ben, cid_) = (user("ann"), user("ben"), user("cid"));
    let apply = |actor: &UserId, other: &UserId, action| {
        let store = store.clone();
        let (actor, other) = (actor.clone(), other.clone());
        async move { store.apply_friendship(&actor, &other, action, t(50)).await }
    };
    let code =
        |r: crate::Result<crate::model::Friendship>| r.map(|f| f.state).map_err(|e| e.code());
    use FriendAction::*;
    // Nothing yet: only request and block are legal.
    for action in [Accept, Decline, Cancel, Remove, Unblock] {
        assert_eq!(
            code(apply(&ann, &ben, action).await),
            Err(ErrorCode::NotFound),
            "{action:?} from nothing"
        );
    }
    assert_eq!(
        store.friendship(&ann, &ben).await.unwrap_or_default(),
        None,
        "illegal actions leave no record"
    );
    assert_eq!(
        code(apply(&ann, &ben, Request).await),
        Ok(FriendState::Pending { from: ann.clone() })
    );
    assert_eq!(
        code(apply(&ann, &ben, Request).await),
        Err(ErrorCode::Conflict),
        "a second request"
    );
    assert_eq!(
        code(apply(&ann, &ben, Accept).await),
        Err(ErrorCode::NotFound),
        "accepting one's own request"
    );
    assert_eq!(
        code(apply(&ben, &ann, Cancel).await),
        Err(ErrorCode::NotFound),
        "cancelling someone else's request"
    );
    assert_eq!(code(apply(&ann, &ben, Cancel).await), Ok(FriendState::None));
    assert_eq!(
        store.friendship(&ann, &ben).await.unwrap_or_default(),
        None,
        "an empty record is dropped"
    );
    apply(&ann, &ben, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(apply(&ben, &ann, Decline).await),
        Ok(FriendState::None)
    );
    apply(&ann, &ben, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(apply(&ben, &ann, Accept).await),
        Ok(FriendState::Accepted)
    );
    let f = store
        .friendship(&ben, &ann)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("record"));
    assert!(f.is_friends() && f.a == ann && f.b == ben && f.updated_at == t(50));
    assert_eq!(
        code(apply(&ben, &ann, Request).await),
        Err(ErrorCode::Conflict),
        "already friends"
    );
    assert_eq!(code(apply(&ben, &ann, Remove).await), Ok(FriendState::None));
    assert_eq!(
        code(apply(&ben, &ann, Remove).await),
        Err(ErrorCode::NotFound)
    );
    // Crossed requests become a friendship.
    apply(&ann, &cid_, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(apply(&cid_, &ann, Request).await),
        Ok(FriendState::Accepted)
    );
    // Blocking ends the friendship and stops requests both ways until lifted.
    let blocked = apply(&cid_, &ann, Block)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(blocked.blocks(&cid_) && !blocked.blocks(&ann) && !blocked.is_friends());
    assert_eq!(
        code(apply(&ann, &cid_, Request).await),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(apply(&cid_, &ann, Request).await),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(apply(&ann, &cid_, Unblock).await),
        Err(ErrorCode::NotFound),
        "only the blocker unblocks"
    );
    let both = apply(&ann, &cid_, Block)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(both.a_blocks_b && both.b_blocks_a);
    apply(&cid_, &ann, Unblock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let still = store
        .friendship(&ann, &cid_)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("record"));
    assert!(
        still.blocks(&ann) && !still.blocks(&cid_),
        "ann's block remains"
    );
    apply(&ann, &cid_, Unblock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.friendship(&ann, &cid_).await.unwrap_or_default(),
        None
    );
    assert_eq!(
        code(apply(&ann, &ann, Request).await),
        Err(ErrorCode::Invalid),
        "no friendship with oneself"
    );
    // Listing.
    apply(&ann, &ben, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    apply(&cid_, &ann, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let list = store.friendships(&ann, None, 10).await.unwrap_or_default();
    let others: Vec<&UserId> = list.iter().map(|f| f.other(&ann)).collect();
    assert_eq!(others, vec![&ben, &cid_], "ordered by the other user");
    assert_eq!(
        store
            .friendships(&ann, None, 1)
            .await
            .unwrap_or_default()
            .len(),
        1
    );
    assert_eq!(
        store
            .friendships(&ben, None, 10)
            .await
            .unwrap_or_default()
            .len(),
        1
    );
    // Paging: only records whose other user sorts after `after`, from either side.
    let rest = store
        .friendships(&ann, Some(&ben), 10)
        .await
        .unwrap_or_default();
    let rest: Vec<&UserId> = rest.iter().map(|f| f.other(&ann)).collect();
    assert_eq!(rest, vec![&cid_], "the page after ben");
    assert!(
        store
            .friendships(&cid_, Some(&ann), 10)
            .await
            .unwrap_or_default()
            .is_empty(),
        "nothing after the last"
    );
}

/// Profiles keep a display name and the last-seen time.
pub async fn users_and_last_seen(store: Arc<dyn Store>) {
    let alice = user("alice");
    assert_eq!(store.user(&alice).await.unwrap_or_default(), None);
    store
        .upsert_user(&alice, Some("Alice"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .upsert_user(&alice, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p = store
        .user(&alice)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("profile"));
    assert_eq!(
        (p.display_name.as_deref(), p.last_seen),
        (Some("Alice"), None),
        "no name keeps the old one"
    );
    store
        .set_last_seen(&alice, t(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .upsert_user(&alice, Some("Alice B."))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p = store
        .user(&alice)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("profile"));
    assert_eq!(
        (p.display_name.as_deref(), p.last_seen),
        (Some("Alice B."), Some(t(60)))
    );
    let bob = user("bob");
    store
        .set_last_seen(&bob, t(61))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .user(&bob)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.last_seen),
        Some(t(61))
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
