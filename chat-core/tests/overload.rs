//! Overload: the appends a node has waiting for the store are bounded; past the bound a
//! send is refused at once with `unavailable` and a retry hint, and nothing is stored.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chat_core::engine::{Command, Reply};
use chat_core::model::{HistoryPage, Limits};
use chat_core::ports::{Clock, ManualClock, SequentialIds, Store};
use chat_core::{ConversationId, Engine, ErrorCode, UserId};
use common::faulty::FaultyStore;
use common::uid;

async fn engine(store: &Arc<FaultyStore>, limits: Limits) -> Engine {
    Engine::builder(store.clone() as Arc<dyn Store>)
        .clock(Arc::new(ManualClock::at_epoch()) as Arc<dyn Clock>)
        .ids(Arc::new(SequentialIds::default()))
        .limits(limits)
        .maintenance(None)
        .build()
        .await
        .expect("engine")
}

async fn room(engine: &Engine, owner: &UserId) -> ConversationId {
    match engine
        .execute_as(
            owner,
            Command::CreateRoom {
                name: "busy".into(),
                visibility: Default::default(),
            },
        )
        .await
    {
        Ok(Reply::Room { conversation, .. }) => conversation.id,
        other => panic!("create room: {other:?}"),
    }
}

fn send(conversation: ConversationId, body: &str) -> Command {
    Command::Send {
        conversation,
        body: body.into(),
        client_id: Some(body.into()),
        reply_to: None,
        attachments: Vec::new(),
    }
}

/// Waits (a bounded number of turns) until `n` appends are inside the store.
async fn until_in_store(store: &FaultyStore, n: usize) {
    for _ in 0..10_000 {
        if store.appends_started.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "only {} of {n} appends reached the store",
        store.appends_started.load(Ordering::SeqCst)
    );
}

#[test]
fn the_default_bound_is_256_pending_appends() {
    let limits = Limits::default();
    assert_eq!(limits.max_pending_appends, 256);
    assert_eq!(limits.overload_retry_after_ms, 1000);
}

#[tokio::test]
async fn past_the_bound_a_send_is_refused_at_once_with_a_retry_hint_and_nothing_is_stored() {
    let store = FaultyStore::new();
    let mut limits = Limits::default();
    limits.max_pending_appends = 4;
    limits.overload_retry_after_ms = 1500;
    let engine = engine(&store, limits).await;
    let alice = uid("alice");
    let conversation = room(&engine, &alice).await;

    store.hold_appends();
    let mut waiting = Vec::new();
    for i in 0..4 {
        let (engine, alice) = (engine.clone(), alice.clone());
        waiting.push(tokio::spawn(async move {
            engine
                .execute_as(&alice, send(conversation, &format!("m{i}")))
                .await
        }));
    }
    until_in_store(&store, 4).await;
    assert_eq!(engine.stats().pending_appends, 4);

    // The fifth does not wait: it is refused before it reaches the store.
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        engine.execute_as(&alice, send(conversation, "over")),
    )
    .await
    .expect("refused at once, not queued behind the held appends")
    .expect_err("past the bound");
    assert_eq!(refused.code(), ErrorCode::Unavailable, "{refused}");
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(1500)));
    assert!(refused.message().contains("retry"), "{refused}");
    assert_eq!(store.appends_started.load(Ordering::SeqCst), 4);
    let stats = engine.stats();
    assert_eq!(stats.appends_refused, 1);
    assert_eq!(stats.pending_appends, 4);

    store.release_appends();
    let mut seqs = Vec::new();
    for w in waiting {
        match w.await.expect("task") {
            Ok(Reply::Sent { message, .. }) => seqs.push(message.seq),
            other => panic!("a send within the bound succeeds: {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let stored = store
        .history(conversation, HistoryPage::Before(None), 100)
        .await
        .expect("history");
    let bodies: Vec<&str> = stored.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(stored.len(), 4, "nothing of the refused send: {bodies:?}");
    assert!(!bodies.contains(&"over"));

    // With the slots free again, the same send (same client id) goes through.
    let retried = engine
        .execute_as(&alice, send(conversation, "over"))
        .await
        .expect("a retry after the hint succeeds");
    assert!(matches!(retried, Reply::Sent { ref message, .. } if message.seq == 5));
    let stats = engine.stats();
    assert_eq!(stats.pending_appends, 0);
    assert_eq!(stats.messages_sent, 5);
}

#[tokio::test]
async fn a_bound_of_zero_means_no_bound() {
    let store = FaultyStore::new();
    let mut limits = Limits::default();
    limits.max_pending_appends = 0;
    let engine = engine(&store, limits).await;
    let alice = uid("alice");
    let conversation = room(&engine, &alice).await;
    store.hold_appends();
    let mut waiting = Vec::new();
    for i in 0..50 {
        let (engine, alice) = (engine.clone(), alice.clone());
        waiting.push(tokio::spawn(async move {
            engine
                .execute_as(&alice, send(conversation, &format!("m{i}")))
                .await
        }));
    }
    until_in_store(&store, 50).await;
    store.release_appends();
    for w in waiting {
        assert!(w.await.expect("task").is_ok());
    }
    assert_eq!(engine.stats().appends_refused, 0);
}
