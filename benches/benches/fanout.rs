//! Engine fan-out in process: `MemoryStore` + memory bus + `MemoryTransport`.
//!
//! R rooms × M sessions; each iteration is one `send` by a member of one room (round
//! robin over the rooms), which the engine appends and queues on the M − 1 other
//! sessions. Throughput is counted in frames queued (deliveries), so `elem/s` reads as
//! deliveries per second. Receivers are drained between timed batches, outside the
//! timing, so queues never fill.
//!
//! Run: `cargo bench -p chat-benches --bench fanout`

// criterion_group! makes a `pub fn` without docs; a bench binary has no public API.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::engine::{Command, Reply};
use chat_core::memory::{MemoryConnection, MemoryStore, MemoryTransport};
use chat_core::model::Limits;
use chat_core::ports::Identity;
use chat_core::{ConversationId, Engine, Session, UserId};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Per-connection queue; a timed batch never sends more than half of it to one room.
const QUEUE: usize = 1024;

struct Setup {
    /// One sender per room.
    senders: Vec<(Session, ConversationId)>,
    /// Every session kept alive, and every receiver to drain.
    _sessions: Vec<Session>,
    conns: Vec<MemoryConnection>,
    body: String,
}

async fn setup(rooms: usize, members: usize) -> Setup {
    let mut limits = Limits::default();
    limits.commands_per_second = 0;
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .limits(limits)
        .maintenance(None)
        .build()
        .await
        .expect("engine");
    let mut senders = Vec::new();
    let mut sessions = Vec::new();
    let mut conns = Vec::new();
    for r in 0..rooms {
        let mut room = None;
        for m in 0..members {
            let user = UserId::new(format!("u{r}-{m}")).expect("user id");
            let (tx, rx) = MemoryTransport::new(QUEUE);
            let session = engine
                .open_session(Identity::new(user), tx)
                .await
                .expect("session");
            let reply = session
                .execute(Command::Join {
                    room: format!("room-{r}").into(),
                    create: true,
                })
                .await
                .expect("join");
            let Reply::Room { conversation, .. } = reply else {
                panic!("join answered {reply:?}")
            };
            room = Some(conversation.id);
            conns.push(rx);
            sessions.push(session);
        }
        // Member-joined events from the setup are not part of the measure.
        for c in &mut conns {
            while c.try_recv_frame().is_some() {}
        }
        let sender = sessions.pop().expect("a member");
        senders.push((sender, room.expect("room")));
    }
    Setup {
        senders,
        _sessions: sessions,
        conns,
        body: "x".repeat(64),
    }
}

fn drain(conns: &mut [MemoryConnection]) -> u64 {
    let mut n = 0;
    for c in conns {
        while c.try_recv_frame().is_some() {
            n += 1;
        }
    }
    n
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("engine_fanout");
    group.measurement_time(Duration::from_secs(5));
    for (rooms, members) in [(10usize, 50usize), (1, 1000)] {
        let mut s = rt.block_on(setup(rooms, members));
        group.throughput(Throughput::Elements((members - 1) as u64));
        group.bench_function(
            BenchmarkId::new("send", format!("{rooms}x{members}")),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let batch = (QUEUE / 2 * rooms) as u64;
                        let mut timed = Duration::ZERO;
                        let mut done = 0u64;
                        while done < iters {
                            let n = batch.min(iters - done);
                            let start = Instant::now();
                            for i in 0..n {
                                let (sender, conv) = &s.senders[(done + i) as usize % rooms];
                                sender
                                    .execute(Command::Send {
                                        conversation: *conv,
                                        body: s.body.clone(),
                                        client_id: None,
                                        reply_to: None,
                                        attachments: Vec::new(),
                                    })
                                    .await
                                    .expect("send");
                            }
                            timed += start.elapsed();
                            let got = drain(&mut s.conns);
                            assert_eq!(got, n * (members as u64 - 1), "every frame queued");
                            done += n;
                        }
                        timed
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = fanout
}
criterion_main!(benches);
