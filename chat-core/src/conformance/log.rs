//! The log: gap-free seqs, idempotent appends.

#[allow(clippy::wildcard_imports)]
use super::*;

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
