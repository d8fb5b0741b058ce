//! Append throughput and history latency against a live PostgreSQL.
//!
//! Run: `cargo bench -p chat-store-postgres` (quick smoke: `CHAT_BENCH_QUICK=1`).
//!
//! Environment: `CHAT_TEST_PG_URL` (server, local default), `CHAT_BENCH_SECS` (seconds
//! per throughput case, default 3; 0.3 quick), `CHAT_BENCH_HISTORY_READS` (history pages
//! timed, default 5000; 300 quick), `CHAT_BENCH_HISTORY_MESSAGES` (messages in the paged
//! conversation, default 20000; 2000 quick), `CHAT_BENCH_WRITERS` (append transactions
//! in flight, default 1, as `PgConfig::new`). Every loop is bounded in time and count.
//! The bench uses its own schema and drops it at the end.
//!
//! It measures the batched store (`Store::append`: group commit) and the naive path
//! (`PgStore::append_unbatched`: one insert per transaction) with 1, 16 and 256
//! concurrent appenders, to 1 and to 100 conversations.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_core::model::{HistoryPage, MessageKind, NewMessage, NewRoom, Visibility};
use chat_core::ports::Store;
use chat_core::{ConversationId, MessageId, UserId};
use chat_store_postgres::{PgConfig, PgStore};

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    secs: f64,
    history_reads: usize,
    history_messages: usize,
}

/// Most messages one throughput case may append, whatever its duration.
const MAX_PER_CASE: u64 = 2_000_000;

fn main() {
    // `cargo test --benches` runs this binary without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("append bench: run with `cargo bench -p chat-store-postgres`");
        return;
    }
    let quick = std::env::var("CHAT_BENCH_QUICK").as_deref() == Ok("1");
    let settings = Settings {
        secs: env_f64("CHAT_BENCH_SECS", if quick { 0.3 } else { 3.0 }),
        history_reads: env_f64(
            "CHAT_BENCH_HISTORY_READS",
            if quick { 300.0 } else { 5000.0 },
        ) as usize,
        history_messages: env_f64(
            "CHAT_BENCH_HISTORY_MESSAGES",
            if quick { 2000.0 } else { 20000.0 },
        ) as usize,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(settings));
}

async fn run(s: Settings) {
    let url = std::env::var("CHAT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let schema = format!("chat_test_{secs}_bench");
    let store = Arc::new(
        PgStore::open(
            PgConfig::new(url.clone())
                .schema(schema)
                .pool_size(16)
                .max_batch(512)
                .append_writers(env_f64("CHAT_BENCH_WRITERS", 1.0) as usize)
                .drop_schema_on_drop(true),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot open PostgreSQL at {url}: {e}")),
    );
    println!(
        "chat-store-postgres append bench: {} s per case, server {url}",
        s.secs
    );
    println!();
    println!("| store | appenders | conversations | messages | msgs/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut case = 0;
    for naive in [false, true] {
        for appenders in [1usize, 16, 256] {
            for convs in [1usize, 100] {
                case += 1;
                let rooms = make_rooms(&store, case, convs).await;
                let r = throughput(&store, &rooms, appenders, naive, s.secs).await;
                println!(
                    "| {} | {appenders} | {convs} | {} | {:.0} | {:.2} | {:.2} |",
                    if naive {
                        "naive (1 insert/tx)"
                    } else {
                        "batched"
                    },
                    r.count,
                    r.count as f64 / r.elapsed.as_secs_f64(),
                    r.p50_ms,
                    r.p99_ms,
                );
            }
        }
    }
    println!();
    history(&store, s.history_messages, s.history_reads).await;
}

async fn make_rooms(store: &PgStore, case: usize, n: usize) -> Vec<ConversationId> {
    let mut rooms = Vec::with_capacity(n);
    for i in 0..n {
        let id = ConversationId(uuid::Uuid::new_v4());
        store
            .create_room(NewRoom {
                id,
                name: format!("case {case} room {i}"),
                visibility: Visibility::Public,
                created_by: user("bench"),
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("create room");
        rooms.push(id);
    }
    rooms
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

fn message(conv: ConversationId, body: String) -> NewMessage {
    NewMessage {
        id: MessageId(uuid::Uuid::now_v7()),
        conversation: conv,
        sender: user("bench"),
        client_id: None,
        kind: MessageKind::User,
        body,
        created_at: chrono::Utc::now(),
        reply_to: None,
        thread: None,
        attachments: Vec::new(),
    }
}

struct Throughput {
    count: u64,
    elapsed: Duration,
    p50_ms: f64,
    p99_ms: f64,
}

async fn throughput(
    store: &Arc<PgStore>,
    rooms: &[ConversationId],
    appenders: usize,
    naive: bool,
    secs: f64,
) -> Throughput {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let (store, stop, count) = (store.clone(), stop.clone(), count.clone());
            let rooms = rooms.to_vec();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = a;
                while !stop.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                    && count.load(Ordering::Relaxed) < MAX_PER_CASE
                {
                    let m = message(rooms[i % rooms.len()], format!("appender {a} message {i}"));
                    let t = Instant::now();
                    let r = if naive {
                        store.append_unbatched(m).await
                    } else {
                        store.append(m).await
                    };
                    r.expect("append");
                    latencies.push(t.elapsed());
                    count.fetch_add(1, Ordering::Relaxed);
                    i += appenders;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("appender"));
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let (p50_ms, p99_ms) = percentiles(&mut latencies);
    Throughput {
        count: count.load(Ordering::Relaxed),
        elapsed,
        p50_ms,
        p99_ms,
    }
}

fn percentiles(latencies: &mut [Duration]) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

async fn history(store: &Arc<PgStore>, messages: usize, reads: usize) {
    let conv = make_rooms(store, 0, 1).await[0];
    // Fill with concurrent batched appends (bounded by count).
    let per_task = messages.div_ceil(64);
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    store
                        .append(message(
                            conv,
                            format!("history filler {t} {i} lorem ipsum dolor"),
                        ))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("filler");
    }
    let last = (per_task * 64) as u64;
    let mut latencies = Vec::with_capacity(reads);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..reads {
        if Instant::now() > deadline {
            break;
        }
        // xorshift: a page anywhere in the log, both directions.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = 1 + x % last;
        let page = if i % 2 == 0 {
            HistoryPage::Before(Some(at))
        } else {
            HistoryPage::After(at)
        };
        let t = Instant::now();
        let got = store.history(conv, page, 50).await.expect("history");
        latencies.push(t.elapsed());
        assert!(!got.is_empty() || at >= last.saturating_sub(1));
    }
    let n = latencies.len();
    let (p50, p99) = percentiles(&mut latencies);
    println!(
        "history: {n} pages of 50 from a conversation of {last} messages, one reader: \
         p50 {p50:.3} ms, p99 {p99:.3} ms"
    );
}
