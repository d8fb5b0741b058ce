//! Zero loss under SIGKILL: a child process appends in a loop and prints each
//! acknowledged seq; the test kills it mid-stream, reopens the database, and finds every
//! acknowledged message, with `PRAGMA integrity_check` ok.
//!
//! The child is this test binary run again as `--ignored --exact child_appender`, with
//! `CHAT_SQLITE_DURABILITY_CHILD` set to the database path: [`child_appender`] is an
//! ignored test, so a normal run never starts it on its own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::model::{HistoryPage, MessageKind, NewMessage, NewRoom, Visibility};
use chat_core::ports::Store;
use chat_core::{ConversationId, MessageId, UserId};
use chat_store_sqlite::{Config, SqliteStore, Synchronous};

const CHILD_ENV: &str = "CHAT_SQLITE_DURABILITY_CHILD";
const ACKS_BEFORE_KILL: usize = 300;

/// The child process of [`every_acknowledged_append_survives_sigkill`]: appends forever
/// from 8 tasks and prints `ack <seq> <body>` after each acknowledged append. Not a test
/// on its own, so ignored; the parent runs it explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of every_acknowledged_append_survives_sigkill, which runs it"]
async fn child_appender() {
    let path = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!(
            "{CHILD_ENV} is not set: child_appender is run by \
             every_acknowledged_append_survives_sigkill, not on its own"
        )
    });
    let store = Arc::new(
        SqliteStore::open(Config::path(path).synchronous(Synchronous::Full))
            .await
            .expect("child: open"),
    );
    let alice = UserId::new("alice").expect("user");
    let conv = ConversationId(uuid::Uuid::new_v4());
    store
        .create_room(NewRoom {
            id: conv,
            name: "durable".into(),
            visibility: Visibility::Public,
            created_by: alice.clone(),
            created_at: chrono::Utc::now(),
        })
        .await
        .expect("child: room");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, alice) = (store.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            // Bounded so that a parent that failed to kill us does not leave us running.
            for i in 0..1_000_000u64 {
                let body = format!("t{t}-m{i}");
                let a = store
                    .append(NewMessage {
                        id: MessageId(uuid::Uuid::new_v4()),
                        conversation: conv,
                        sender: alice.clone(),
                        client_id: Some(body.clone()),
                        kind: MessageKind::User,
                        body: body.clone(),
                        created_at: chrono::Utc::now(),
                        reply_to: None,
                        thread: None,
                        attachments: Vec::new(),
                    })
                    .await
                    .expect("child: append");
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {} {}", a.message.seq, body).expect("child: stdout");
                out.flush().expect("child: flush");
            }
        }));
    }
    for t in tasks {
        t.await.expect("child: task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_append_survives_sigkill() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("durable.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "child_appender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let started = Instant::now();
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while acked.len() < ACKS_BEFORE_KILL {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child acknowledged only {} appends in 60 s",
            acked.len()
        );
        let Some(line) = lines.next() else {
            panic!("the child stopped after {} acks", acked.len());
        };
        let line = line.expect("read child stdout");
        if let Some(rest) = line.strip_prefix("ack ") {
            let (seq, body) = rest.split_once(' ').expect("ack line");
            acked.push((seq.parse().expect("seq"), body.to_owned()));
        }
    }
    child.kill().expect("SIGKILL the child"); // Child::kill sends SIGKILL on Unix.
                                              // Acks already written to the pipe before the kill count too.
    for line in lines.map_while(Result::ok) {
        if let Some((seq, body)) = line.strip_prefix("ack ").and_then(|r| r.split_once(' ')) {
            if let Ok(seq) = seq.parse() {
                acked.push((seq, body.to_owned()));
            }
        }
    }
    child.wait().expect("reap the child");

    {
        let conn = rusqlite::Connection::open(&path).expect("open for integrity check");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get("integrity_check"))
            .expect("integrity_check");
        assert_eq!(check, "ok");
    }
    let store = SqliteStore::open(Config::path(&path))
        .await
        .expect("reopen");
    let room = store
        .room_by_name("durable")
        .await
        .expect("read")
        .expect("the room survived");
    for (seq, body) in &acked {
        let m = store
            .message(room.id, *seq)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("acknowledged seq {seq} was lost"));
        assert_eq!(&m.body, body, "seq {seq} holds what was acknowledged");
    }
    // The log is gap-free up to its last seq, and the last seq covers every ack.
    let max_acked = acked.iter().map(|a| a.0).max().unwrap_or(0);
    assert!(room.last_seq >= max_acked);
    let mut next = 0;
    loop {
        let page = store
            .history(room.id, HistoryPage::After(next), 500)
            .await
            .expect("history");
        let Some(last) = page.last() else { break };
        for (i, m) in page.iter().enumerate() {
            assert_eq!(m.seq, next + 1 + i as u64, "no gap");
        }
        next = last.seq;
    }
    assert_eq!(next, room.last_seq);
    // Appending after recovery continues the log.
    let a = store
        .append(NewMessage {
            id: MessageId(uuid::Uuid::new_v4()),
            conversation: room.id,
            sender: UserId::new("bob").expect("user"),
            client_id: None,
            kind: MessageKind::User,
            body: "after".into(),
            created_at: chrono::Utc::now(),
            reply_to: None,
            thread: None,
            attachments: Vec::new(),
        })
        .await
        .expect("append after recovery");
    assert_eq!(a.message.seq, room.last_seq + 1);
}
