//! The load generator: scenarios against our server (protocol v1) and the peers.
//!
//! # Layout
//!
//! - [`proto`]: the three wire protocols, text in and text out.
//! - [`client`]: one simulated client (connect, handshake, join, pump), the shared
//!   counters and the latency histogram.
//! - [`scenarios`]: idle, fan-out (and slow consumer), direct ping-pong, reconnect storm,
//!   overload (sends above what the store takes), and the soak (a reconnect storm every
//!   minute for a bounded time, the server's memory and stats after each).
//! - [`procfs`]: the server's CPU time and RSS from `/proc`.
//! - [`admin`]: our server's stats over its admin route.
//! - [`cluster`]: a run against several nodes: each node's CPU and bus counters, the bus
//!   server's CPU and its own counters, over the measured window.
//! - [`report`]: the table, the JSON lines, and the `BENCHMARKS.md` section.
//! - [`tls`]: `wss://` and gRPC-over-TLS trust (`--tls-ca`).
//!
//! Our server speaks two dialects ([`Dialect`]): protocol v1 over WebSocket (the
//! default, `ws://` or `wss://`) and gRPC (`--dialect grpc`: one `Connect` stream per
//! member; fan-out only).

pub mod admin;
pub mod client;
pub mod cluster;
pub mod procfs;
pub mod proto;
pub mod report;
pub mod scenarios;
pub mod tls;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use proto::Proto;

/// What a scenario runs against, and with which numbers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name of the system under test in the report (`ours-memory`, `socketioxide`…).
    pub label: String,
    /// The protocol it speaks.
    pub proto: Proto,
    /// `host:port`.
    pub addr: String,
    /// Fan-out against several nodes: every node's `host:port` (the first is `addr`);
    /// members of each room go to the nodes in turn. Empty: `addr` alone.
    pub addrs: Vec<String>,
    /// The server's process id, for `/proc` readings.
    pub server_pid: Option<u32>,
    /// Several nodes: every node's process id, in the order of `addrs` (the first is
    /// `server_pid`). Empty: `server_pid` alone.
    pub node_pids: Vec<u32>,
    /// Other processes whose CPU time over the window is reported (the bus server).
    pub watch: Vec<cluster::Watched>,
    /// A Redis server (`host:port`) whose `INFO commandstats` is read at the window's
    /// edges.
    pub redis_info: Option<String>,
    /// A NATS server's monitoring port (`host:port`) whose `/varz` is read at the
    /// window's edges.
    pub nats_monitor: Option<String>,
    /// The HS256 secret our server checks tokens with.
    pub secret: String,
    /// Rooms (fan-out, slow consumer, storm).
    pub rooms: usize,
    /// Members per room.
    pub members: usize,
    /// Messages per second per sending member.
    pub rate: f64,
    /// When set: the deliveries per second to offer (the per-member rate follows).
    pub offered: Option<f64>,
    /// How long the measured window lasts (and the ping-pong's time limit).
    pub duration: Duration,
    /// Load before the measured window.
    pub warmup: Duration,
    /// Connections (idle).
    pub connections: usize,
    /// The share of members that stop reading (slow consumer).
    pub slow_fraction: f64,
    /// Round trips (ping-pong).
    pub round_trips: usize,
    /// Connections set up at once.
    pub setup_concurrency: usize,
    /// Connect storm: new clients arriving per second.
    pub arrivals: f64,
    /// Overload: the offered sends per second, as a multiple of the sustainable rate
    /// measured first.
    pub factor: f64,
    /// Overload: offer this many sends per second instead (no calibration).
    pub sends_per_s: Option<f64>,
    /// Overload: how long the sustainable rate is measured.
    pub calibrate: Duration,
    /// Overload: clients that measure the sustainable rate, each with one send in flight
    /// (keep it at or below the server's `max_pending_appends`, so none is refused).
    pub calibrate_clients: usize,
    /// The server's admin key, for `GET /api/v1/admin/stats` (soak).
    pub admin_key: Option<String>,
    /// Ours: WebSocket (protocol v1) or gRPC.
    pub dialect: Dialect,
    /// Connect over TLS (`wss://`, or gRPC over TLS) trusting this.
    pub tls: Option<tls::TlsTrust>,
}

/// How the load generator talks to our server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// Protocol v1 over a WebSocket (and the peers' protocols).
    #[default]
    Ws,
    /// gRPC: `chat.ChatService/Connect`, one bidirectional stream per member, each on an
    /// HTTP/2 connection of its own.
    Grpc,
}

impl Dialect {
    /// Parses `ws` or `grpc`.
    pub fn parse(s: &str) -> Option<Dialect> {
        match s {
            "ws" | "websocket" => Some(Dialect::Ws),
            "grpc" => Some(Dialect::Grpc),
            _ => None,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            label: "ours".into(),
            proto: Proto::Chat,
            addr: "127.0.0.1:4000".into(),
            addrs: Vec::new(),
            server_pid: None,
            node_pids: Vec::new(),
            watch: Vec::new(),
            redis_info: None,
            nats_monitor: None,
            secret: "bench-secret".into(),
            rooms: 10,
            members: 50,
            rate: 1.0,
            offered: None,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            connections: 1000,
            slow_fraction: 0.1,
            round_trips: 2000,
            setup_concurrency: 128,
            arrivals: 20_000.0,
            factor: 2.0,
            sends_per_s: None,
            calibrate: Duration::from_secs(5),
            calibrate_clients: 64,
            admin_key: None,
            dialect: Dialect::Ws,
            tls: None,
        }
    }
}

impl Options {
    /// The nodes' addresses: `addrs`, or `addr` alone.
    pub fn nodes(&self) -> Vec<&str> {
        if self.addrs.is_empty() {
            vec![self.addr.as_str()]
        } else {
            self.addrs.iter().map(String::as_str).collect()
        }
    }

    /// The nodes' process ids: `node_pids`, or `server_pid` alone (none without it).
    pub fn all_pids(&self) -> Vec<u32> {
        if self.node_pids.is_empty() {
            self.server_pid.into_iter().collect()
        } else {
            self.node_pids.clone()
        }
    }
}

/// What one scenario measured. Absent figures do not apply to the scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// The system under test.
    pub label: String,
    /// The scenario's name (`fanout-10x50`, `idle-10k`, …).
    pub scenario: String,
    /// Its parameters, in words.
    pub params: String,
    /// Connections it held.
    pub connections: u64,
    /// Seconds to set the connections up.
    pub setup_s: Option<f64>,
    /// Deliveries per second offered.
    pub offered_per_s: Option<f64>,
    /// Deliveries per second measured over the window.
    pub deliveries_per_s: Option<f64>,
    /// Publish-to-deliver latency (ping-pong: round trip; storm: time to catch up).
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Latency samples.
    pub samples: u64,
    /// Messages written by the clients.
    pub messages_sent: u64,
    /// Deliveries counted in all.
    pub deliveries: u64,
    /// Deliveries owed for acknowledged messages (the peers acknowledge none: every
    /// message written) that had not arrived once deliveries stopped after sending did.
    /// Unknown when deliveries were still arriving at the end of the settle.
    pub lost: Option<u64>,
    /// Deliveries owed for the messages written so far that had not arrived when the
    /// measured window closed: the backlog then (server, kernel and client queues).
    #[serde(default)]
    pub queued_at_close: Option<u64>,
    /// The load generator's own CPU over the window, percent of one core.
    #[serde(default)]
    pub loadgen_cpu_pct: Option<f64>,
    /// Ours: clients whose seqs show a gap at the end.
    pub gaps: Option<u64>,
    /// Ours (fan-out): a client's own messages delivered back to it as `message` events.
    #[serde(default)]
    pub own_echoes: Option<u64>,
    /// Storm: the time until the last client was back and caught up.
    pub caught_up_ms: Option<f64>,
    /// Slow consumer: how many stopped reading.
    pub slow_clients: Option<u64>,
    /// Server CPU over the window, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// Server RSS at the end of the window, KiB.
    pub server_rss_kib: Option<u64>,
    /// Fan-out: server CPU time per delivery over the window, µs.
    #[serde(default)]
    pub server_us_per_delivery: Option<f64>,
    /// Fan-out: WebSocket payload bytes the clients received per delivery over the
    /// window (every data frame counts: events, and the senders' acknowledgements).
    #[serde(default)]
    pub bytes_per_delivery: Option<f64>,
    /// Server threads at the end of the window.
    #[serde(default)]
    pub server_threads: Option<u64>,
    /// Seconds spent waiting for the server to go quiet before the scenario.
    #[serde(default)]
    pub settle_s: Option<f64>,
    /// Server peak RSS seen during the window, KiB.
    pub server_peak_rss_kib: Option<u64>,
    /// Idle: server RSS growth per connection, KiB.
    pub rss_per_conn_kib: Option<f64>,
    /// Connections the server closed.
    pub server_closed: u64,
    /// Error frames received.
    pub errors: u64,
    /// Anything worth a footnote.
    pub notes: Vec<String>,
    /// Overload: what the overload scenario measured.
    #[serde(default)]
    pub overload: Option<OverloadFigures>,
    /// Fan-out: CPU and bus counters of the nodes and the bus server over the window.
    #[serde(default)]
    pub cluster: Option<cluster::ClusterFigures>,
    /// Connect storm: the join storm and the reconnect storm.
    #[serde(default)]
    pub storm: Option<StormFigures>,
}

/// The connect storm's two phases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StormFigures {
    /// New clients connecting and joining their rooms at a fixed arrival rate.
    pub join: StormPhase,
    /// The same clients closing at once, then all reconnecting at once.
    pub reconnect: StormPhase,
}

/// One storm's figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StormPhase {
    /// Clients that took part.
    pub clients: u64,
    /// The arrival rate offered (none: all at once).
    pub arrivals_per_s: Option<f64>,
    /// Seconds from the first connect to the last join (or resume) reply.
    pub all_joined_s: f64,
    /// Connect-to-reply time of one client, median, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// The slowest, ms.
    pub max_ms: Option<f64>,
    /// Clients that failed to connect, join or resume.
    pub failed: u64,
    /// What the first failure said.
    pub first_failure: Option<String>,
    /// Server CPU seconds from the first connect until it went quiet again.
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds from the first connect to the last reply.
    pub server_cpu_to_last_reply_s: Option<f64>,
    /// The load generator's own CPU from the first connect to the last reply, percent
    /// of one core.
    pub loadgen_cpu_pct: Option<f64>,
    /// Seconds the server took to go quiet after the last reply.
    pub quiet_after_s: f64,
    /// Server RSS after the phase, KiB.
    pub rss_kib: Option<u64>,
    /// Join storm: server RSS growth per connection with every client idle in its room.
    pub rss_per_conn_kib: Option<f64>,
}

/// The overload scenario's figures (its ack latencies are the outcome's p50/p99/p99.9).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OverloadFigures {
    /// Sends per second acknowledged by a closed loop of `calibrate_clients` clients,
    /// each with one send in flight (none when the offered rate was given).
    pub sustainable_per_s: Option<f64>,
    /// Sends per second the pacer offered over the window.
    pub offered_per_s: f64,
    /// Sends per second written to the server over the window.
    pub written_per_s: f64,
    /// Sends per second acknowledged (`sent`) over the window.
    pub acked_per_s: f64,
    /// Sends refused with `unavailable` over the window.
    pub refused: u64,
    /// Refused sends per second over the window.
    pub refused_per_s: f64,
    /// The 99th percentile of the time to a refusal, ms.
    pub refused_p99_ms: Option<f64>,
    /// The largest `retry_after_ms` seen on a refusal.
    pub retry_after_ms: Option<u64>,
    /// Sends written in the window and still unanswered 10 s after the load stopped.
    pub unanswered: u64,
    /// Other error frames (not `unavailable`).
    pub other_errors: u64,
}

impl Outcome {
    /// An empty outcome for a scenario.
    pub fn new(opts: &Options, scenario: &str) -> Self {
        Outcome {
            label: opts.label.clone(),
            scenario: scenario.to_owned(),
            ..Outcome::default()
        }
    }

    /// A failed scenario, so the report still has its row.
    pub fn failed(opts: &Options, scenario: &str, why: &str) -> Self {
        let mut o = Outcome::new(opts, scenario);
        o.notes.push(format!("FAILED: {why}"));
        o
    }
}

/// The scenarios the load generator knows.
pub const SCENARIOS: &[&str] = &[
    "idle",
    "connstorm",
    "fanout",
    "slow",
    "pingpong",
    "storm",
    "overload",
];

/// Runs one scenario by kind (`idle`, `fanout`, `slow`, `pingpong`, `storm`,
/// `overload`), naming it
/// `name` in the report.
///
/// # Errors
/// An unknown kind, or the scenario's own failure.
pub async fn run(kind: &str, name: &str, opts: &Options) -> Result<Outcome, String> {
    // A server still draining the previous scenario's backlog would skew this one (and
    // refuse connections in time): wait for it to go quiet first.
    let mut settled = None;
    for pid in opts.all_pids() {
        if pid != std::process::id() {
            let waited = procfs::wait_quiet(pid, 15.0, Duration::from_secs(60)).await;
            *settled.get_or_insert(0.0) += waited.as_secs_f64();
        }
    }
    let mut outcome = run_scenario(kind, name, opts).await?;
    outcome.settle_s = settled;
    if let Some(s) = opts.server_pid.and_then(procfs::sample) {
        outcome.server_threads = Some(s.threads);
        if kind == "idle" {
            outcome.notes.push(format!(
                "{} server threads after the connections opened",
                s.threads
            ));
        }
    }
    Ok(outcome)
}

async fn run_scenario(kind: &str, name: &str, opts: &Options) -> Result<Outcome, String> {
    if opts.dialect == Dialect::Grpc {
        return match kind {
            "fanout" => scenarios::grpc_fanout(opts, name).await,
            other => Err(format!("the grpc dialect runs fanout only, not {other:?}")),
        };
    }
    tls::install(opts.tls.as_ref())?;
    match kind {
        "idle" => scenarios::idle(opts, name).await,
        "connstorm" => scenarios::connstorm(opts, name).await,
        "fanout" => {
            let mut o = opts.clone();
            o.slow_fraction = 0.0;
            scenarios::fanout(&o, name).await
        }
        "slow" => scenarios::fanout(opts, name).await,
        "pingpong" => scenarios::pingpong(opts, name).await,
        "storm" => scenarios::storm(opts, name).await,
        "overload" => scenarios::overload(opts, name).await,
        other => Err(format!(
            "unknown scenario {other:?}; one of {}",
            SCENARIOS.join(", ")
        )),
    }
}
