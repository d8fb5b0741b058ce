//! Connect storms: every client arrives at once, as after a deploy.
//!
//! Two phases on one server:
//!
//! 1. **Join storm.** `rooms × members` clients, none seen before, open their connection
//!    and join their room (ours creates it on the first join), arriving at a fixed rate
//!    (`--arrivals`, 20,000/s by default: 10,000 in half a second). Measured: the time
//!    until the last join reply, connect-to-join-reply latency, failures, the server's
//!    CPU for the whole storm (until it goes quiet again), the load generator's own CPU,
//!    and the server's RSS per connection once they all sit idle in their rooms.
//! 2. **Reconnect storm.** All of them drop their sockets at once; once the server has
//!    gone quiet, all reconnect at once (no pacing): ours resume their room by seq, the
//!    peers join it again. The same figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::storm::rejoin;
use super::{room_of, run_prefix, server, token, user_of};
use crate::loadgen::client::{connect, join, new_histogram, Client, Shared, Ws};
use crate::loadgen::procfs::{sample, wait_quiet, ProcSample};
use crate::loadgen::proto::Proto;
use crate::loadgen::{Options, Outcome, StormFigures, StormPhase};

/// How long the server must stay under 5% of a core to count as quiet after a storm.
const QUIET_PERCENT: f64 = 5.0;

/// Runs both storms and reports them in [`Outcome::storm`].
///
/// # Errors
/// Never for a failed connection (those are counted); only when the scenario cannot run.
pub async fn connstorm(opts: &Options, name: &str) -> Result<Outcome, String> {
    if opts.proto == Proto::ChatProto {
        return Err("the binary dialect (--proto chat-proto) runs `fanout` and `idle`; this scenario speaks JSON".into());
    }
    let (rooms, members) = (opts.rooms.max(1), opts.members.max(1));
    let n = rooms * members;
    let prefix = run_prefix(name);
    // Tokens are minted before the clock starts: signing is the load generator's cost,
    // not the server's.
    let tokens: Vec<String> = (0..n as u32)
        .map(|id| token(&opts.secret, &user_of(&prefix, id)))
        .collect();
    let tokens = Arc::new(tokens);
    let base = server(opts);

    // Phase 1: first connection and first join, paced arrivals, rooms interleaved.
    let arrivals = opts.arrivals.max(1.0);
    let me0 = sample(std::process::id());
    let s0 = server(opts);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for id in 0..n as u32 {
        // Client `id` is member `id / rooms` of room `id % rooms`: rooms fill evenly.
        let room = id as usize % rooms;
        let at = t0 + Duration::from_secs_f64(f64::from(id) / arrivals);
        let tokens = tokens.clone();
        let addr = opts.addr.clone();
        let proto = opts.proto;
        let room_name = room_of(&prefix, room);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let start = Instant::now();
            let r = async {
                let mut ws: Ws = connect(proto, &addr, &tokens[id as usize]).await?;
                let handle = join(&mut ws, proto, &room_name).await?;
                Ok::<_, String>((ws, handle))
            }
            .await;
            (id, room, start.elapsed(), Instant::now(), r)
        }));
    }
    let mut hist = new_histogram();
    let mut clients = Vec::with_capacity(n);
    let mut failed = 0u64;
    let mut first_failure = None;
    let mut last_done = t0;
    for t in tasks {
        let Ok((id, room, took, done, r)) = t.await else {
            failed += 1;
            continue;
        };
        match r {
            Ok((ws, handle)) => {
                record(&mut hist, took);
                last_done = last_done.max(done);
                clients.push(Client::new(id, opts.proto, room, handle, ws));
            }
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
        }
    }
    let me1 = sample(std::process::id());
    let s_joined = server(opts);
    let quiet = settle(opts).await;
    let s_quiet = server(opts);
    let mut join_phase = phase(
        n,
        Some(arrivals),
        t0,
        last_done,
        &hist,
        failed,
        first_failure,
        (s0, s_joined, s_quiet),
        (me0, me1),
        quiet,
    );

    // Idle in their rooms: read the RSS once lazy work (pings, buffers) has settled
    let shared = Arc::new(Shared::new(rooms));
    let running = idle_readers(clients, &shared);
    // (`--duration`, 5 s in benches/run.sh).
    tokio::time::sleep(opts.duration).await;
    let idle = server(opts);
    if let (Some(b), Some(a)) = (base, idle) {
        join_phase.rss_kib = Some(a.rss_kib);
        if join_phase.clients > join_phase.failed {
            join_phase.rss_per_conn_kib = Some(
                a.rss_kib.saturating_sub(b.rss_kib) as f64
                    / (join_phase.clients - join_phase.failed) as f64,
            );
        }
    }
    let done = running
        .finish(&shared, Duration::from_millis(100))
        .await
        .clients;
    let mut clients: Vec<Client> = done.into_iter().map(|(c, _)| c).collect();

    // Phase 2: everyone closes at once; once the server has settled, everyone comes
    // back at once (no pacing) and resumes (ours) or joins again (the peers).
    futures::future::join_all(clients.iter_mut().map(|c| c.ws.close(None))).await;
    settle(opts).await;
    let back = clients.len();
    let me0 = sample(std::process::id());
    let s0 = server(opts);
    let t0 = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let opts = opts.clone();
            let prefix = prefix.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let r = rejoin(&mut c, &opts, &prefix, &shared).await;
                (start.elapsed(), Instant::now(), r, c)
            })
        })
        .collect();
    let mut hist = new_histogram();
    let mut failed = 0u64;
    let mut first_failure = None;
    let mut last_done = t0;
    let mut clients = Vec::with_capacity(back);
    for t in tasks {
        match t.await {
            Ok((took, done, Ok(()), c)) => {
                record(&mut hist, took);
                last_done = last_done.max(done);
                clients.push(c);
            }
            Ok((_, _, Err(e), _)) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e.to_string());
            }
        }
    }
    let me1 = sample(std::process::id());
    let s_back = server(opts);
    let quiet = settle(opts).await;
    let s_quiet = server(opts);
    let mut reconnect_phase = phase(
        back,
        None,
        t0,
        last_done,
        &hist,
        failed,
        first_failure,
        (s0, s_back, s_quiet),
        (me0, me1),
        quiet,
    );
    reconnect_phase.rss_kib = s_quiet.map(|s| s.rss_kib);
    futures::future::join_all(clients.iter_mut().map(|c| c.ws.close(None))).await;

    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{rooms} rooms × {members} members, {n} clients never seen before: connect and join their room at {arrivals:.0}/s; then all close at once and, once the server is quiet, all reconnect at once and resume (ours) or join again (the peers)"
    );
    o.connections = n as u64;
    o.setup_s = Some(join_phase.all_joined_s);
    o.p50_ms = join_phase.p50_ms;
    o.p99_ms = join_phase.p99_ms;
    o.rss_per_conn_kib = join_phase.rss_per_conn_kib;
    o.server_rss_kib = join_phase.rss_kib;
    o.errors = join_phase.failed + reconnect_phase.failed;
    o.storm = Some(StormFigures {
        join: join_phase,
        reconnect: reconnect_phase,
    });
    Ok(o)
}

/// Waits for the server to go quiet (under 5% of a core over half a second), at most
/// 60 s; returns how long that took.
async fn settle(opts: &Options) -> Duration {
    match opts.server_pid {
        Some(pid) => wait_quiet(pid, QUIET_PERCENT, Duration::from_secs(60)).await,
        None => Duration::ZERO,
    }
}

/// Clients that sit in their rooms reading (answering the peers' pings) until stopped.
fn idle_readers(clients: Vec<Client>, shared: &Arc<Shared>) -> super::Running {
    super::start(clients, shared, 1, 0.0, |_| false, |_| false)
}

/// One phase's figures from its readings.
#[allow(clippy::too_many_arguments)] // the readings of one phase, each used once
fn phase(
    clients: usize,
    arrivals: Option<f64>,
    t0: Instant,
    last_done: Instant,
    hist: &Histogram<u64>,
    failed: u64,
    first_failure: Option<String>,
    (s0, s_done, s_quiet): (Option<ProcSample>, Option<ProcSample>, Option<ProcSample>),
    (me0, me1): (Option<ProcSample>, Option<ProcSample>),
    quiet: Duration,
) -> StormPhase {
    let ms = |q: f64| (!hist.is_empty()).then(|| hist.value_at_quantile(q) as f64 / 1000.0);
    let span = last_done.duration_since(t0).as_secs_f64();
    StormPhase {
        clients: clients as u64,
        arrivals_per_s: arrivals,
        all_joined_s: span,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: (!hist.is_empty()).then(|| hist.max() as f64 / 1000.0),
        failed,
        first_failure,
        server_cpu_s: s0.zip(s_quiet).map(|(a, b)| b.cpu_s - a.cpu_s),
        server_cpu_to_last_reply_s: s0.zip(s_done).map(|(a, b)| b.cpu_s - a.cpu_s),
        loadgen_cpu_pct: me0.zip(me1).map(|(a, b)| {
            let wall = b.at.duration_since(a.at).as_secs_f64();
            if wall > 0.0 {
                (b.cpu_s - a.cpu_s) / wall * 100.0
            } else {
                0.0
            }
        }),
        quiet_after_s: quiet.as_secs_f64(),
        rss_kib: None,
        rss_per_conn_kib: None,
    }
}

fn record(hist: &mut Histogram<u64>, took: Duration) {
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
    let _ = hist.record(us.min(hist.high()));
}
