//! Several stores on one schema stand in for several engine nodes: seqs stay gap-free,
//! idempotency holds across nodes, and concurrent appends are coalesced.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chat_core::model::HistoryPage;
use chat_core::ports::Store;
use chat_core::{ConversationId, ErrorCode};
use chat_store_postgres::{PgConfig, PgStore};
use common::{msg, DropSchema};

/// `n` stores (nodes) opened at once on one fresh schema, which the guard drops.
async fn nodes(n: usize, max_batch: usize) -> (DropSchema, Vec<Arc<PgStore>>) {
    let schema = common::fresh_schema();
    let guard = DropSchema(schema.clone());
    // Opened concurrently: the migrations run once, under the advisory lock.
    let opened = futures::future::join_all((0..n).map(|_| {
        common::open_with(
            PgConfig::new(common::url())
                .schema(schema.clone())
                .pool_size(4)
                .max_batch(max_batch),
        )
    }))
    .await;
    (guard, opened.into_iter().map(Arc::new).collect())
}

async fn all_seqs(store: &PgStore, conv: ConversationId) -> Vec<u64> {
    store
        .history(conv, HistoryPage::After(0), 100_000)
        .await
        .expect("history")
        .iter()
        .map(|m| m.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_append_concurrently_without_gaps_or_deadlocks() {
    let (_guard, nodes) = nodes(4, 64).await;
    let convs = [
        common::room(&*nodes[0], "one", "ann").await,
        common::room(&*nodes[0], "two", "ann").await,
        common::room(&*nodes[0], "three", "ann").await,
    ];
    // Every node's batches span the three conversations in different orders: without
    // sorted locking two batches would deadlock.
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..8 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..60 {
                    let conv = convs[(n + t + i) % 3];
                    let a = node
                        .append(msg(conv, "ann", &format!("n{n} t{t} m{i}"), None))
                        .await
                        .expect("append");
                    assert!(!a.duplicate);
                    acked.push((conv, a.message.seq));
                }
                acked
            }));
        }
    }
    let mut acked: BTreeMap<ConversationId, Vec<u64>> = BTreeMap::new();
    for t in tasks {
        for (conv, seq) in t.await.expect("task") {
            acked.entry(conv).or_default().push(seq);
        }
    }
    let mut total = 0;
    for conv in convs {
        let mut seqs = acked.remove(&conv).unwrap_or_default();
        seqs.sort_unstable();
        let n = seqs.len() as u64;
        total += n;
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "acked seqs are 1..=n");
        assert_eq!(all_seqs(&nodes[3], conv).await, seqs, "stored = acked");
        let c = nodes[2]
            .conversation(conv)
            .await
            .expect("get")
            .expect("some");
        assert_eq!(c.last_seq, n);
    }
    assert_eq!(total, 4 * 8 * 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_append_once_across_nodes() {
    let (_guard, nodes) = nodes(4, 64).await;
    let conv = common::room(&*nodes[0], "retries", "ann").await;
    // Every node sends every client id at once, and some plain messages between them.
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for k in 0..20 {
            let first = node.clone();
            tasks.push(tokio::spawn(async move {
                let cid = format!("c{k}");
                let a = first
                    .append(msg(conv, "ann", &format!("from node {n}"), Some(&cid)))
                    .await
                    .expect("append");
                (cid, a)
            }));
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let a = node
                    .append(msg(conv, "bob", "plain", None))
                    .await
                    .expect("append");
                ("-".to_owned(), a)
            }));
        }
    }
    let mut by_cid: BTreeMap<String, (BTreeSet<uuid::Uuid>, usize)> = BTreeMap::new();
    for t in tasks {
        let (cid, a) = t.await.expect("task");
        if cid == "-" {
            assert!(!a.duplicate);
            continue;
        }
        let e = by_cid.entry(cid).or_default();
        e.0.insert(a.message.id.0);
        e.1 += usize::from(!a.duplicate);
    }
    assert_eq!(by_cid.len(), 20);
    for (cid, (ids, fresh)) in by_cid {
        assert_eq!(ids.len(), 1, "{cid}: every node returns the same message");
        assert_eq!(fresh, 1, "{cid}: exactly one append is new");
    }
    let seqs = all_seqs(&nodes[1], conv).await;
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<_>>(),
        "20 + 80 messages, no gap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_coalesced_and_acked_after_commit() {
    let store = Arc::new(common::open().await);
    let conv = common::room(&*store, "batch", "ann").await;
    let tasks: Vec<_> = (0..256)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(msg(conv, "ann", &format!("m{i}"), None))
                    .await
                    .expect("append")
            })
        })
        .collect();
    for t in tasks {
        let a = t.await.expect("task");
        // Acked only after commit: a fresh connection already sees it.
        let seen = store.message(conv, a.message.seq).await.expect("read");
        assert_eq!(seen.map(|m| m.id), Some(a.message.id));
    }
    // Each transaction has its own xid: few xids means few transactions.
    let client = common::raw().await;
    let row = client
        .query_one(
            &format!(
                "SELECT count(DISTINCT xmin::text) AS transactions FROM {}.messages",
                store.schema()
            ),
            &[],
        )
        .await
        .expect("count xids");
    let transactions: i64 = row.get("transactions");
    assert!(
        transactions <= 32,
        "256 concurrent appends took {transactions} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_message_does_not_fail_its_batch() {
    let store = Arc::new(common::open().await);
    let conv = common::room(&*store, "mixed", "ann").await;
    let missing = ConversationId(uuid::Uuid::new_v4());
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let m = match i % 20 {
                    7 => msg(conv, "ann", "nul \0 inside", None),
                    13 => msg(missing, "ann", "nowhere", Some(&format!("x{i}"))),
                    _ => msg(conv, "ann", &format!("ok {i}"), Some(&format!("k{i}"))),
                };
                (i, store.append(m).await)
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (i, r) = t.await.expect("task");
        match i % 20 {
            7 => assert_eq!(r.map(|_| ()).map_err(|e| e.code()), Err(ErrorCode::Invalid)),
            13 => assert_eq!(
                r.map(|_| ()).map_err(|e| e.code()),
                Err(ErrorCode::NotFound)
            ),
            _ => {
                r.expect("good append");
                ok += 1;
            }
        }
    }
    assert_eq!(all_seqs(&store, conv).await, (1..=ok).collect::<Vec<_>>());
}
