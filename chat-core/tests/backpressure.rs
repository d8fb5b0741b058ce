//! Backpressure and cost: a slow consumer is cut off, volatile events are dropped rather
//! than fatal, fan-out encodes once, and commands are rate limited.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use chat_core::engine::{Command, Event, Reply, ResumePoint};
use chat_core::memory::{MemoryTransport, Received};
use chat_core::model::Limits;
use chat_core::ports::{CloseReason, Encoder, Identity, JsonEncoder, SendError, Transport};
use chat_core::{ErrorCode, Result};
use common::{uid, World};

#[tokio::test]
async fn a_slow_consumer_is_cut_off_and_the_others_keep_receiving() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut slow = w.connect_to(&w.engine, "bob", 4).await;
    let mut carol = w.connect("carol").await;
    let room = alice.create_room("general", false).await;
    slow.join(room.id).await;
    carol.join(room.id).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(alice.send(room.id, &format!("m{i}")).await);
    }
    let got: Vec<_> = carol
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(got, sent, "the others keep receiving everything");
    assert!(slow.session.is_closed());
    assert_eq!(slow.conn.close_reason(), Some(CloseReason::SlowConsumer));
    let mut queued = 0;
    loop {
        match slow.conn.recv().await {
            Some(Received::Event(_)) => queued += 1,
            Some(Received::Closed(reason)) => {
                assert_eq!(reason, CloseReason::SlowConsumer);
                break;
            }
            None => panic!("the close reason must be reported"),
        }
    }
    assert_eq!(queued, 4, "what fit in the queue stays readable");
    let stats = w.engine.stats();
    assert_eq!(stats.slow_consumer_disconnects, 1);
    // The slow client resumes by seq and loses nothing.
    slow.session.close().await;
    let bob = w.connect("bob").await;
    let Reply::Resumed { conversations } = bob
        .run(Command::Resume {
            conversations: vec![ResumePoint {
                conversation: room.id,
                last_seq: 3,
            }],
        })
        .await
    else {
        panic!()
    };
    assert_eq!(conversations[0].messages, sent[3..].to_vec());
}

#[tokio::test]
async fn volatile_events_are_dropped_not_fatal_when_a_queue_is_full() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut bob = w.connect_to(&w.engine, "bob", 1).await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice
        .run(Command::Typing {
            conversation: room.id,
            typing: true,
        })
        .await;
    alice
        .run(Command::Typing {
            conversation: room.id,
            typing: false,
        })
        .await;
    assert!(!bob.session.is_closed(), "typing never cuts a client off");
    assert_eq!(w.engine.stats().volatile_dropped, 1);
    assert_eq!(bob.events().len(), 1);
}

#[tokio::test]
async fn fan_out_encodes_once_per_wire_format() {
    struct Counting(AtomicUsize);
    impl Encoder for Counting {
        fn format(&self) -> &'static str {
            "counting"
        }
        fn encode(&self, event: &Event) -> Result<Bytes> {
            self.0.fetch_add(1, Ordering::SeqCst);
            JsonEncoder.encode(event)
        }
    }
    let w = World::new().await;
    let counter = Arc::new(Counting(AtomicUsize::new(0)));
    let alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    let mut conns = Vec::new();
    for i in 0..20 {
        let (t, conn) = MemoryTransport::with_encoder(64, counter.clone());
        let s = w
            .engine
            .open_session(Identity::new(uid(&format!("u{i}"))), t)
            .await
            .expect("session");
        s.execute(Command::Join {
            room: room.id.into(),
            create: false,
        })
        .await
        .expect("join");
        conns.push((s, conn));
    }
    let json_reader = w.connect("json-reader").await;
    json_reader.join(room.id).await;
    let before = counter.0.load(Ordering::SeqCst);
    alice.send(room.id, "to everyone").await;
    assert_eq!(
        counter.0.load(Ordering::SeqCst) - before,
        1,
        "one encode for 20 recipients"
    );
    let frames: Vec<Bytes> = conns
        .iter_mut()
        .map(|(_, c)| {
            let mut last = None;
            while let Some(f) = c.try_recv_frame() {
                last = Some(f);
            }
            last.expect("a frame")
        })
        .collect();
    assert!(
        frames.windows(2).all(|p| p[0].as_ptr() == p[1].as_ptr()),
        "the bytes are shared, not copied"
    );
}

#[tokio::test]
async fn commands_are_rate_limited_per_session() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.commands_per_second = 1;
        l.command_burst = 2;
        l
    })
    .await;
    let alice = w.connect("alice").await;
    let other = w.connect("alice").await;
    alice.run(Command::UnreadTotal {}).await;
    alice.run(Command::UnreadTotal {}).await;
    assert_eq!(
        alice.deny(Command::UnreadTotal {}).await,
        ErrorCode::RateLimited
    );
    other.run(Command::UnreadTotal {}).await;
    w.advance(1000);
    alice.run(Command::UnreadTotal {}).await;
    assert_eq!(
        alice.deny(Command::UnreadTotal {}).await,
        ErrorCode::RateLimited
    );
}

/// A one-frame queue whose first two "full" answers wait (a bounded while) for each
/// other: two fan-outs then both see the session full before either cuts it off, which is
/// the race that once counted one slow consumer twice.
struct Rendezvous {
    inner: Arc<MemoryTransport>,
    full_seen: AtomicUsize,
    closes: AtomicUsize,
}

impl Transport for Rendezvous {
    fn encoder(&self) -> &Arc<dyn Encoder> {
        self.inner.encoder()
    }

    fn try_send(&self, frame: Bytes) -> std::result::Result<(), SendError> {
        let result = self.inner.try_send(frame);
        if result == Err(SendError::Full) && self.full_seen.fetch_add(1, Ordering::SeqCst) < 2 {
            for _ in 0..2_000 {
                if self.full_seen.load(Ordering::SeqCst) >= 2 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
        result
    }

    fn close(&self, reason: CloseReason) {
        self.closes.fetch_add(1, Ordering::SeqCst);
        self.inner.close(reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_durable_fan_outs_cut_a_slow_consumer_off_once() {
    const ROUNDS: usize = 10;
    const SENDERS: usize = 8;
    const EACH: usize = 4;
    let w = World::new().await;
    let owner = uid("owner");
    let Reply::Room { conversation, .. } = w
        .engine
        .execute_as(
            &owner,
            Command::CreateRoom {
                name: "busy".into(),
                visibility: Default::default(),
            },
        )
        .await
        .expect("room")
    else {
        panic!("a room")
    };
    let room = conversation.id;
    let senders: Vec<_> = (0..SENDERS).map(|i| uid(&format!("s{i}"))).collect();
    for s in &senders {
        w.engine
            .execute_as(
                s,
                Command::Join {
                    room: room.into(),
                    create: false,
                },
            )
            .await
            .expect("join");
    }
    for round in 0..ROUNDS {
        let (inner, conn) = MemoryTransport::new(1);
        let transport = Arc::new(Rendezvous {
            inner,
            full_seen: AtomicUsize::new(0),
            closes: AtomicUsize::new(0),
        });
        let slow = w
            .engine
            .open_session(
                Identity::new(uid(&format!("slow{round}"))),
                transport.clone(),
            )
            .await
            .expect("session");
        slow.execute(Command::Join {
            room: room.into(),
            create: false,
        })
        .await
        .expect("join");
        let tasks: Vec<_> = senders
            .iter()
            .cloned()
            .map(|s| {
                let engine = w.engine.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        engine
                            .execute_as(
                                &s,
                                Command::Send {
                                    conversation: room,
                                    body: format!("{i}"),
                                    client_id: None,
                                    reply_to: None,
                                    attachments: Vec::new(),
                                },
                            )
                            .await
                            .expect("send");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("sender");
        }
        assert!(slow.is_closed());
        assert_eq!(conn.close_reason(), Some(CloseReason::SlowConsumer));
        assert_eq!(transport.closes.load(Ordering::SeqCst), 1, "round {round}");
        assert_eq!(
            w.engine.stats().slow_consumer_disconnects,
            round as u64 + 1,
            "round {round}: one slow session, one disconnect"
        );
        slow.close().await;
    }
}
