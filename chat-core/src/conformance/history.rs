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

/// Replies and attachments are stored with the message; a thread reads its root and
/// every reply to any message of it, paged both ways; the root's `reply_count` follows
/// appends and deletes; a tombstone keeps its place in the thread but loses its
/// attachments; a retried reply counts once.
pub async fn threads_reply_counts_and_attachments(store: Arc<dyn Store>) {
    let s = &*store;
    let alice = user("alice");
    let c = room(s, "threads", &alice).await.id;
    let other = room(s, "elsewhere", &alice).await.id;
    join(s, c, &alice).await;
    join(s, other, &alice).await;
    let reply = |to: u64, thread: u64, body: &str, client: Option<&str>| {
        let mut m = new_msg(c, &alice, body, client);
        m.reply_to = Some(to);
        m.thread = Some(thread);
        m
    };
    let photo = Attachment {
        url: "https://files.example/a/photo.png".into(),
        mime_type: "image/png".into(),
        size: 123_456,
        name: "photo.png".into(),
    };
    let mut root = new_msg(c, &alice, "root", None);
    root.attachments = vec![photo.clone()];
    let r = s.append(root).await.expect("append the root").message;
    assert_eq!(r.seq, 1, "the root's seq");
    assert_eq!(
        r.attachments,
        vec![photo.clone()],
        "append returns the attachments"
    );
    send(s, c, &alice, "elsewhere in the log").await; // 2
    let a = s.append(reply(1, 1, "first reply", Some("re-1"))).await;
    let a = a.expect("append a reply").message;
    assert_eq!(
        (a.seq, a.reply_to, a.thread),
        (3, Some(1), Some(1)),
        "a reply"
    );
    send(s, c, &alice, "more of the log").await; // 4
    s.append(reply(3, 1, "a reply to the reply", None))
        .await
        .expect("append a reply to a reply"); // 5
    let again = s
        .append(reply(1, 1, "first reply", Some("re-1")))
        .await
        .expect("retry a reply");
    assert!(again.duplicate, "a retried reply is a duplicate");
    s.append(reply(5, 1, "third", None)).await.expect("append"); // 6
    send(s, other, &alice, "another conversation").await;

    let root = s.message(c, 1).await.expect("read the root").expect("root");
    assert_eq!(root.reply_count, 3, "three replies, the retry counted once");
    assert_eq!(root.attachments, vec![photo], "attachments survive a read");
    assert_eq!(root.reply_to, None, "a root replies to nothing");
    let fifth = s.message(c, 5).await.expect("read").expect("message 5");
    assert_eq!(
        (fifth.reply_to, fifth.thread),
        (Some(3), Some(1)),
        "read back"
    );

    let seqs = |v: Vec<Message>| v.into_iter().map(|m| m.seq).collect::<Vec<_>>();
    let all = s.thread(c, 1, HistoryPage::Before(None), 50).await;
    assert_eq!(
        seqs(all.expect("thread")),
        vec![1, 3, 5, 6],
        "the whole thread"
    );
    let newest = s.thread(c, 1, HistoryPage::Before(None), 2).await;
    assert_eq!(seqs(newest.expect("thread")), vec![5, 6], "the newest two");
    let older = s.thread(c, 1, HistoryPage::Before(Some(5)), 2).await;
    assert_eq!(
        seqs(older.expect("thread")),
        vec![1, 3],
        "the page before 5"
    );
    let after = s.thread(c, 1, HistoryPage::After(1), 2).await;
    assert_eq!(seqs(after.expect("thread")), vec![3, 5], "the page after 1");
    let none = s.thread(c, 2, HistoryPage::Before(None), 50).await;
    assert_eq!(
        seqs(none.expect("thread")),
        vec![2],
        "a message without replies"
    );
    let missing = s.thread(cid(), 1, HistoryPage::Before(None), 50).await;
    assert_eq!(
        missing.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::NotFound),
        "a missing conversation"
    );

    let gone = s.delete_message(c, 3, t(20)).await.expect("delete a reply");
    assert!(
        gone.attachments.is_empty() && gone.body.is_empty(),
        "a tombstone"
    );
    assert_eq!(gone.thread, Some(1), "a tombstone stays in its thread");
    s.delete_message(c, 3, t(21))
        .await
        .expect("delete it again");
    let root = s.message(c, 1).await.expect("read").expect("root");
    assert_eq!(
        root.reply_count, 2,
        "a deleted reply is no longer counted, once"
    );
    let all = s.thread(c, 1, HistoryPage::Before(None), 50).await;
    assert_eq!(
        seqs(all.expect("thread")),
        vec![1, 3, 5, 6],
        "tombstones in place"
    );
    let page = s.history(c, HistoryPage::Before(None), 50).await;
    let page = page.expect("history");
    assert_eq!(
        page.len(),
        6,
        "history holds every message of the conversation"
    );
    assert_eq!(page[0].reply_count, 2, "history carries the count");
    assert_eq!(page[5].thread, Some(1), "history carries the thread");

    let mut pic = new_msg(c, &alice, "", None);
    pic.attachments = vec![Attachment {
        url: "http://files.example/b".into(),
        mime_type: "application/pdf".into(),
        size: 0,
        name: "b.pdf".into(),
    }];
    let p = s
        .append(pic)
        .await
        .expect("attachments without text")
        .message;
    let back = s.message(c, p.seq).await.expect("read").expect("message");
    assert_eq!(back, p, "a message with only attachments reads back whole");
    let del = s.delete_message(c, p.seq, t(30)).await.expect("delete it");
    assert!(del.attachments.is_empty(), "deleting drops the attachments");
    let back = s.message(c, p.seq).await.expect("read").expect("message");
    assert_eq!(back, del, "and they stay dropped");
}
