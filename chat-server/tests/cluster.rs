//! Three real `chat-server` processes on one PostgreSQL schema and one bus, once on Redis
//! and once on NATS. Each test asserts exact counts: every message reaches every member
//! once with gap-free seqs, receipts, typing and presence cross nodes, a killed node's
//! users go offline and its clients lose nothing acknowledged, a bus outage leaves no
//! connected client short of a message, and a PostgreSQL restart never gives a false ack.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::cluster::{sent_seq, Client, Cluster, Kind, PRESENCE_TTL};
use common::pg::PrivatePg;
use serde_json::{json, Value};

/// Runs each scenario on Redis and on NATS.
macro_rules! on_both_buses {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Redis).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Nats).await;
                }
            )*
        }
    };
}

on_both_buses!(
    a_room_across_three_nodes_gets_every_message_once_in_order,
    receipts_and_typing_cross_nodes_in_a_direct_conversation,
    a_user_on_two_nodes_gets_everything_on_both_and_goes_offline_once,
    a_killed_node_loses_nothing_acknowledged,
    a_bus_outage_leaves_no_connected_client_short,
    a_postgres_restart_never_acks_falsely_and_recovers,
);

const LONG: Duration = Duration::from_secs(20);

fn conversation_of(reply: &Value) -> String {
    reply["conversation"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a conversation in {reply}"))
        .to_owned()
}

async fn room(owner: &mut Client, name: &str, members: &mut [&mut Client]) -> String {
    let reply = owner
        .call(json!({"type":"create_room","name":name,"visibility":"public"}))
        .await;
    let id = conversation_of(&reply);
    for m in members.iter_mut() {
        m.call(json!({"type":"join","room":id,"create":false}))
            .await;
    }
    id
}

async fn befriend(a: &mut Client, b: &mut Client) {
    a.call(json!({"type":"friend_request","user":b.user})).await;
    b.call(json!({"type":"friend_accept","user":a.user})).await;
}

/// Every seq from 1 to `last` once, from this client's events and its own acks.
fn assert_whole(who: &str, events: &[u64], own: &BTreeSet<u64>, last: u64) {
    let mut seen = BTreeSet::new();
    for s in events {
        assert!(seen.insert(*s), "{who} got seq {s} twice: {events:?}");
    }
    assert!(
        events.windows(2).all(|w| w[0] < w[1]),
        "{who} got seqs out of order: {events:?}"
    );
    seen.extend(own.iter().copied());
    let want: BTreeSet<u64> = (1..=last).collect();
    assert_eq!(seen, want, "{who}: every seq from 1 to {last}");
}

async fn a_room_across_three_nodes_gets_every_message_once_in_order(kind: Kind) {
    const EACH: usize = 20;
    let c = Cluster::start(kind, "room").await;
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(c.connect(i % 3, &format!("m{i}")).await);
    }
    let (owner, rest) = clients.split_first_mut().expect("six");
    let mut rest: Vec<&mut Client> = rest.iter_mut().collect();
    let id = room(owner, "all-nodes", &mut rest).await;
    for cl in clients.iter_mut() {
        cl.events.clear();
    }
    // Everyone sends at once.
    let mut tasks = Vec::new();
    for mut cl in clients {
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut own = BTreeSet::new();
            for k in 0..EACH {
                let reply = cl
                    .call(json!({"type":"send","conversation":id,"body":format!("{} {k}", cl.user),"client_id":format!("{}-{k}", cl.user)}))
                    .await;
                own.insert(sent_seq(&reply));
            }
            (cl, own)
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.expect("a sender"));
    }
    let total = (6 * EACH) as u64;
    for (cl, own) in &mut done {
        let own_ = own.clone();
        let id_ = id.clone();
        let whole = cl
            .until(LONG, |events| {
                let got: BTreeSet<u64> = events
                    .iter()
                    .filter(|e| e["type"] == "message" && e["message"]["conversation"] == *id_)
                    .filter_map(|e| e["message"]["seq"].as_u64())
                    .chain(own_.iter().copied())
                    .collect();
                got.len() as u64 >= total
            })
            .await;
        assert!(whole, "{} did not get every message", cl.user);
        cl.settle(Duration::from_millis(300)).await;
        assert_whole(&cl.user, &cl.message_seqs(&id), own, total);
    }
    // One publication per send, whatever the members: each message crossed the bus
    // once (plus joins, presence and the like, which are not messages).
    let published = c.metric("chat_bus_published_total");
    assert!(published >= total, "every send was published: {published}");
}

async fn receipts_and_typing_cross_nodes_in_a_direct_conversation(kind: Kind) {
    let c = Cluster::start(kind, "direct").await;
    let mut alice = c.connect(0, "alice").await;
    let mut bob = c.connect(1, "bob").await;
    befriend(&mut alice, &mut bob).await;
    let reply = alice.call(json!({"type":"open_direct","user":"bob"})).await;
    let id = conversation_of(&reply);
    let seq = sent_seq(
        &alice
            .call(json!({"type":"send","conversation":id,"body":"hi bob"}))
            .await,
    );
    let id_ = id.clone();
    assert!(
        bob.until(LONG, |ev| ev.iter().any(|e| e["type"] == "message"
            && e["message"]["conversation"] == *id_
            && e["message"]["seq"] == seq))
            .await,
        "bob got the message on another node"
    );
    bob.call(json!({"type":"mark_delivered","conversation":id,"seq":seq}))
        .await;
    bob.call(json!({"type":"mark_read","conversation":id,"seq":seq}))
        .await;
    bob.call(json!({"type":"typing","conversation":id,"typing":true}))
        .await;
    assert!(
        alice
            .until(LONG, |ev| {
                let read = ev
                    .iter()
                    .any(|e| e["type"] == "receipt" && e["user"] == "bob" && e["read_seq"] == seq);
                let delivered = ev.iter().any(|e| {
                    e["type"] == "receipt" && e["user"] == "bob" && e["delivered_seq"] == seq
                });
                let typing = ev
                    .iter()
                    .any(|e| e["type"] == "typing" && e["user"] == "bob" && e["typing"] == true);
                read && delivered && typing
            })
            .await,
        "alice got bob's receipts and typing from another node: {:?}",
        alice.events
    );
}

fn presence_of<'a>(events: &'a [Value], user: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "presence" && e["user"] == user)
        .collect()
}

async fn a_user_on_two_nodes_gets_everything_on_both_and_goes_offline_once(kind: Kind) {
    let c = Cluster::start(kind, "twice").await;
    let mut alice0 = c.connect(0, "alice").await;
    let mut carol = c.connect(2, "carol").await;
    befriend(&mut alice0, &mut carol).await;
    let mut alice1 = c.connect(1, "alice").await;
    let id = room(&mut carol, "both", &mut [&mut alice0]).await;
    alice0.settle(Duration::from_millis(300)).await;
    alice1.settle(Duration::from_millis(300)).await;
    for k in 0..5 {
        carol
            .call(json!({"type":"send","conversation":id,"body":format!("m{k}")}))
            .await;
    }
    for a in [&mut alice0, &mut alice1] {
        let id_ = id.clone();
        assert!(
            a.until(LONG, |ev| ev
                .iter()
                .filter(|e| e["type"] == "message" && e["message"]["conversation"] == *id_)
                .count()
                >= 5)
                .await,
            "both of alice's connections get every message"
        );
    }
    assert_eq!(alice0.message_seqs(&id), vec![1, 2, 3, 4, 5]);
    assert_eq!(alice1.message_seqs(&id), vec![1, 2, 3, 4, 5]);
    carol.settle(Duration::from_millis(300)).await;
    carol.events.clear();
    // One connection closes: alice is still online on the other node.
    alice0.close().await;
    carol.settle(Duration::from_secs(2)).await;
    assert!(
        presence_of(&carol.events, "alice").is_empty(),
        "alice went offline while still connected on node 1: {:?}",
        carol.events
    );
    alice1.close().await;
    assert!(
        carol
            .until(LONG, |ev| presence_of(ev, "alice")
                .iter()
                .any(|p| p["online"] == false))
            .await,
        "carol hears alice went offline once both connections closed"
    );
    carol.settle(Duration::from_millis(500)).await;
    assert_eq!(
        presence_of(&carol.events, "alice").len(),
        1,
        "told once: {:?}",
        carol.events
    );
}

/// Reads a whole conversation's history: seq → (sender, client id, body).
async fn history(cl: &mut Client, id: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after = 0u64;
    loop {
        let page = cl
            .call(json!({"type":"history","conversation":id,"after":after,"limit":100}))
            .await;
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        let Some(last) = msgs.last().and_then(|m| m["seq"].as_u64()) else {
            break;
        };
        after = last;
        out.extend(msgs);
    }
    out
}

async fn a_killed_node_loses_nothing_acknowledged(kind: Kind) {
    let mut c = Cluster::start(kind, "kill").await;
    let mut a = c.connect(0, "a").await;
    let mut b = c.connect(1, "b").await;
    let mut d = c.connect(2, "d").await;
    befriend(&mut a, &mut d).await;
    let id = room(&mut a, "kill", &mut [&mut b, &mut d]).await;
    a.settle(Duration::from_millis(300)).await;
    a.events.clear();
    // d pipelines sends on node 2; node 2 dies mid-stream.
    let mut written = Vec::new();
    let mut ids = HashMap::new();
    for k in 0..40 {
        let cid = format!("d-{k}");
        let rid = d
            .send_cmd(json!({"type":"send","conversation":id,"body":cid,"client_id":cid}))
            .await;
        ids.insert(rid, cid.clone());
        written.push(cid);
        if k == 20 {
            c.nodes[2].take().expect("node 2").kill();
            break;
        }
    }
    // What node 2 acknowledged before it died.
    d.settle(Duration::from_millis(500)).await;
    let mut acked: HashMap<String, u64> = HashMap::new();
    for (rid, cid) in &ids {
        if let Some(reply) = d.take_answer(rid) {
            if reply["type"] == "reply" {
                acked.insert(cid.clone(), sent_seq(&reply["reply"]));
            }
        }
    }
    // The other two keep serving.
    let sa = sent_seq(
        &a.call(json!({"type":"send","conversation":id,"body":"a after"}))
            .await,
    );
    b.call(json!({"type":"send","conversation":id,"body":"b after"}))
        .await;
    assert!(sa > 0);
    // d's node is gone: a hears d went offline within the lease (plus a renewal period).
    let ttl = humantime::parse_duration(PRESENCE_TTL).expect("ttl");
    assert!(
        a.until(ttl * 3 + Duration::from_secs(2), |ev| presence_of(ev, "d")
            .iter()
            .any(|p| p["online"] == false))
            .await,
        "a did not hear that d (on the killed node) went offline: {:?}",
        a.events
    );
    // d reconnects to node 0, resumes, and re-sends every unacknowledged client id.
    let mut d = c.connect(0, "d").await;
    let resumed = d
        .call(json!({"type":"resume","conversations":[{"conversation":id,"last_seq":0}]}))
        .await;
    assert_eq!(
        resumed["conversations"][0]["outcome"], "replayed",
        "{resumed}"
    );
    let replayed: BTreeSet<u64> = resumed["conversations"][0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    for seq in acked.values() {
        assert!(
            replayed.contains(seq),
            "acknowledged seq {seq} is in the replay"
        );
    }
    for cid in &written {
        let reply = d
            .call(json!({"type":"send","conversation":id,"body":cid,"client_id":cid}))
            .await;
        let seq = sent_seq(&reply);
        if let Some(s) = acked.get(cid) {
            assert_eq!(seq, *s, "an acknowledged send keeps its seq");
            assert_eq!(reply["duplicate"], true);
        }
    }
    let all = history(&mut d, &id).await;
    let seqs: Vec<u64> = all.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gaps");
    for cid in &written {
        let n = all
            .iter()
            .filter(|m| m["client_id"] == *cid.as_str())
            .count();
        assert_eq!(n, 1, "{cid} stored exactly once");
    }
    for (cid, seq) in &acked {
        let m = all
            .iter()
            .find(|m| m["seq"] == *seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} is missing"));
        assert_eq!(m["client_id"], *cid.as_str());
        assert_eq!(m["body"], *cid.as_str());
    }
}

async fn a_bus_outage_leaves_no_connected_client_short(kind: Kind) {
    let c = Cluster::start(kind, "outage").await;
    let mut a = c.connect(0, "a").await;
    let mut b = c.connect(1, "b").await;
    let mut x = c.connect(2, "x").await;
    let id = room(&mut a, "outage", &mut [&mut b, &mut x]).await;
    for cl in [&mut a, &mut b, &mut x] {
        cl.settle(Duration::from_millis(200)).await;
        cl.events.clear();
    }
    let mut own: HashMap<String, BTreeSet<u64>> = HashMap::new();
    async fn send(cl: &mut Client, id: &str, k: usize) -> (String, u64) {
        let body = format!("{} {k}", cl.user);
        let r = cl
            .call(json!({"type":"send","conversation":id,"body":body}))
            .await;
        (cl.user.clone(), sent_seq(&r))
    }
    for k in 0..60 {
        if k == 20 {
            c.bus.down().await;
        }
        if k == 40 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            c.bus.up().await;
        }
        let (u, s) = send(&mut a, &id, k).await;
        own.entry(u).or_default().insert(s);
        let (u, s) = send(&mut b, &id, k).await;
        own.entry(u).or_default().insert(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Traffic after the bus is back, so that nodes see the gaps at once too.
    for k in 60..70 {
        let (u, s) = send(&mut a, &id, k).await;
        own.entry(u).or_default().insert(s);
    }
    let last = 130;
    for cl in [&mut a, &mut b, &mut x] {
        let mine = own.get(&cl.user).cloned().unwrap_or_default();
        let id_ = id.clone();
        let whole = cl
            .until(Duration::from_secs(30), |ev| {
                ev.iter()
                    .filter(|e| e["type"] == "message" && e["message"]["conversation"] == *id_)
                    .filter_map(|e| e["message"]["seq"].as_u64())
                    .chain(mine.iter().copied())
                    .collect::<BTreeSet<u64>>()
                    .len()
                    >= last
            })
            .await;
        assert!(
            whole,
            "{} is short of messages after the outage: {:?}",
            cl.user,
            cl.message_seqs(&id)
        );
        cl.settle(Duration::from_millis(300)).await;
        assert_whole(&cl.user, &cl.message_seqs(&id), &mine, last as u64);
        assert!(
            !cl.events.iter().any(|e| e["type"] == "resume_required"),
            "the store was up: every gap is filled, no resume needed"
        );
    }
    assert!(
        c.metric("chat_bus_resyncs_total") >= 1,
        "the reconnect is counted"
    );
    assert!(
        c.metric("chat_bus_filled_messages_total") >= 1,
        "the gap fill is counted"
    );
}

async fn a_postgres_restart_never_acks_falsely_and_recovers(kind: Kind) {
    let mut pg = PrivatePg::start();
    let c = Cluster::start_on(kind, "pgrestart", &pg.url()).await;
    let mut a = c.connect(0, "a").await;
    let mut b = c.connect(1, "b").await;
    let mut x = c.connect(2, "x").await;
    let id = room(&mut a, "pg", &mut [&mut b, &mut x]).await;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut refused = 0;
    for k in 0..30 {
        if k == 10 {
            pg.stop();
        }
        if k == 20 {
            pg.start_again();
        }
        for cl in [&mut a, &mut b, &mut x] {
            let cid = format!("{}-{k}", cl.user);
            match cl
                .try_call(json!({"type":"send","conversation":id,"body":cid,"client_id":cid}))
                .await
            {
                Ok(r) => {
                    acked.insert(cid, sent_seq(&r));
                }
                Err(e) => {
                    assert_eq!(e["code"], "unavailable", "an outage is `unavailable`: {e}");
                    refused += 1;
                }
            }
        }
        if (10..20).contains(&k) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(refused > 0, "sends during the outage were refused");
    // Recovered without restarting a node: each node acks again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for cl in [&mut a, &mut b, &mut x] {
        loop {
            let cid = format!("{}-after", cl.user);
            match cl
                .try_call(json!({"type":"send","conversation":id,"body":cid,"client_id":cid}))
                .await
            {
                Ok(r) => {
                    acked.insert(cid, sent_seq(&r));
                    break;
                }
                Err(e) => {
                    assert_eq!(e["code"], "unavailable", "{e}");
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "node of {} did not recover",
                        cl.user
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    let all = history(&mut a, &id).await;
    for (cid, seq) in &acked {
        let m = all
            .iter()
            .find(|m| m["client_id"] == *cid.as_str())
            .unwrap_or_else(|| panic!("acknowledged {cid} is not stored: a false ack"));
        assert_eq!(m["seq"], *seq, "{cid}");
    }
    let seqs: Vec<u64> = all.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gaps");
}
