//! The pool under a connect storm: a call waits for a free connection up to
//! `PgConfig::pool_wait`, and succeeds when one frees up in time; past the wait it is
//! refused with `unavailable`, a retry hint and a message that says what happened.
//!
//! Every pooled connection is held by calls blocked on a table lock taken behind the
//! store's back, so the pool is truly busy, as it is when thousands of clients connect
//! at once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::ports::Store;
use chat_core::ErrorCode;
use chat_store_postgres::PgStore;

/// A store with a pool of two (one of them the append writer's at most), waiting `wait`.
async fn small_pool(wait: Duration) -> Arc<PgStore> {
    Arc::new(
        common::open_with(
            common::config()
                .pool_size(2)
                .append_writers(1)
                .pool_wait(wait),
        )
        .await,
    )
}

/// Locks the members table in a transaction on a connection of its own, so that every
/// store read of it blocks (holding its pooled connection) until the returned client
/// rolls back.
async fn lock_members(schema: &str) -> tokio_postgres::Client {
    let raw = common::raw().await;
    raw.batch_execute(&format!(
        "BEGIN; LOCK TABLE {schema}.members IN ACCESS EXCLUSIVE MODE"
    ))
    .await
    .expect("lock");
    raw
}

/// Waits (bounded) until `n` sessions wait for the lock on the schema's members table.
async fn until_blocked(raw: &tokio_postgres::Client, schema: &str, n: i64) {
    let table = format!("{schema}.members");
    for _ in 0..200 {
        let waiting: i64 = raw
            .query_one(
                "SELECT count(*) AS n FROM pg_locks \
                 WHERE NOT granted AND relation = $1::text::regclass",
                &[&table],
            )
            .await
            .expect("pg_locks")
            .get("n");
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} store calls never blocked on the lock");
}

/// Creates a room, locks the members table, and starts two reads that block on the
/// lock, holding both pooled connections. Rolling the returned client back frees them.
async fn fill_the_pool(
    store: &Arc<PgStore>,
) -> (
    tokio_postgres::Client,
    Vec<tokio::task::JoinHandle<chat_core::Result<()>>>,
) {
    let conv = common::room(&**store, "held", "owner").await;
    let raw = lock_members(store.schema()).await;
    let held: Vec<_> = (0..2)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .member(conv, &common::user(&format!("u{i}")))
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    until_blocked(&raw, store.schema(), 2).await;
    (raw, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_for_a_free_connection_and_gets_it_when_one_frees_up_in_time() {
    let store = small_pool(Duration::from_secs(5)).await;
    let (raw, held) = fill_the_pool(&store).await;

    let started = Instant::now();
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.room_by_name("held").await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "no connection is free yet");
    raw.batch_execute("ROLLBACK").await.expect("release");
    let found = waiting
        .await
        .expect("task")
        .expect("served once a connection freed up");
    assert!(found.is_some());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "it waited: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "not the whole wait: {waited:?}"
    );
    for h in held {
        h.await.expect("task").expect("the held reads finish too");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_wait_a_call_is_refused_with_unavailable_and_a_retry_hint() {
    let wait = Duration::from_millis(800);
    let store = small_pool(wait).await;
    let (raw, held) = fill_the_pool(&store).await;

    let started = Instant::now();
    let err = store
        .room_by_name("held")
        .await
        .expect_err("no connection within the wait");
    let waited = started.elapsed();
    raw.batch_execute("ROLLBACK").await.expect("release");

    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(err.retry_after().is_some(), "a retry hint: {err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no connection") && text.contains("800ms") && text.contains("2"),
        "says what happened, with the wait and the pool size: {text}"
    );
    assert!(waited >= wait, "it waited the whole wait: {waited:?}");
    assert!(
        waited < wait + Duration::from_secs(2),
        "then gave up: {waited:?}"
    );
    for h in held {
        h.await.expect("task").expect("the held reads finish");
    }
    // The pool serves again.
    assert!(store.room_by_name("held").await.expect("served").is_some());
}

#[test]
fn the_default_wait_is_ten_seconds_apart_from_the_connect_timeout() {
    let c = chat_store_postgres::PgConfig::new("postgres://u@h/db");
    assert_eq!(c.pool_wait, Duration::from_secs(10));
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
}
