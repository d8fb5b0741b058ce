//! Soak: steady traffic for a bounded time, with a reconnect storm every period (a minute
//! by default): every storm client drops its connection at once, and all come back at
//! once and resume. After each storm the server's memory is read from `/proc` and the
//! engine's stats from the admin route, to tell a leak (memory that grows with every
//! storm, or sessions, users or live conversations that do not return to where they
//! were) from memory the allocator keeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::storm::rejoin;
use super::{open_room_clients, run_prefix, start};
use crate::loadgen::admin::admin_stats;
use crate::loadgen::client::{phase, Client, Exit, Shared};
use crate::loadgen::procfs::{anonymous_kib, sample, wait_quiet};
use crate::loadgen::proto::Proto;
use crate::loadgen::Options;

/// How long the server may take to count a storm's connections gone or back.
const COUNT_LIMIT: Duration = Duration::from_secs(30);

/// The soak's own settings (the rest comes from [`Options`]: address, server pid,
/// secret, admin key, rooms, the steady rate per room, connections opened at once).
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// How long the soak runs: one storm per `period` within it.
    pub minutes: f64,
    /// Clients that drop and come back in each storm.
    pub storm_clients: usize,
    /// Time between storms.
    pub period: Duration,
    /// Traffic after a storm before memory is read.
    pub settle: Duration,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            minutes: 10.0,
            storm_clients: 2_000,
            period: Duration::from_secs(60),
            settle: Duration::from_secs(5),
        }
    }
}

/// The server after one storm (storm 0: before the first).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StormSample {
    /// 0 for the baseline, then 1, 2, …
    pub storm: u32,
    /// Seconds since the baseline.
    pub at_s: f64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Anonymous memory (heap, stacks), KiB.
    pub anon_kib: Option<u64>,
    /// Threads of the server.
    pub threads: u64,
    /// `connections`, `online_users`, `live_conversations` once every client was back.
    pub back: Option<[u64; 3]>,
    /// The same while the storm clients were away.
    pub away: Option<[u64; 3]>,
    /// Messages the engine stored in all.
    pub messages_sent: Option<u64>,
    /// From the drop until the last storm client was back and resumed, ms.
    pub storm_ms: Option<f64>,
    /// Storm clients that could not come back (left out of later storms).
    pub failed: u64,
}

/// What a soak measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SoakReport {
    /// The system under test.
    pub label: String,
    /// The parameters, in words.
    pub params: String,
    /// One sample per storm, the baseline first.
    pub samples: Vec<StormSample>,
    /// Least-squares slope of RSS over the storms after the first, KiB per storm.
    pub rss_slope_kib: Option<f64>,
    /// The same for anonymous memory.
    pub anon_slope_kib: Option<f64>,
    /// `connections`, `online_users`, `live_conversations` after every client left.
    pub after_all_left: Option<[u64; 3]>,
    /// Deliveries counted by the clients.
    pub deliveries: u64,
    /// Error frames received.
    pub errors: u64,
    /// Whatever did not go as planned.
    pub notes: Vec<String>,
}

/// Least-squares slope of `y` over `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn triple(stats: &serde_json::Value) -> [u64; 3] {
    let get = |k: &str| stats[k].as_u64().unwrap_or(u64::MAX);
    [
        get("connections"),
        get("online_users"),
        get("live_conversations"),
    ]
}

/// Polls the stats until `connections` is `want` (at most [`COUNT_LIMIT`]); returns the
/// last stats read.
async fn stats_when(opts: &Options, key: &str, want: u64) -> Result<serde_json::Value, String> {
    let start = Instant::now();
    loop {
        let stats = admin_stats(&opts.addr, key).await?;
        if stats["connections"].as_u64() == Some(want) || start.elapsed() > COUNT_LIMIT {
            return Ok(stats);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Pumps = (watch::Sender<u8>, Vec<JoinHandle<(Client, Exit)>>);

/// Pumps each storm client (reading what arrives) until the phase reaches `DROP`.
fn pump(clients: Vec<Client>, shared: &Arc<Shared>) -> Pumps {
    let (tx, rx) = watch::channel(phase::RUN);
    let tasks = clients
        .into_iter()
        .map(|mut c| {
            let shared = shared.clone();
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let (_none_tx, mut none) = mpsc::channel::<()>(1);
                let exit = c
                    .pump(&shared, &mut none, &mut rx, phase::DROP, false)
                    .await;
                (c, exit)
            })
        })
        .collect();
    (tx, tasks)
}

/// Stops the pumps and closes every storm client's connection at once.
async fn drop_all((tx, tasks): Pumps, notes: &mut Vec<String>) -> Vec<Client> {
    let _ = tx.send(phase::DROP);
    let mut clients = Vec::with_capacity(tasks.len());
    let mut closed_by_server = 0;
    for t in tasks {
        if let Ok((c, exit)) = t.await {
            if exit != Exit::Phase {
                closed_by_server += 1;
            }
            clients.push(c);
        }
    }
    if closed_by_server > 0 {
        notes.push(format!(
            "{closed_by_server} storm clients had lost their connection before a storm"
        ));
    }
    futures::future::join_all(clients.iter_mut().map(|c| async {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.ws.close(None)).await;
    }))
    .await;
    clients
}

/// The server's memory now, after `settle` of traffic and once it is quiet.
async fn read_memory(opts: &Options, so: &SoakOptions, s: &mut StormSample) -> Result<(), String> {
    tokio::time::sleep(so.settle).await;
    let pid = opts.server_pid.ok_or("the soak needs --pid")?;
    wait_quiet(pid, 15.0, Duration::from_secs(30)).await;
    let p = sample(pid).ok_or("the server process is gone")?;
    s.rss_kib = p.rss_kib;
    s.threads = p.threads;
    s.anon_kib = anonymous_kib(pid);
    Ok(())
}

/// The soak (ours only: it resumes by seq and reads the admin stats). `opts.rooms` rooms,
/// each with one steady sender at `opts.rate` messages per second and its share of the
/// `storm_clients`, which drop and come back every `period` for `minutes`.
///
/// # Errors
/// When the setup fails, or the server's stats or `/proc` entry cannot be read.
pub async fn soak(opts: &Options, so: &SoakOptions) -> Result<SoakReport, String> {
    if opts.proto != Proto::Chat {
        return Err("the soak runs against our server only".into());
    }
    let key = opts
        .admin_key
        .clone()
        .ok_or("the soak needs --admin-key (the server's stats)")?;
    let rooms = opts.rooms.max(1);
    let per_room = so.storm_clients.div_ceil(rooms).max(1);
    let members = per_room + 1;
    let prefix = run_prefix("soak");
    let clients = open_room_clients(opts, &prefix, rooms, members, |_| false).await?;
    let (steady, stormers): (Vec<Client>, Vec<Client>) = clients
        .into_iter()
        .partition(|c| (c.id as usize).is_multiple_of(members));
    let steady_n = steady.len() as u64;
    let mut report = SoakReport {
        label: opts.label.clone(),
        params: format!(
            "{rooms} rooms, each with a sender at {} msg/s (64-byte bodies) and {per_room} members that drop at once every {:.0} s and come back at once ({} clients per storm, {} connections at a time), resuming by seq; {:.1} min; memory read {:.0} s after each storm once the server is quiet",
            opts.rate,
            so.period.as_secs_f64(),
            stormers.len(),
            opts.setup_concurrency,
            so.minutes,
            so.settle.as_secs_f64(),
        ),
        ..SoakReport::default()
    };
    let shared = Arc::new(Shared::new(rooms));
    let running = start(
        steady,
        &shared,
        members,
        opts.rate * rooms as f64,
        |_| false,
        |_| true,
    );
    let mut pumps = pump(stormers, &shared);

    let mut base = StormSample::default();
    read_memory(opts, so, &mut base).await?;
    let all = stats_when(opts, &key, steady_n + (rooms * per_room) as u64).await?;
    base.back = Some(triple(&all));
    base.messages_sent = all["messages_sent"].as_u64();
    let expected_back = triple(&all);
    report.samples.push(base);
    let t0 = Instant::now();
    let storms = ((so.minutes * 60.0) / so.period.as_secs_f64())
        .floor()
        .max(1.0) as u32;

    for storm in 1..=storms {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + so.period * storm)).await;
        let mut s = StormSample {
            storm,
            at_s: t0.elapsed().as_secs_f64(),
            ..StormSample::default()
        };
        let started = Instant::now();
        let clients = drop_all(pumps, &mut report.notes).await;
        s.away = Some(triple(&stats_when(opts, &key, steady_n).await?));
        let back: Vec<(Client, Result<(), String>)> =
            futures::stream::iter(clients.into_iter().map(|mut c| {
                let (shared, prefix) = (&shared, &prefix);
                async move {
                    let r = rejoin(&mut c, opts, prefix, shared).await;
                    (c, r)
                }
            }))
            .buffer_unordered(opts.setup_concurrency)
            .collect()
            .await;
        let mut kept = Vec::with_capacity(back.len());
        for (c, r) in back {
            match r {
                Ok(()) => kept.push(c),
                Err(e) => {
                    s.failed += 1;
                    if s.failed == 1 {
                        report
                            .notes
                            .push(format!("storm {storm}: a client did not come back: {e}"));
                    }
                }
            }
        }
        s.storm_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        let want = steady_n + kept.len() as u64;
        pumps = pump(kept, &shared);
        read_memory(opts, so, &mut s).await?;
        let stats = stats_when(opts, &key, want).await?;
        s.back = Some(triple(&stats));
        s.messages_sent = stats["messages_sent"].as_u64();
        if s.failed == 0 && s.back != Some(expected_back) {
            report.notes.push(format!(
                "storm {storm}: connections, online users, live conversations {:?}, not {expected_back:?} as before the first storm",
                s.back
            ));
        }
        if s.away.map(|a| a[0]) != Some(steady_n) {
            report.notes.push(format!(
                "storm {storm}: {:?} while away, expected {steady_n} connections",
                s.away
            ));
        }
        report.samples.push(s);
    }

    // Everyone leaves: the engine must count nobody.
    let clients = drop_all(pumps, &mut report.notes).await;
    drop(clients);
    let steady = running
        .finish(&shared, Duration::from_secs(3))
        .await
        .clients;
    for (mut c, _) in steady {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.ws.close(None)).await;
    }
    report.after_all_left = Some(triple(&stats_when(opts, &key, 0).await?));

    let after_first: Vec<&StormSample> = report.samples.iter().filter(|s| s.storm >= 1).collect();
    report.rss_slope_kib = slope(
        &after_first
            .iter()
            .map(|s| (f64::from(s.storm), s.rss_kib as f64))
            .collect::<Vec<_>>(),
    );
    report.anon_slope_kib = slope(
        &after_first
            .iter()
            .filter_map(|s| s.anon_kib.map(|a| (f64::from(s.storm), a as f64)))
            .collect::<Vec<_>>(),
    );
    report.deliveries = shared.deliveries.load(std::sync::atomic::Ordering::Relaxed);
    report.errors = shared.errors.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(e) = shared
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        report.notes.push(format!("first error frame: {e}"));
    }
    Ok(report)
}

/// Prints the soak, one line per storm, then the slopes.
pub fn print(report: &SoakReport) {
    let mib = |k: u64| k as f64 / 1024.0;
    println!("soak {}: {}", report.label, report.params);
    println!(
        "{:>5} {:>7} {:>9} {:>8} {:>9} {:>8} {:>20} {:>20} {:>9} {:>6}",
        "storm",
        "t s",
        "RSS MiB",
        "Δ MiB",
        "anon MiB",
        "threads",
        "conns/users/live",
        "away",
        "storm ms",
        "failed"
    );
    let mut last = None;
    for s in &report.samples {
        let fmt3 = |t: Option<[u64; 3]>| {
            t.map(|[a, b, c]| format!("{a}/{b}/{c}"))
                .unwrap_or_else(|| "–".into())
        };
        println!(
            "{:>5} {:>7.0} {:>9.1} {:>8} {:>9} {:>8} {:>20} {:>20} {:>9} {:>6}",
            s.storm,
            s.at_s,
            mib(s.rss_kib),
            last.map(|l: u64| format!("{:+.1}", mib(s.rss_kib) - mib(l)))
                .unwrap_or_else(|| "–".into()),
            s.anon_kib
                .map(|a| format!("{:.1}", mib(a)))
                .unwrap_or_else(|| "–".into()),
            s.threads,
            fmt3(s.back),
            fmt3(s.away),
            s.storm_ms
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "–".into()),
            s.failed
        );
        last = Some(s.rss_kib);
    }
    let per = |v: Option<f64>| {
        v.map(|k| format!("{:+.2} MiB per storm", k / 1024.0))
            .unwrap_or_else(|| "–".into())
    };
    println!(
        "RSS slope after the first storm: {}; anonymous: {}",
        per(report.rss_slope_kib),
        per(report.anon_slope_kib)
    );
    println!(
        "after every client left: connections/online users/live conversations {:?}; {} deliveries, {} error frames",
        report.after_all_left, report.deliveries, report.errors
    );
    for n in &report.notes {
        println!("    note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn the_slope_of_a_line_is_its_gradient() {
        let pts: Vec<(f64, f64)> = (1..=5).map(|x| (x as f64, 3.0 * x as f64 + 7.0)).collect();
        let s = slope(&pts).expect("a slope");
        assert!((s - 3.0).abs() < 1e-9, "{s}");
        assert_eq!(slope(&pts[..1]), None);
    }
}
