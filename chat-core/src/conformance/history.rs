//! History pages, edits and tombstones.

#[allow(clippy::wildcard_imports)]
use super::*;

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
