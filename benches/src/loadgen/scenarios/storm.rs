//! Reconnect storm: most clients drop at once and come back at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::{errors, open_room_clients, room_of, run_prefix, server, start, token, user_of};
use crate::loadgen::client::{connect, join, phase, send_text, Client, Shared, SETUP_TIMEOUT};
use crate::loadgen::procfs::cpu_percent;
use crate::loadgen::proto::Proto;
use crate::loadgen::{Options, Outcome};

/// Reconnect storm: R rooms, member 0 of each keeps sending; the other members all drop
/// their connections at once, stay away for a second while messages keep coming, then
/// all reconnect at once. Ours resume by seq; the peers just rejoin (they keep no
/// history). Reports the time until every client is caught up, and (ours) checks that
/// nobody missed a message.
///
/// # Errors
/// When the setup fails.
pub async fn storm(opts: &Options, name: &str) -> Result<Outcome, String> {
    if opts.proto == Proto::ChatProto {
        return Err("the binary dialect (--proto chat-proto) runs `fanout` and `idle`; this scenario speaks JSON".into());
    }
    let (rooms, members) = (opts.rooms, opts.members.max(2));
    let prefix = run_prefix(name);
    let shared = Arc::new(Shared::new(rooms));
    let clients = open_room_clients(opts, &prefix, rooms, members, |_| false).await?;
    let stormers: Vec<Client>;
    let steady: Vec<Client>;
    (steady, stormers) = clients
        .into_iter()
        .partition(|c| (c.id as usize).is_multiple_of(members));
    let storm_n = stormers.len();
    // The senders run as an ordinary fan-out.
    let running = start(
        steady,
        &shared,
        members,
        opts.rate * rooms as f64,
        |_| false,
        |_| true,
    );
    let (storm_tx, storm_rx) = watch::channel(phase::RUN);
    let (back_tx, back_rx) = watch::channel(false);
    let back_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(storm_n);
    for mut c in stormers {
        let shared = shared.clone();
        let mut phase_rx = storm_rx.clone();
        let mut back = back_rx.clone();
        let opts = opts.clone();
        let prefix = prefix.clone();
        let back_count = back_count.clone();
        tasks.push(tokio::spawn(async move {
            let (_tx, mut none) = mpsc::channel::<()>(1);
            drop(_tx);
            c.pump(&shared, &mut none, &mut phase_rx, phase::DROP, false)
                .await;
            let _ = c.ws.close(None).await;
            while !*back.borrow_and_update() {
                if back.changed().await.is_err() {
                    break;
                }
            }
            let t = Instant::now();
            let caught = rejoin(&mut c, &opts, &prefix, &shared).await;
            let caught_ms = caught.map(|()| t.elapsed().as_secs_f64() * 1000.0);
            back_count.fetch_add(1, Ordering::Relaxed);
            c.pump(&shared, &mut none, &mut phase_rx, phase::STOP, false)
                .await;
            (c, caught_ms)
        }));
    }
    tokio::time::sleep(opts.warmup.max(Duration::from_secs(1))).await;
    let _ = storm_tx.send(phase::DROP);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s0 = server(opts);
    let _ = back_tx.send(true);
    // Everybody back and caught up, or the limit.
    let limit = Instant::now() + SETUP_TIMEOUT + opts.duration;
    while Instant::now() < limit && (back_count.load(Ordering::Relaxed) as usize) < storm_n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little more traffic after the storm, so late gaps would show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s1 = server(opts);
    let finished = running.finish(&shared, Duration::from_secs(3)).await;
    let (steady_done, skipped) = (finished.clients, finished.skipped);
    let _ = storm_tx.send(phase::STOP);
    let mut caught: Vec<f64> = Vec::new();
    let mut failed = 0u64;
    let mut missed = 0u64;
    let mut behind_clients = 0u64;
    for t in tasks {
        match tokio::time::timeout(SETUP_TIMEOUT, t).await {
            Ok(Ok((c, ms))) => {
                match ms {
                    Ok(ms) => caught.push(ms),
                    Err(_) => failed += 1,
                }
                if opts.proto == Proto::Chat {
                    let last = shared.room_seq[c.room].load(Ordering::Relaxed);
                    if c.tracker.contiguous < last {
                        behind_clients += 1;
                        let held = c.tracker.ahead.len() as u64;
                        missed += (last - c.tracker.contiguous).saturating_sub(held);
                    }
                }
            }
            _ => failed += 1,
        }
    }
    caught.sort_by(f64::total_cmp);
    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{rooms} rooms × {members} members; {storm_n} drop at once, stay away 1 s while member 0 of each room sends {:.0} msg/s, then reconnect at once",
        opts.rate
    );
    o.connections = (rooms * members) as u64;
    o.caught_up_ms = caught.last().copied();
    o.p50_ms = caught.get(caught.len() / 2).copied();
    o.messages_sent = shared.sent.load(Ordering::Relaxed);
    o.deliveries = shared.deliveries.load(Ordering::Relaxed);
    if let (Some(a), Some(b)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&a, &b));
        o.server_rss_kib = Some(b.rss_kib);
    }
    if opts.proto == Proto::Chat {
        o.lost = Some(missed);
        o.gaps = Some(behind_clients);
    } else {
        o.notes
            .push("no resume: a peer client cannot recover what it missed while away".into());
    }
    if failed > 0 {
        o.notes.push(format!(
            "{failed} of {storm_n} clients did not get back in time"
        ));
    }
    if skipped > 0 {
        o.notes.push(format!("{skipped} sends skipped"));
    }
    drop(steady_done);
    errors(&shared, &mut o);
    Ok(o)
}

/// Reconnects a storm client: ours resumes from its contiguous seq and applies the
/// replay; the peers join their room again.
pub(super) async fn rejoin(
    c: &mut Client,
    opts: &Options,
    prefix: &str,
    shared: &Shared,
) -> Result<(), String> {
    let tok = token(&opts.secret, &user_of(prefix, c.id));
    c.ws = connect(c.proto, &opts.addr, &tok).await?;
    match c.proto {
        Proto::Chat => {
            let frame = format!(
                r#"{{"id":"resume","type":"resume","conversations":[{{"conversation":"{}","last_seq":{}}}]}}"#,
                c.handle, c.tracker.contiguous
            );
            send_text(&mut c.ws, frame).await?;
            let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
            loop {
                let msg = tokio::time::timeout_at(deadline, c.ws.next())
                    .await
                    .map_err(|_| "resume timed out".to_owned())?;
                let Some(Ok(Message::Text(text))) = msg else {
                    match msg {
                        Some(Ok(_)) => continue,
                        _ => return Err("closed during resume".into()),
                    }
                };
                let text = text.as_str();
                if text.starts_with(r#"{"type":"reply""#) && text.contains(r#""id":"resume""#) {
                    apply_resume(c, text)?;
                    return Ok(());
                }
                if text.starts_with(r#"{"type":"error""#) {
                    return Err(format!("resume: {text}"));
                }
                c.on_text(shared, text);
            }
        }
        _ => {
            let room = room_of(prefix, c.room);
            join(&mut c.ws, c.proto, &room).await.map(|_| ())
        }
    }
}

fn apply_resume(c: &mut Client, text: &str) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("resume reply: {e}"))?;
    let convs = v["reply"]["conversations"]
        .as_array()
        .ok_or("resume reply without conversations")?;
    for conv in convs {
        if conv["outcome"] != "replayed" {
            return Err(format!("resume outcome {}", conv["outcome"]));
        }
        for m in conv["messages"].as_array().into_iter().flatten() {
            if let Some(seq) = m["seq"].as_u64() {
                c.tracker.on_seq(seq);
            }
        }
    }
    Ok(())
}
