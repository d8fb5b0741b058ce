//! `kill -9` under load, through the real binary, on SQLite and on PostgreSQL: 20 clients
//! pipeline sends, the server dies mid-stream, and after a restart every acknowledged
//! message is there with its seq and body, the log has no gap, and re-sending every
//! unacknowledged client id stores each at most once. SIGTERM under the same load: every
//! client, still sending, gets close 1001, and nothing acknowledged is lost.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{call, Server};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 20;
/// Sends each client writes at most (the kill comes long before on a healthy machine).
const PER_CLIENT: usize = 400;
/// Sends a client keeps in flight.
const WINDOW: usize = 32;

/// What one client saw before the server died.
#[derive(Default)]
struct Outcome {
    /// client id → (seq, body) for every acknowledged send.
    acked: HashMap<String, (u64, String)>,
    /// Every client id written to the socket.
    written: Vec<String>,
    /// The close code the server sent, if its close frame arrived.
    close_code: Option<u16>,
}

fn body_of(client_id: &str) -> String {
    format!("body of {client_id}")
}

/// Pipelines sends on one connection until the socket dies or `PER_CLIENT` were written.
async fn pipeline(
    server_addr: String,
    user: String,
    conv: String,
    acks: Arc<AtomicUsize>,
) -> Outcome {
    let url = format!("ws://{server_addr}/ws?token={}", Server::token(&user));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(WINDOW));
    let reader = {
        let in_flight = in_flight.clone();
        let acks = acks.clone();
        tokio::spawn(async move {
            let mut acked = HashMap::new();
            let mut close_code = None;
            while let Ok(Some(Ok(msg))) =
                tokio::time::timeout(Duration::from_secs(30), stream.next()).await
            {
                if let Message::Close(frame) = &msg {
                    close_code = frame.as_ref().map(|f| u16::from(f.code));
                }
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(&t).expect("json");
                let Some(id) = v["id"].as_str() else { continue };
                in_flight.add_permits(1);
                if v["type"] == "reply" && v["reply"]["type"] == "sent" {
                    let m = &v["reply"]["message"];
                    let seq = m["seq"].as_u64().expect("seq");
                    let body = m["body"].as_str().expect("body").to_owned();
                    acked.insert(id.to_owned(), (seq, body));
                    acks.fetch_add(1, Ordering::Relaxed);
                }
            }
            (acked, close_code)
        })
    };
    let mut written = Vec::new();
    for k in 0..PER_CLIENT {
        let Ok(permit) = tokio::time::timeout(Duration::from_secs(10), in_flight.acquire()).await
        else {
            break; // no replies any more: the server is gone
        };
        permit.expect("semaphore").forget();
        let client_id = format!("{user}-{k}");
        let frame = json!({"id": client_id, "type": "send", "conversation": conv,
                           "body": body_of(&client_id), "client_id": client_id});
        if sink.send(Message::text(frame.to_string())).await.is_err() {
            break;
        }
        written.push(client_id);
    }
    let (acked, close_code) = tokio::time::timeout(Duration::from_secs(40), reader)
        .await
        .expect("the reader ends once the socket dies")
        .expect("reader");
    Outcome {
        acked,
        written,
        close_code,
    }
}

/// Every message of the conversation, by seq, paged with `after`.
async fn whole_history(server: &Server, conv: &str) -> (u64, BTreeMap<u64, Value>) {
    let mut ws = server.connect("owner").await;
    let mut all = BTreeMap::new();
    let mut after = 0u64;
    let mut last_seq = 0;
    for page in 0.. {
        assert!(page < 10_000, "history paging ends");
        let reply = call(
            &mut ws,
            &format!("h{page}"),
            json!({"type": "history", "conversation": conv, "after": after, "limit": 100}),
        )
        .await;
        last_seq = reply["last_seq"].as_u64().expect("last_seq");
        let messages = reply["messages"].as_array().expect("messages");
        for m in messages {
            let seq = m["seq"].as_u64().expect("seq");
            assert!(all.insert(seq, m.clone()).is_none(), "seq {seq} twice");
            after = after.max(seq);
        }
        if messages.is_empty() || after >= last_seq {
            break;
        }
    }
    (last_seq, all)
}

fn client_ids(history: &BTreeMap<u64, Value>) -> HashMap<String, u64> {
    let mut ids = HashMap::new();
    for (seq, m) in history {
        if let Some(id) = m["client_id"].as_str() {
            assert!(
                ids.insert(id.to_owned(), *seq).is_none(),
                "client id {id} stored twice"
            );
        }
    }
    ids
}

/// How the server stops in the middle of the load.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// `kill -9`.
    Kill,
    /// SIGTERM: every client must get close 1001.
    Term,
}

async fn kill_under_load_loses_nothing_acknowledged(store: &[&str]) {
    stop_under_load_loses_nothing_acknowledged(store, Stop::Kill).await;
}

async fn stop_under_load_loses_nothing_acknowledged(store: &[&str], stop: Stop) {
    let mut args = store.to_vec();
    args.extend(["--commands-per-second", "0"]);
    let server = Server::spawn(&args, &[]);
    let mut owner = server.connect("owner").await;
    let room = call(
        &mut owner,
        "r",
        json!({"type": "create_room", "name": "crash"}),
    )
    .await;
    let conv = room["conversation"]["id"].as_str().expect("id").to_owned();
    let users: Vec<String> = (0..CLIENTS).map(|i| format!("u{i}")).collect();
    for u in &users {
        let mut ws = server.connect(u).await;
        call(&mut ws, "j", json!({"type": "join", "room": conv})).await;
    }

    let acks = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            tokio::spawn(pipeline(
                server.addr.clone(),
                u.clone(),
                conv.clone(),
                acks.clone(),
            ))
        })
        .collect();
    // Let the load build, then kill mid-stream.
    let started = Instant::now();
    while acks.load(Ordering::Relaxed) < 1_500 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr_args = args.clone();
    match stop {
        Stop::Kill => server.kill(),
        Stop::Term => {
            server.terminate();
        }
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("client task"));
    }
    let acked: usize = outcomes.iter().map(|o| o.acked.len()).sum();
    let written: usize = outcomes.iter().map(|o| o.written.len()).sum();
    assert!(acked > 0, "some sends were acknowledged before the stop");
    if stop == Stop::Term {
        let codes: Vec<Option<u16>> = outcomes.iter().map(|o| o.close_code).collect();
        assert!(
            codes.iter().all(|c| *c == Some(1001)),
            "every client still sending gets close 1001: {codes:?}"
        );
    } else {
        assert!(
            written > acked,
            "the kill came with sends in flight ({acked} acked of {written})"
        );
    }

    // Restart on the same store.
    let server = Server::spawn(&addr_args, &[]);
    let (last_seq, history) = whole_history(&server, &conv).await;
    let seqs: Vec<u64> = history.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=last_seq).collect::<Vec<_>>(),
        "no gap in the log"
    );
    let stored = client_ids(&history);
    for o in &outcomes {
        for (client_id, (seq, body)) in &o.acked {
            assert_eq!(
                stored.get(client_id),
                Some(seq),
                "acknowledged {client_id} kept its seq"
            );
            assert_eq!(history[seq]["body"], body.as_str(), "and its body");
        }
    }

    // Re-send every unacknowledged client id: each is stored at most once.
    for (u, o) in users.iter().zip(&outcomes) {
        let mut ws = server.connect(u).await;
        for client_id in o.written.iter().filter(|id| !o.acked.contains_key(*id)) {
            let reply = call(
                &mut ws,
                client_id,
                json!({"type": "send", "conversation": conv, "body": body_of(client_id),
                       "client_id": client_id}),
            )
            .await;
            let was_stored = stored.contains_key(client_id);
            assert_eq!(reply["duplicate"], was_stored, "{client_id}: {reply}");
        }
    }
    let (_, after) = whole_history(&server, &conv).await;
    let ids = client_ids(&after);
    let all_written: HashSet<&String> = outcomes.iter().flat_map(|o| o.written.iter()).collect();
    for id in &all_written {
        assert!(
            ids.contains_key(*id),
            "{id} is stored once after the re-send"
        );
    }
    eprintln!(
        "{} under load: {acked} acked of {written} written, {} stored before the re-send",
        if stop == Stop::Kill {
            "kill -9"
        } else {
            "SIGTERM"
        },
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite:{}", dir.path().join("chat.db").display());
    kill_under_load_loses_nothing_acknowledged(&["--store", &store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_on_postgres() {
    let url = std::env::var("CHAT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let schema = format!("crash_{}", std::process::id());
    let drop = || {
        let status = std::process::Command::new("psql")
            .args([
                url.as_str(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            ])
            .status()
            .expect("psql (the PostgreSQL client) is needed to clean up");
        assert!(status.success(), "dropping {schema}");
    };
    drop();
    kill_under_load_loses_nothing_acknowledged(&["--store", &url, "--pg-schema", &schema]).await;
    drop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_closes_every_client_with_1001_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite:{}", dir.path().join("chat.db").display());
    stop_under_load_loses_nothing_acknowledged(&["--store", &store], Stop::Term).await;
}
