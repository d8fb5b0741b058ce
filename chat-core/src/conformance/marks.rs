//! Watermarks and unread counts.

#[allow(clippy::wildcard_imports)]
use super::*;

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
    // A deleted message of my own is neither unread for me nor for anyone else, and a
    // repeated append (same client id) adds nothing.
    let a3 = send(&*store, conv, &alice, "a3").await;
    store
        .delete_message(conv, a3, t(21))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..2 {
        store
            .append(new_msg(conv, &bob, "b4", Some("b4-once")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(unread(alice.clone()).await, 2, "b3 and b4 once");
    assert_eq!(unread(bob.clone()).await, 2, "a1 and a2; a3 is deleted");

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
    assert_eq!(store.unread_total(&alice).await.unwrap_or_default(), 6);
    // The conversation list counts the same way.
    let mut listed: Vec<(ConversationId, u64)> = store
        .list_conversations(&alice, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|c| (c.conversation.id, c.unread))
        .collect();
    listed.sort();
    let mut want = vec![(conv, 2), (direct, 4)];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(store.unread_total(&bob).await.unwrap_or_default(), 2);
    assert_eq!(store.unread_total(&user("nobody")).await.unwrap_or(99), 0);
    let err = store.unread(conv, &user("nobody")).await;
    assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::NotFound));
}
