//! chat-client under chaos: two users chat 10,000 messages each way through a TCP proxy
//! that cuts every connection 50–500 ms after it opens, and the server (SQLite) is
//! killed and restarted on the same file halfway through. Each side must receive every
//! message of the other exactly once, in seq order; history must hold exactly 20,000
//! messages; and every status the sender sees must converge to `read`.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_client::chat_core::engine::MessageView;
use chat_client::chat_core::model::MessageStatus;
use chat_client::chat_core::{ConversationId, Event, Seq, UserId};
use chat_client::{Client, ClientEvent, Config, Events, Page};
use common::Server;
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};

const EACH: u64 = 10_000;
const DEADLINE: Duration = Duration::from_secs(600);

/// A loopback proxy that cuts each connection at a random moment 50–500 ms after it
/// opened. `upstream` can be changed while it runs (the restarted server's address).
struct Proxy {
    addr: String,
    upstream: Arc<parking_lot::Mutex<String>>,
    cuts: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let upstream = Arc::new(parking_lot::Mutex::new(upstream.to_owned()));
        let cuts = Arc::new(AtomicU64::new(0));
        let (up, c) = (upstream.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = up.lock().clone();
                let cuts = c.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return; // the server is down: the client sees a refused handshake
                    };
                    let life = Duration::from_millis(fastrand::u64(50..=500));
                    let piped = tokio::io::copy_bidirectional(&mut client, &mut server);
                    if tokio::time::timeout(life, piped).await.is_err() {
                        cuts.fetch_add(1, Ordering::Relaxed);
                    }
                    // Dropping both ends cuts the connection mid-stream.
                });
            }
        });
        Proxy {
            addr,
            upstream,
            cuts,
        }
    }
}

/// What one side saw of the conversation.
#[derive(Default)]
struct Seen {
    /// Every seq delivered, in delivery order.
    seqs: Vec<Seq>,
    /// Bodies of the other side's messages.
    theirs: Vec<String>,
}

fn start_server(db: &std::path::Path) -> Server {
    let store = format!("sqlite:{}", db.display());
    Server::spawn(
        &["--store", &store],
        &[
            // Limits the client must pace itself to (per connection): 2,000 commands a
            // second with the default burst, and a flood cap of 4,000 frames a second.
            ("CHAT_COMMANDS_PER_SECOND", "2000"),
            ("CHAT_MAX_FRAMES_PER_WINDOW", "4000"),
        ],
    )
}

async fn connect(proxy: &Proxy, user: &'static str) -> (Client, Events) {
    let mut config = Config::new(format!("ws://{}/ws", proxy.addr));
    config.backoff_initial = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(500);
    config.gap_wait = Duration::from_millis(100);
    config.request_timeout = Duration::from_secs(5);
    // The first connection may be cut too: retry it until it holds.
    for _ in 0..100 {
        match Client::connect(
            config.clone(),
            move || async move { Ok(Server::token(user)) },
        )
        .await
        {
            Ok(c) => return c,
            Err(e) => eprintln!("{user}: first connection: {e}"),
        }
    }
    panic!("{user} never connected through the proxy");
}

/// Retries a command through the cuts (non-send commands fail with `Disconnected`).
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, chat_client::ClientError>>,
{
    for _ in 0..500 {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.code().is_none() => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: no answer after 500 attempts");
}

/// Reads `events` into `seen` until the other side's `EACH` messages and the last seq
/// have arrived. Marks read as it goes, and at the end until the server took it.
async fn read_side(
    me: &'static str,
    client: Client,
    mut events: Events,
    conversation: ConversationId,
    seen: Arc<parking_lot::Mutex<Seen>>,
    total: Seq,
) {
    let mut last_mark = 0;
    while let Some(event) = events.next().await {
        match event {
            ClientEvent::Event(Event::Message { message })
                if message.conversation == conversation =>
            {
                let mut s = seen.lock();
                s.seqs.push(message.seq);
                if message.sender.as_str() != me {
                    s.theirs.push(message.body.clone());
                }
            }
            ClientEvent::Closed { reason, .. } => panic!("{me}: the client closed: {reason}"),
            ClientEvent::Skipped { from, to, .. } => panic!("{me}: skipped {from}..{to}"),
            _ => {}
        }
        let (have, done) = {
            let s = seen.lock();
            (
                s.seqs.last().copied().unwrap_or(0),
                s.theirs.len() as u64 >= EACH && s.seqs.last() == Some(&total),
            )
        };
        // Read as it goes, like a user with the conversation open; fire and forget (a
        // cut fails it, and a later one covers it).
        if have >= last_mark + 500 {
            last_mark = have;
            let c = client.clone();
            tokio::spawn(async move {
                let _ = c.mark_read(conversation, have).await;
            });
        }
        if done {
            let marks = retry("mark_read", || client.mark_read(conversation, total)).await;
            assert_eq!(marks.read_seq, total, "{me}: read up to the end");
            return;
        }
    }
    panic!("{me}: the event stream ended");
}

async fn send_side(
    client: Client,
    conversation: ConversationId,
    prefix: &'static str,
    acked: Arc<AtomicU64>,
) -> Seq {
    let newest = Arc::new(AtomicU64::new(0));
    futures::stream::iter(0..EACH)
        .for_each_concurrent(64, |i| {
            let client = client.clone();
            let acked = acked.clone();
            let newest = newest.clone();
            async move {
                let sent = client
                    .send(conversation, format!("{prefix}-{i}"))
                    .await
                    .unwrap_or_else(|e| panic!("send {prefix}-{i}: {e}"));
                acked.fetch_add(1, Ordering::Relaxed);
                newest.fetch_max(sent.message.seq, Ordering::Relaxed);
            }
        })
        .await;
    newest.load(Ordering::Relaxed)
}

async fn full_history(client: &Client, conversation: ConversationId) -> Vec<MessageView> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map(|m: &MessageView| m.message.seq).unwrap_or(0);
        let page = retry("history", || {
            client.history(
                conversation,
                Page {
                    after: Some(after),
                    limit: Some(100),
                    ..Page::default()
                },
            )
        })
        .await;
        if page.messages.is_empty() {
            return all;
        }
        all.extend(page.messages);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_ten_thousand_messages_each_way_through_cuts_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let mut server = start_server(&db);
    let proxy = Proxy::start(&server.addr).await;

    let (alice, alice_events) = connect(&proxy, "alice").await;
    let (bob, bob_events) = connect(&proxy, "bob").await;
    let bob_id = UserId::new("bob").expect("id");
    let alice_id = UserId::new("alice").expect("id");
    retry("friend_request", || alice.friend_request(bob_id.clone())).await;
    retry("friend_accept", || bob.friend_accept(alice_id.clone())).await;
    let (direct, _) = retry("open_direct", || alice.open_direct(bob_id.clone())).await;
    let conversation = direct.id;
    // Bob follows it from its conversation_added event, or from his own open_direct.
    retry("open_direct", || bob.open_direct(alice_id.clone())).await;

    let total = EACH * 2;
    let alice_seen = Arc::new(parking_lot::Mutex::new(Seen::default()));
    let bob_seen = Arc::new(parking_lot::Mutex::new(Seen::default()));
    let acked = Arc::new(AtomicU64::new(0));
    let readers = tokio::spawn(futures::future::join(
        read_side(
            "alice",
            alice.clone(),
            alice_events,
            conversation,
            alice_seen.clone(),
            total,
        ),
        read_side(
            "bob",
            bob.clone(),
            bob_events,
            conversation,
            bob_seen.clone(),
            total,
        ),
    ));
    let senders = tokio::spawn(futures::future::join(
        send_side(alice.clone(), conversation, "a", acked.clone()),
        send_side(bob.clone(), conversation, "b", acked.clone()),
    ));

    let run = async {
        // Halfway: kill the server and start it again on the same file.
        while acked.load(Ordering::Relaxed) < EACH {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at = acked.load(Ordering::Relaxed);
        server.child.kill().expect("kill -9");
        server.child.wait().expect("wait");
        server = start_server(&db);
        *proxy.upstream.lock() = server.addr.clone();
        eprintln!("restarted the server after {at} acknowledged sends");
        let newest = senders.await.expect("senders");
        readers.await.expect("readers");
        newest
    };
    let (alice_newest, bob_newest) =
        tokio::time::timeout(DEADLINE, run)
            .await
            .unwrap_or_else(|_| {
                panic!(
                "not done in {DEADLINE:?}: {} acked, alice has {} of bob's, bob has {} of alice's",
                acked.load(Ordering::Relaxed),
                alice_seen.lock().theirs.len(),
                bob_seen.lock().theirs.len()
            )
            });
    let cuts = proxy.cuts.load(Ordering::Relaxed);
    eprintln!("the proxy cut {cuts} connections");
    assert!(
        cuts >= 20,
        "the proxy cut connections while they were in use ({cuts})"
    );

    for (who, seen, prefix) in [("alice", &alice_seen, "b"), ("bob", &bob_seen, "a")] {
        let s = seen.lock();
        // In seq order, each once: every delivered seq is one more than the last.
        assert!(
            s.seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{who}: seqs out of order or repeated"
        );
        assert_eq!(
            s.seqs.last().copied(),
            Some(total),
            "{who}: up to the last seq"
        );
        let unique: HashSet<&String> = s.theirs.iter().collect();
        assert_eq!(
            s.theirs.len() as u64,
            EACH,
            "{who}: every message of the other once"
        );
        assert_eq!(unique.len() as u64, EACH, "{who}: no message twice");
        let expected: HashSet<String> = (0..EACH).map(|i| format!("{prefix}-{i}")).collect();
        assert!(
            s.theirs.iter().all(|b| expected.contains(b)),
            "{who}: only the other's messages"
        );
    }

    // Statuses converge: each side's newest own message turns `read` (the receipts
    // themselves may have come while a connection was cut: they are not replayed).
    for (who, client, newest) in [("alice", &alice, alice_newest), ("bob", &bob, bob_newest)] {
        let mut status = None;
        for _ in 0..300 {
            let page = retry("history", || {
                client.history(
                    conversation,
                    Page {
                        before: Some(newest + 1),
                        limit: Some(1),
                        ..Page::default()
                    },
                )
            })
            .await;
            let m = &page.messages[0];
            assert_eq!((m.message.seq, m.message.sender.as_str()), (newest, who));
            status = m.status;
            if status == Some(MessageStatus::Read) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status,
            Some(MessageStatus::Read),
            "{who}: the newest own message"
        );
    }

    // History holds exactly 20,000 messages, seqs 1..=20,000, each body once, and from
    // each sender's side every one of its messages is `read`.
    for (who, client) in [("alice", &alice), ("bob", &bob)] {
        let history = full_history(client, conversation).await;
        assert_eq!(
            history.len() as u64,
            total,
            "{who}: history holds every message once"
        );
        assert!(
            history
                .iter()
                .enumerate()
                .all(|(i, m)| m.message.seq == i as u64 + 1),
            "{who}: history's seqs are 1..={total}"
        );
        let bodies: HashSet<&str> = history.iter().map(|m| m.message.body.as_str()).collect();
        assert_eq!(bodies.len() as u64, total, "{who}: no body twice");
        let unread: Vec<Seq> = history
            .iter()
            .filter(|m| m.message.sender.as_str() == who)
            .filter(|m| m.status != Some(MessageStatus::Read))
            .map(|m| m.message.seq)
            .collect();
        assert!(
            unread.is_empty(),
            "{who}: not `read`: {:?}",
            &unread[..unread.len().min(10)]
        );
    }
    alice.close();
    bob.close();
}
