//! Throughput and latency of the SQLite store. A program, not a timed test:
//!
//! ```sh
//! cargo bench -p chat-store-sqlite                      # full run
//! CHAT_BENCH_QUICK=1 cargo bench -p chat-store-sqlite   # a few seconds (CI smoke)
//! ```
//!
//! Sizes (env vars): `CHAT_BENCH_APPENDS` messages per append case (default 200000,
//! quick 4000), `CHAT_BENCH_NAIVE` per naive case (default 20000, quick 500),
//! `CHAT_BENCH_HISTORY` messages in the history conversation (default 1000000, quick
//! 20000), `CHAT_BENCH_CONVS` conversations for the unread total (default 1000, quick
//! 100), `CHAT_BENCH_SECS` time cap per case in seconds (default 10, quick 5),
//! `CHAT_BENCH_ONLY` runs only the append cases whose `SYNC-APPENDERS-CONVS` name
//! contains it (e.g. `FULL-256-1`).
//! Databases go to a temp dir under the target directory (a real disk, not tmpfs).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_core::model::{HistoryPage, MessageKind, NewMessage, NewRoom, Visibility};
use chat_core::ports::Store;
use chat_core::{ConversationId, MessageId, UserId};
use chat_store_sqlite::{Config, SqliteStore, Synchronous};
use rusqlite::{params, Connection, OptionalExtension};

struct Sizes {
    appends: u64,
    naive: u64,
    history: u64,
    convs: u64,
    cap: Duration,
}

fn env_u64(name: &str, full: u64, quick: u64) -> u64 {
    let q = std::env::var("CHAT_BENCH_QUICK").is_ok_and(|v| v != "0");
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if q { quick } else { full })
}

fn sizes() -> Sizes {
    Sizes {
        appends: env_u64("CHAT_BENCH_APPENDS", 200_000, 4_000),
        naive: env_u64("CHAT_BENCH_NAIVE", 20_000, 500),
        history: env_u64("CHAT_BENCH_HISTORY", 1_000_000, 20_000),
        convs: env_u64("CHAT_BENCH_CONVS", 1_000, 100),
        cap: Duration::from_secs(env_u64("CHAT_BENCH_SECS", 10, 5)),
    }
}

const BODY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn user(s: &str) -> UserId {
    UserId::new(s).expect("bench user id")
}

fn sync_name(s: Synchronous) -> &'static str {
    match s {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

async fn rooms(store: &SqliteStore, n: u64) -> Vec<ConversationId> {
    let mut out = Vec::new();
    for i in 0..n {
        let id = ConversationId(uuid::Uuid::new_v4());
        store
            .create_room(NewRoom {
                id,
                name: format!("room {i}"),
                visibility: Visibility::Public,
                created_by: user("owner"),
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("room");
        out.push(id);
    }
    out
}

fn new_msg(conv: ConversationId, sender: &UserId, client_id: String) -> NewMessage {
    NewMessage {
        id: MessageId(uuid::Uuid::new_v4()),
        conversation: conv,
        sender: sender.clone(),
        client_id: Some(client_id),
        kind: MessageKind::User,
        body: BODY.to_owned(),
        created_at: chrono::Utc::now(),
        reply_to: None,
        thread: None,
        attachments: Vec::new(),
    }
}

/// The naive store: the same schema, one transaction (and one fsync) per message.
struct Naive {
    conn: Mutex<Connection>,
}

impl Naive {
    fn open(path: &std::path::Path, sync: Synchronous) -> Naive {
        let conn = Connection::open(path).expect("naive open");
        conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.pragma_update(None, "synchronous", sync_name(sync))
            .expect("sync");
        Naive {
            conn: Mutex::new(conn),
        }
    }

    fn append(&self, m: &NewMessage) -> rusqlite::Result<u64> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let dup: Option<i64> = tx
            .prepare_cached("SELECT seq FROM messages WHERE sender = ?1 AND client_id = ?2")?
            .query_row(params![m.sender.as_str(), m.client_id], |r| r.get("seq"))
            .optional()?;
        if let Some(seq) = dup {
            return Ok(seq as u64);
        }
        let last: i64 = tx
            .prepare_cached("SELECT last_seq FROM conversations WHERE id = ?1")?
            .query_row([m.conversation.0.as_bytes()], |r| r.get("last_seq"))?;
        let seq = last + 1;
        tx.prepare_cached(
            "INSERT INTO messages (conversation, seq, id, sender, client_id, kind, body, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'user', ?6, ?7)",
        )?
        .execute(params![
            m.conversation.0.as_bytes(),
            seq,
            m.id.0.as_bytes(),
            m.sender.as_str(),
            m.client_id,
            m.body,
            m.created_at.timestamp_millis()
        ])?;
        tx.prepare_cached("UPDATE conversations SET last_seq = ?2 WHERE id = ?1")?
            .execute(params![m.conversation.0.as_bytes(), seq])?;
        tx.commit()?;
        Ok(seq as u64)
    }
}

/// Appends `total` messages from `appenders` tasks spread over `convs` conversations;
/// returns messages per second. Stops early at the time cap.
async fn append_case(
    dir: &std::path::Path,
    naive: bool,
    appenders: u64,
    convs: u64,
    sync: Synchronous,
    total: u64,
    cap: Duration,
) -> (f64, u64) {
    let path = dir.join(format!(
        "append-{}-{appenders}-{convs}-{}.db",
        if naive { "naive" } else { "store" },
        sync_name(sync)
    ));
    let store = Arc::new(
        SqliteStore::open(Config::path(&path).synchronous(sync))
            .await
            .expect("open"),
    );
    let ids = Arc::new(rooms(&store, convs).await);
    let naive_store = if naive {
        drop(store.clone());
        Some(Arc::new(Naive::open(&path, sync)))
    } else {
        None
    };
    let per_task = total.div_ceil(appenders);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..appenders {
        let (store, ids, naive_store) = (store.clone(), ids.clone(), naive_store.clone());
        tasks.push(tokio::spawn(async move {
            let sender = user(&format!("user{t}"));
            let mut done = 0u64;
            for i in 0..per_task {
                if started.elapsed() > cap {
                    break;
                }
                let conv = ids[((t + i) % ids.len() as u64) as usize];
                let m = new_msg(conv, &sender, format!("{t}-{i:09}"));
                match &naive_store {
                    Some(n) => {
                        let n = n.clone();
                        tokio::task::spawn_blocking(move || n.append(&m))
                            .await
                            .expect("join")
                            .expect("naive append");
                    }
                    None => {
                        store.append(m).await.expect("append");
                    }
                }
                done += 1;
            }
            done
        }));
    }
    let mut done = 0;
    for t in tasks {
        done += t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    (done as f64 / secs, done)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Fills one conversation with `n` messages directly (not what is measured).
fn bulk_fill(
    path: &std::path::Path,
    conv: ConversationId,
    n: u64,
    sender_of: impl Fn(u64) -> String,
) {
    let mut conn = Connection::open(path).expect("bulk open");
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("sync");
    let tx = conn.transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO messages (conversation, seq, id, sender, kind, body, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'user', ?5, ?6)",
            )
            .expect("prepare");
        for seq in 1..=n {
            ins.execute(params![
                conv.0.as_bytes(),
                seq as i64,
                uuid::Uuid::new_v4().as_bytes(),
                sender_of(seq),
                BODY,
                1_700_000_000_000i64 + seq as i64
            ])
            .expect("insert");
        }
        tx.execute(
            "UPDATE conversations SET last_seq = ?2 WHERE id = ?1",
            params![conv.0.as_bytes(), n as i64],
        )
        .expect("last_seq");
    }
    tx.commit().expect("commit");
}

async fn history_case(dir: &std::path::Path, s: &Sizes) -> (Duration, Duration, Duration, u64) {
    let path = dir.join("history.db");
    let conv = {
        let store = SqliteStore::open(Config::path(&path)).await.expect("open");
        rooms(&store, 1).await[0]
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bulk_fill(&path, conv, s.history, |_| "alice".into());
    let store = SqliteStore::open(Config::path(&path))
        .await
        .expect("reopen");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut lat = Vec::new();
    let started = Instant::now();
    for i in 0..20_000u64 {
        if started.elapsed() > s.cap {
            break;
        }
        let page = if i % 10 == 0 {
            HistoryPage::Before(None)
        } else {
            HistoryPage::Before(Some(1 + rng.next() % s.history))
        };
        let t = Instant::now();
        let got = store.history(conv, page, 50).await.expect("history");
        lat.push(t.elapsed());
        assert!(got.len() <= 50);
    }
    lat.sort();
    (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        *lat.last().expect("samples"),
        lat.len() as u64,
    )
}

async fn unread_case(dir: &std::path::Path, s: &Sizes) -> (Duration, Duration, u64, u64) {
    let path = dir.join("unread.db");
    let me = user("me");
    let convs = {
        let store = SqliteStore::open(Config::path(&path)).await.expect("open");
        let ids = rooms(&store, s.convs).await;
        for id in &ids {
            store
                .add_member(
                    *id,
                    &me,
                    chat_core::model::Role::Member,
                    chrono::Utc::now(),
                    10,
                )
                .await
                .expect("join");
        }
        ids
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 20 messages each, every 4th mine; I have read the first 10.
    for id in &convs {
        bulk_fill(&path, *id, 20, |seq| {
            if seq % 4 == 0 {
                "me".into()
            } else {
                "bob".into()
            }
        });
    }
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute(
            "UPDATE members SET delivered_seq = 10, read_seq = 10 WHERE user = 'me'",
            [],
        )
        .expect("watermarks");
    }
    let store = SqliteStore::open(Config::path(&path))
        .await
        .expect("reopen");
    let mut lat = Vec::new();
    let mut total = 0;
    let started = Instant::now();
    for _ in 0..500 {
        if started.elapsed() > s.cap {
            break;
        }
        let t = Instant::now();
        total = store.unread_total(&me).await.expect("unread_total");
        lat.push(t.elapsed());
    }
    lat.sort();
    (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        total,
        lat.len() as u64,
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let s = sizes();
    let root = std::env::var("CHAT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&root).expect("bench dir");
    let tmp = tempfile::tempdir_in(&root).expect("temp dir");
    println!(
        "sizes: {} appends per case, {} per naive case, history of {}, {} conversations, cap {:?}",
        s.appends, s.naive, s.history, s.convs, s.cap
    );
    println!();
    println!("| sync | appenders | conversations | store msgs/s | naive msgs/s | × naive |");
    println!("|---|---:|---:|---:|---:|---:|");
    for sync in [Synchronous::Full, Synchronous::Normal] {
        for convs in [1, 100] {
            for appenders in [1, 16, 256] {
                let case = format!("{}-{appenders}-{convs}", sync_name(sync));
                if std::env::var("CHAT_BENCH_ONLY").is_ok_and(|o| !case.contains(o.as_str())) {
                    continue;
                }
                let (fast, n) =
                    append_case(tmp.path(), false, appenders, convs, sync, s.appends, s.cap).await;
                let (slow, m) =
                    append_case(tmp.path(), true, appenders, convs, sync, s.naive, s.cap).await;
                println!(
                    "| {} | {appenders} | {convs} | {fast:.0} ({n} msgs) | {slow:.0} ({m} msgs) | {:.1} |",
                    sync_name(sync),
                    fast / slow
                );
            }
        }
    }
    println!();
    let (p50, p99, max, n) = history_case(tmp.path(), &s).await;
    println!(
        "history page of 50 from {} messages: p50 {p50:?}, p99 {p99:?}, max {max:?} ({n} pages)",
        s.history
    );
    let (p50, p99, total, n) = unread_case(tmp.path(), &s).await;
    println!(
        "unread total over {} conversations (= {total}): p50 {p50:?}, p99 {p99:?} ({n} calls)",
        s.convs
    );
}
