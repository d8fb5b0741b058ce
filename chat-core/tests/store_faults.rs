//! Store faults are visible and counted once: every error a store call returns is counted
//! by kind in `Stats`; an outage (`unavailable`, `internal`) is logged when it starts, at
//! most once per interval while it lasts (saying how many failures were not logged), and
//! when it ends, with the error's cause chain. Time is the injected clock's.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chat_core::engine::{Command, Reply};
use chat_core::ports::{Clock, ManualClock, SequentialIds, Store};
use chat_core::{ConversationId, Engine, ErrorCode, UserId};
use common::faulty::FaultyStore;
use common::logs::Logs;
use common::uid;

struct Setup {
    engine: Engine,
    store: Arc<FaultyStore>,
    clock: Arc<ManualClock>,
    alice: UserId,
    room: ConversationId,
}

async fn setup() -> Setup {
    let store = FaultyStore::new();
    let clock = Arc::new(ManualClock::at_epoch());
    let engine = Engine::builder(store.clone() as Arc<dyn Store>)
        .clock(clock.clone() as Arc<dyn Clock>)
        .ids(Arc::new(SequentialIds::default()))
        .store_error_log_interval(Duration::from_secs(10))
        .maintenance(None)
        .build()
        .await
        .expect("engine");
    let alice = uid("alice");
    let Ok(Reply::Room { conversation, .. }) = engine
        .execute_as(
            &alice,
            Command::CreateRoom {
                name: "r".into(),
                visibility: Default::default(),
            },
        )
        .await
    else {
        panic!("create room")
    };
    Setup {
        engine,
        store,
        clock,
        alice,
        room: conversation.id,
    }
}

impl Setup {
    async fn send(&self, body: &str) -> chat_core::Result<Reply> {
        self.engine
            .execute_as(
                &self.alice,
                Command::Send {
                    conversation: self.room,
                    body: body.into(),
                    client_id: None,
                    reply_to: None,
                    attachments: Vec::new(),
                },
            )
            .await
    }

    fn errors(&self, code: ErrorCode) -> u64 {
        self.engine
            .stats()
            .store_errors
            .get(&code)
            .copied()
            .unwrap_or(0)
    }
}

fn with<'a>(lines: &'a [String], text: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(text)).collect()
}

#[tokio::test]
async fn an_outage_is_logged_when_it_starts_rate_limited_while_it_lasts_and_when_it_ends() {
    let s = setup().await;
    let (logs, _guard) = Logs::capture();

    s.store.fail(Some(ErrorCode::Unavailable));
    for i in 0..100 {
        let e = s
            .send(&format!("m{i}"))
            .await
            .expect_err("the store is down");
        assert_eq!(e.code(), ErrorCode::Unavailable);
    }
    let lines = logs.take();
    assert_eq!(lines.len(), 1, "one line for the first failure: {lines:#?}");
    let first = &lines[0];
    assert!(first.contains("ERROR"), "{first}");
    assert!(first.contains("store call failed"), "{first}");
    assert!(
        first.contains("connection refused"),
        "the cause chain is logged: {first}"
    );
    assert!(first.contains("code=unavailable"), "{first}");

    // Within the interval nothing more is logged; after it, one line counts the rest.
    s.clock.advance(Duration::from_secs(9));
    s.send("quiet").await.expect_err("still down");
    assert!(logs.take().is_empty());
    s.clock.advance(Duration::from_secs(1));
    s.send("reminder").await.expect_err("still down");
    let lines = logs.take();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("store still failing"), "{}", lines[0]);
    assert!(
        lines[0].contains("suppressed=100"),
        "failures 2..=101 were not logged: {}",
        lines[0]
    );
    assert!(lines[0].contains("failures=102"), "{}", lines[0]);
    assert!(lines[0].contains("connection refused"), "{}", lines[0]);

    // Recovery: one line, then silence.
    s.clock.advance(Duration::from_secs(2));
    s.store.fail(None);
    assert!(s.send("back").await.is_ok());
    assert!(s.send("again").await.is_ok());
    let lines = logs.take();
    assert_eq!(with(&lines, "store recovered").len(), 1, "{lines:#?}");
    let recovered = with(&lines, "store recovered")[0];
    assert!(recovered.contains("INFO"), "{recovered}");
    assert!(recovered.contains("failures=102"), "{recovered}");
    assert!(recovered.contains("outage_ms=12000"), "{recovered}");
    assert!(
        recovered.contains("connection refused"),
        "the last error is named: {recovered}"
    );
    assert!(with(&lines, "store call failed").is_empty(), "{lines:#?}");

    // Each failure is counted once, by kind.
    let failed = s.store.failed.load(Ordering::SeqCst) as u64;
    assert_eq!(failed, 102);
    assert_eq!(s.errors(ErrorCode::Unavailable), failed);
    assert_eq!(s.errors(ErrorCode::Internal), 0);

    // A new outage starts a new story.
    s.store.fail(Some(ErrorCode::Internal));
    s.send("boom").await.expect_err("internal");
    s.store.fail(None);
    s.send("fine").await.expect("fine");
    let lines = logs.take();
    assert_eq!(with(&lines, "store call failed").len(), 1, "{lines:#?}");
    assert!(with(&lines, "store call failed")[0].contains("code=internal"));
    assert_eq!(with(&lines, "store recovered").len(), 1, "{lines:#?}");
    assert_eq!(s.errors(ErrorCode::Internal), 1);
}

#[tokio::test]
async fn answers_that_are_not_faults_are_counted_but_not_logged_as_an_outage() {
    let s = setup().await;
    let (logs, _guard) = Logs::capture();
    let missing = ConversationId(uuid::Uuid::from_u128(42));
    let e = s
        .engine
        .delete_conversation(missing)
        .await
        .expect_err("no such conversation");
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(s.errors(ErrorCode::NotFound), 1);
    let lines = logs.take();
    assert!(
        with(&lines, "store call failed").is_empty() && with(&lines, "store recovered").is_empty(),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn every_engine_store_call_goes_through_the_count_including_the_handle_embedders_get() {
    let s = setup().await;
    s.store.fail(Some(ErrorCode::Unavailable));
    // Through `Engine::store`, as an HTTP admin route does.
    let e = s.engine.store().room_by_name("r").await.expect_err("down");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    // Through a session opening (profile and conversation list).
    let (transport, _conn) = chat_core::memory::MemoryTransport::new(8);
    let opened = s
        .engine
        .open_session(
            chat_core::ports::Identity {
                user: uid("bob"),
                display_name: Some("Bob".into()),
                expires_at: None,
            },
            transport,
        )
        .await;
    assert!(opened.is_err());
    assert_eq!(
        s.errors(ErrorCode::Unavailable),
        s.store.failed.load(Ordering::SeqCst) as u64
    );
    assert_eq!(s.errors(ErrorCode::Unavailable), 2);
}
