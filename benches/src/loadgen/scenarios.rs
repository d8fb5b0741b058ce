//! The scenarios: idle, fan-out, direct ping-pong, slow consumer, reconnect storm.
//!
//! Every scenario is bounded: setup steps time out ([`SETUP_TIMEOUT`]), load runs for a
//! set duration, draining and catching up have their own limits.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::client::{
    connect, connect_with, expect, join, new_histogram, phase, send_text, Client, Exit, Shared,
    SETUP_TIMEOUT,
};
use super::procfs::{cpu_percent, sample, ProcSample};
use super::proto::{Incoming, Proto, Stamp};
use super::{Options, Outcome};

/// A receive buffer small enough that a client that stops reading backs up into the
/// server quickly (4 KiB).
const SLOW_RCVBUF: u32 = 4096;

/// Mints the HS256 token our server expects: `sub` = the user, an hour to live.
pub fn token(secret: &str, user: &str) -> String {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims { sub: user, exp },
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// A prefix that keeps users and rooms of different runs apart on one server.
fn run_prefix(scenario: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{scenario}-{:x}", ms % 0xff_ffff_ffff)
}

fn user_of(prefix: &str, id: u32) -> String {
    format!("{prefix}-u{id}")
}

fn room_of(prefix: &str, room: usize) -> String {
    format!("{prefix}-r{room}")
}

fn server(opts: &Options) -> Option<ProcSample> {
    opts.server_pid.and_then(sample)
}

/// Connects `rooms × members` clients and joins each to its room (the first member of
/// each room first, so it creates the room). Client `id = room × members + member`.
async fn open_room_clients(
    opts: &Options,
    prefix: &str,
    rooms: usize,
    members: usize,
    slow: impl Fn(u32) -> bool,
) -> Result<Vec<Client>, String> {
    let one = |id: u32| {
        let room = id as usize / members;
        let user = user_of(prefix, id);
        let room_name = room_of(prefix, room);
        let tok = token(&opts.secret, &user);
        let proto = opts.proto;
        let addr = opts.addr.clone();
        let rcvbuf = slow(id).then_some(SLOW_RCVBUF);
        async move {
            let mut ws = connect_with(proto, &addr, &tok, rcvbuf).await?;
            let handle = join(&mut ws, proto, &room_name).await?;
            Ok::<Client, String>(Client {
                id,
                proto,
                room,
                handle,
                ws,
                tracker: Default::default(),
                written: 0,
            })
        }
    };
    let firsts: Vec<u32> = (0..rooms).map(|r| (r * members) as u32).collect();
    let rest: Vec<u32> = (0..(rooms * members) as u32)
        .filter(|id| *id as usize % members != 0)
        .collect();
    let mut clients = Vec::with_capacity(rooms * members);
    for batch in [firsts, rest] {
        let got: Vec<Result<Client, String>> = futures::stream::iter(batch.into_iter().map(one))
            .buffer_unordered(opts.setup_concurrency)
            .collect()
            .await;
        for c in got {
            clients.push(c?);
        }
    }
    clients.sort_by_key(|c| c.id);
    Ok(clients)
}

/// The running clients of a fan-out: their tasks, their send queues, the pacer.
struct Running {
    tasks: Vec<JoinHandle<(Client, Exit)>>,
    phase: watch::Sender<u8>,
    pacer: JoinHandle<u64>,
    pacer_stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Spawns a pump per client and a pacer that spreads `total_rate` messages per second
/// over the senders, interleaving rooms.
fn start(
    clients: Vec<Client>,
    shared: &Arc<Shared>,
    members: usize,
    total_rate: f64,
    slow: impl Fn(u32) -> bool,
    sends_from: impl Fn(u32) -> bool,
) -> Running {
    let (phase_tx, phase_rx) = watch::channel(phase::RUN);
    let mut senders: Vec<(usize, usize, mpsc::Sender<()>)> = Vec::new();
    let mut tasks = Vec::with_capacity(clients.len());
    for mut c in clients {
        let (tx, mut rx) = mpsc::channel::<()>(64);
        let is_slow = slow(c.id);
        if !is_slow && sends_from(c.id) {
            let member = c.id as usize % members;
            senders.push((member, c.room, tx));
        } else {
            drop(tx);
        }
        let shared = shared.clone();
        let mut phase_rx = phase_rx.clone();
        tasks.push(tokio::spawn(async move {
            let exit = c
                .pump(&shared, &mut rx, &mut phase_rx, phase::STOP, is_slow)
                .await;
            (c, exit)
        }));
    }
    senders.sort_by_key(|(m, r, _)| (*m, *r));
    let senders: Vec<mpsc::Sender<()>> = senders.into_iter().map(|(_, _, tx)| tx).collect();
    let pacer_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = pacer_stop.clone();
    let pacer = tokio::spawn(async move {
        let mut skipped = 0u64;
        if senders.is_empty() || total_rate <= 0.0 {
            return skipped;
        }
        let start = Instant::now();
        let mut issued = 0u64;
        let mut next = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * total_rate) as u64;
            while issued < due {
                if senders[next].try_send(()).is_err() {
                    skipped += 1;
                }
                issued += 1;
                next = (next + 1) % senders.len();
            }
        }
        skipped
    });
    Running {
        tasks,
        phase: phase_tx,
        pacer,
        pacer_stop,
    }
}

impl Running {
    /// Stops the pacer, waits for deliveries to settle (at most `limit`), stops the
    /// clients and returns them.
    async fn finish(self, shared: &Shared, limit: Duration) -> (Vec<(Client, Exit)>, u64) {
        self.pacer_stop.store(true, Ordering::Relaxed);
        let skipped = self.pacer.await.unwrap_or(0);
        let deadline = Instant::now() + limit;
        let mut last = shared.deliveries.load(Ordering::Relaxed);
        let mut still = 0;
        while Instant::now() < deadline && still < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = shared.deliveries.load(Ordering::Relaxed);
            if now == last {
                still += 1;
            } else {
                still = 0;
                last = now;
            }
        }
        let _ = self.phase.send(phase::STOP);
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        (out, skipped)
    }
}

fn percentiles(shared: &Shared, outcome: &mut Outcome) {
    let h = shared.hist.lock().unwrap_or_else(|p| p.into_inner());
    if !h.is_empty() {
        outcome.p50_ms = Some(h.value_at_quantile(0.50) as f64 / 1000.0);
        outcome.p99_ms = Some(h.value_at_quantile(0.99) as f64 / 1000.0);
        outcome.p999_ms = Some(h.value_at_quantile(0.999) as f64 / 1000.0);
        outcome.samples = h.len();
    }
}

fn errors(shared: &Shared, outcome: &mut Outcome) {
    outcome.errors = shared.errors.load(Ordering::Relaxed);
    outcome.server_closed = shared.server_closed.load(Ordering::Relaxed);
    if let Some(e) = shared
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        outcome.notes.push(format!("first error: {e}"));
    }
}

/// Fan-out: R rooms × M members, every member sending at `rate` messages per second
/// (or the rate that offers `offered` deliveries per second); with `slow_fraction`,
/// that share of the members stop reading (the slow-consumer scenario).
///
/// # Errors
/// When the setup fails.
pub async fn fanout(opts: &Options, name: &str) -> Result<Outcome, String> {
    let (rooms, members) = (opts.rooms, opts.members.max(2));
    let slow_every = if opts.slow_fraction > 0.0 {
        (1.0 / opts.slow_fraction).round().max(2.0) as u32
    } else {
        0
    };
    // Member 0 of each room always reads and sends; every `slow_every`-th other is slow.
    let slow = move |id: u32| slow_every > 0 && id as usize % members != 0 && id % slow_every == 1;
    let n = rooms * members;
    let slow_count = (0..n as u32).filter(|id| slow(*id)).count();
    let senders = n - slow_count;
    let per_member = match opts.offered {
        Some(d) => d / (senders as f64 * (members - 1) as f64),
        None => opts.rate,
    };
    let total_rate = per_member * senders as f64;
    let prefix = run_prefix(name);
    let shared = Arc::new(Shared::new(rooms));
    let t0 = Instant::now();
    let clients = open_room_clients(opts, &prefix, rooms, members, slow).await?;
    let setup = t0.elapsed();
    let running = start(clients, &shared, members, total_rate, slow, |_| true);

    tokio::time::sleep(opts.warmup).await;
    let d0 = shared.deliveries.load(Ordering::Relaxed);
    let s0 = server(opts);
    shared.recording.store(true, Ordering::Relaxed);
    let mut peak_rss = s0.map(|s| s.rss_kib).unwrap_or(0);
    let window_start = Instant::now();
    while window_start.elapsed() < opts.duration {
        tokio::time::sleep(Duration::from_millis(250).min(opts.duration)).await;
        if let Some(s) = server(opts) {
            peak_rss = peak_rss.max(s.rss_kib);
        }
    }
    shared.recording.store(false, Ordering::Relaxed);
    let d1 = shared.deliveries.load(Ordering::Relaxed);
    let s1 = server(opts);
    let dt = window_start.elapsed().as_secs_f64();
    let (done, skipped) = running.finish(&shared, Duration::from_secs(5)).await;

    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{rooms} rooms × {members} members, {per_member:.3} msg/s each, 64-byte bodies, {:.0} s after {:.0} s warm-up{}",
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        if slow_count > 0 {
            format!(", {slow_count} members stop reading")
        } else {
            String::new()
        }
    );
    o.connections = n as u64;
    o.setup_s = Some(setup.as_secs_f64());
    o.offered_per_s = Some(total_rate * (members - 1) as f64);
    o.deliveries_per_s = Some((d1 - d0) as f64 / dt);
    o.messages_sent = shared.sent.load(Ordering::Relaxed);
    o.deliveries = shared.deliveries.load(Ordering::Relaxed);
    percentiles(&shared, &mut o);
    if let (Some(a), Some(b)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&a, &b));
        o.server_rss_kib = Some(b.rss_kib);
        o.server_peak_rss_kib = Some(peak_rss);
    }
    if skipped > 0 {
        o.notes.push(format!(
            "{skipped} sends skipped (a client's send queue was full: the server or the load generator could not keep up)"
        ));
    }
    errors(&shared, &mut o);
    if slow_count == 0 {
        // Every message reaches every other member: count, and for ours check seqs.
        let expected: u64 = shared
            .room_sent
            .iter()
            .map(|s| s.load(Ordering::Relaxed) * (members as u64 - 1))
            .sum();
        o.lost = Some(expected.saturating_sub(o.deliveries));
        if opts.proto == Proto::Chat {
            let gaps = done
                .iter()
                .filter(|(c, _)| {
                    c.tracker.contiguous < shared.room_seq[c.room].load(Ordering::Relaxed)
                        || !c.tracker.ahead.is_empty()
                })
                .count() as u64;
            o.gaps = Some(gaps);
        }
    } else {
        o.slow_clients = Some(slow_count as u64);
    }
    Ok(o)
}

/// Idle: N connections that authenticate (ours: `hello` received; Socket.IO: namespace
/// connected; Python: the WebSocket is open) and then do nothing. Reports the server's
/// RSS growth per connection.
///
/// # Errors
/// When a connection fails.
pub async fn idle(opts: &Options, name: &str) -> Result<Outcome, String> {
    let n = opts.connections;
    let prefix = run_prefix(name);
    let base = server(opts);
    let t0 = Instant::now();
    let results: Vec<Result<_, String>> = futures::stream::iter((0..n as u32).map(|id| {
        let tok = token(&opts.secret, &user_of(&prefix, id));
        let proto = opts.proto;
        let addr = opts.addr.clone();
        async move { connect(proto, &addr, &tok).await }
    }))
    .buffer_unordered(opts.setup_concurrency)
    .collect()
    .await;
    let setup = t0.elapsed();
    let shared = Arc::new(Shared::new(1));
    let mut clients = Vec::with_capacity(n);
    let mut failed = 0u64;
    let mut first_failure = None;
    for (id, r) in results.into_iter().enumerate() {
        match r {
            Ok(ws) => clients.push(Client {
                id: id as u32,
                proto: opts.proto,
                room: 0,
                handle: String::new(),
                ws,
                tracker: Default::default(),
                written: 0,
            }),
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
        }
    }
    let connected = clients.len() as u64;
    let running = start(clients, &shared, 2, 0.0, |_| false, |_| false);
    // Let the server settle (lazy allocations, the first pings) before reading RSS.
    tokio::time::sleep(opts.duration.min(Duration::from_secs(5))).await;
    let after = server(opts);
    let (_done, _) = running.finish(&shared, Duration::from_millis(100)).await;
    let mut o = Outcome::new(opts, name);
    o.params = format!("{n} connections, authenticated, idle");
    o.connections = connected;
    o.setup_s = Some(setup.as_secs_f64());
    if let (Some(b), Some(a)) = (base, after) {
        o.server_rss_kib = Some(a.rss_kib);
        if connected > 0 {
            o.rss_per_conn_kib =
                Some((a.rss_kib.saturating_sub(b.rss_kib)) as f64 / connected as f64);
        }
    }
    if failed > 0 {
        o.notes.push(format!(
            "{failed} connections failed: {}",
            first_failure.unwrap_or_default()
        ));
    }
    errors(&shared, &mut o);
    Ok(o)
}

/// Direct ping-pong: two clients bounce a message back and forth (ours: in a direct
/// conversation between friends; the peers: a room of two). Reports the round trip.
///
/// # Errors
/// When the setup fails or a round trip times out.
pub async fn pingpong(opts: &Options, name: &str) -> Result<Outcome, String> {
    let prefix = run_prefix(name);
    let (ua, ub) = (user_of(&prefix, 0), user_of(&prefix, 1));
    let proto = opts.proto;
    let mut a = connect(proto, &opts.addr, &token(&opts.secret, &ua)).await?;
    let mut b = connect(proto, &opts.addr, &token(&opts.secret, &ub)).await?;
    let handle = match proto {
        Proto::Chat => {
            send_text(
                &mut a,
                format!(r#"{{"id":"f","type":"friend_request","user":"{ub}"}}"#),
            )
            .await?;
            expect(&mut a, proto, |i| matches!(i, Incoming::Reply)).await?;
            send_text(
                &mut b,
                format!(r#"{{"id":"f","type":"friend_accept","user":"{ua}"}}"#),
            )
            .await?;
            expect(&mut b, proto, |i| matches!(i, Incoming::Reply)).await?;
            send_text(
                &mut a,
                format!(r#"{{"id":"join","type":"open_direct","user":"{ub}"}}"#),
            )
            .await?;
            match expect(&mut a, proto, |i| matches!(i, Incoming::Joined(_))).await? {
                Incoming::Joined(id) => id,
                _ => return Err("open_direct answered something else".into()),
            }
        }
        _ => {
            let room = room_of(&prefix, 0);
            join(&mut a, proto, &room).await?;
            join(&mut b, proto, &room).await?
        }
    };
    let shared = Shared::new(1);
    let mut hist = new_histogram();
    let start = Instant::now();
    let mut trips = 0u64;
    let mut n = 0u32;
    let s0 = server(opts);
    while trips < opts.round_trips as u64 && start.elapsed() < opts.duration {
        let t = Instant::now();
        for leg in 0..2 {
            let (from, to) = if leg == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let stamp = Stamp {
                sent_ns: shared.epoch.elapsed().as_nanos() as u64,
                sender: 0,
                n,
            };
            n += 1;
            send_text(from, proto.send_frame(&handle, &stamp.body())).await?;
            expect(to, proto, |i| matches!(i, Incoming::Delivery { .. })).await?;
        }
        hist.saturating_record((t.elapsed().as_micros() as u64).max(1));
        trips += 1;
    }
    let s1 = server(opts);
    let _ = a.close(None).await;
    let _ = b.close(None).await;
    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{trips} round trips (A → B → A), one at a time{}",
        if proto == Proto::Chat {
            ", in a direct conversation between friends"
        } else {
            ", in a room of two"
        }
    );
    o.connections = 2;
    o.deliveries_per_s = Some(trips as f64 * 2.0 / start.elapsed().as_secs_f64());
    o.p50_ms = Some(hist.value_at_quantile(0.5) as f64 / 1000.0);
    o.p99_ms = Some(hist.value_at_quantile(0.99) as f64 / 1000.0);
    o.p999_ms = Some(hist.value_at_quantile(0.999) as f64 / 1000.0);
    o.samples = hist.len();
    o.notes
        .push("latency is the round trip: two deliveries".into());
    if let (Some(x), Some(y)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&x, &y));
        o.server_rss_kib = Some(y.rss_kib);
    }
    Ok(o)
}

/// Reconnect storm: R rooms, member 0 of each keeps sending; the other members all drop
/// their connections at once, stay away for a second while messages keep coming, then
/// all reconnect at once. Ours resume by seq; the peers just rejoin (they keep no
/// history). Reports the time until every client is caught up, and (ours) checks that
/// nobody missed a message.
///
/// # Errors
/// When the setup fails.
pub async fn storm(opts: &Options, name: &str) -> Result<Outcome, String> {
    let (rooms, members) = (opts.rooms, opts.members.max(2));
    let prefix = run_prefix(name);
    let shared = Arc::new(Shared::new(rooms));
    let clients = open_room_clients(opts, &prefix, rooms, members, |_| false).await?;
    let stormers: Vec<Client>;
    let steady: Vec<Client>;
    (steady, stormers) = clients
        .into_iter()
        .partition(|c| c.id as usize % members == 0);
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
    let (steady_done, skipped) = running.finish(&shared, Duration::from_secs(3)).await;
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
async fn rejoin(
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

/// Sends one frame on a raw socket and closes it: used to check a server is up.
///
/// # Errors
/// When the server does not answer the handshake.
pub async fn probe(opts: &Options) -> Result<(), String> {
    let tok = token(&opts.secret, "probe");
    let mut ws = connect(opts.proto, &opts.addr, &tok).await?;
    ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    let _ = ws.flush().await;
    Ok(())
}
