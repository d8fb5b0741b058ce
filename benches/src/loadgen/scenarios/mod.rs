//! The scenarios: idle, fan-out, direct ping-pong, slow consumer, reconnect storm,
//! overload, soak.
//!
//! Every scenario is bounded: setup steps time out
//! ([`SETUP_TIMEOUT`](super::client::SETUP_TIMEOUT)), load runs for a set duration,
//! draining and catching up have their own limits.
//!
//! This module holds what the scenarios share (tokens, names, the room clients, the
//! pumps and the pacer, the outcome helpers); each scenario has its own file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{connect, connect_with, join, phase, Client, Exit, Shared, Tracker};
use super::procfs::{sample, ProcSample};
use super::report::group_thousands;
use super::{Options, Outcome};

mod connstorm;
mod fanout;
mod grpc;
mod idle;
mod overload;
mod pingpong;
mod soak;
mod storm;

pub use connstorm::connstorm;
pub use fanout::fanout;
pub use grpc::grpc_fanout;
pub use idle::idle;
pub use overload::overload;
pub use pingpong::pingpong;
pub use soak::{print as print_soak, slope, soak, SoakOptions, SoakReport, StormSample};
pub use storm::storm;

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

/// The node of client `id` in rooms of `members`: member `m` goes to node `m mod n`.
pub fn node_of<'a>(nodes: &[&'a str], members: usize, id: u32) -> &'a str {
    nodes[(id as usize % members.max(1)) % nodes.len().max(1)]
}

fn server(opts: &Options) -> Option<ProcSample> {
    opts.server_pid.and_then(sample)
}

/// Connects `rooms × members` clients and joins each to its room (the first member of
/// each room first, so it creates the room). Client `id = room × members + member`.
/// With several nodes ([`Options::nodes`]), member `m` of every room connects to node
/// `m mod nodes`: each room has members on every node (when it has as many members).
async fn open_room_clients(
    opts: &Options,
    prefix: &str,
    rooms: usize,
    members: usize,
    slow: impl Fn(u32) -> bool,
) -> Result<Vec<Client>, String> {
    let nodes = opts.nodes();
    let one = |id: u32| {
        let room = id as usize / members;
        let user = user_of(prefix, id);
        let room_name = room_of(prefix, room);
        let tok = token(&opts.secret, &user);
        let proto = opts.proto;
        let addr = node_of(&nodes, members, id).to_owned();
        let rcvbuf = slow(id).then_some(SLOW_RCVBUF);
        async move {
            let mut ws = connect_with(proto, &addr, &tok, rcvbuf).await?;
            let handle = join(&mut ws, proto, &room_name).await?;
            Ok::<Client, String>(Client::new(id, proto, room, handle, ws))
        }
    };
    let firsts: Vec<u32> = (0..rooms).map(|r| (r * members) as u32).collect();
    let rest: Vec<u32> = (0..(rooms * members) as u32)
        .filter(|id| !(*id as usize).is_multiple_of(members))
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
    let pacer = spawn_pacer(
        senders,
        total_rate,
        pacer_stop.clone(),
        Arc::new(AtomicU64::new(0)),
    );
    Running {
        tasks,
        phase: phase_tx,
        pacer,
        pacer_stop,
    }
}

/// Spreads `total_rate` ticks per second over `senders` in turn (every millisecond, what
/// is due) until `stop`, keeping the count of ticks issued in `issued_count`. Returns how
/// many were skipped because a sender's queue was full.
fn spawn_pacer(
    senders: Vec<mpsc::Sender<()>>,
    total_rate: f64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    issued_count: Arc<AtomicU64>,
) -> JoinHandle<u64> {
    tokio::spawn(async move {
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
            issued_count.store(issued, Ordering::Relaxed);
        }
        skipped
    })
}

/// What [`Running::finish`] hands back.
struct Finished {
    /// The clients, each with how its pump ended.
    clients: Vec<(Client, Exit)>,
    /// Sends the pacer skipped because a client's queue was full.
    skipped: u64,
    /// Whether deliveries had stopped (no new one for `QUIET`) before the limit: when
    /// not, what is still missing may be backlog on its way, not loss.
    settled: bool,
}

/// After sending stops, how long deliveries may go on arriving before what is still
/// missing is counted. A server still delivering at the end has its remainder reported
/// as backlog, never as lost.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Deliveries count as settled after this long without a new one.
const QUIET: Duration = Duration::from_millis(500);

/// Waits until no delivery has arrived for [`QUIET`], at most `limit`; whether it did.
async fn settle(shared: &Shared, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let step = Duration::from_millis(100);
    let quiet_steps = (QUIET.as_millis() / step.as_millis()) as u32;
    let mut last = shared.deliveries.load(Ordering::Relaxed);
    let mut still = 0;
    while Instant::now() < deadline && still < quiet_steps {
        tokio::time::sleep(step).await;
        let now = shared.deliveries.load(Ordering::Relaxed);
        if now == last {
            still += 1;
        } else {
            still = 0;
            last = now;
        }
    }
    still >= quiet_steps
}

/// Deliveries owed for every message written so far: each goes to the other members of
/// its room.
fn owed_deliveries(shared: &Shared, members: usize) -> u64 {
    shared
        .room_sent
        .iter()
        .map(|s| s.load(Ordering::Relaxed) * (members as u64 - 1))
        .sum()
}

/// Ours: the deliveries each member is missing, from its seqs. Every seq up to its room's
/// highest acknowledged one is a stored message owed to every member (a member's own
/// sends are in its tracker through their acknowledgements), so this counts exactly what
/// did not arrive, whether or not its sender saw the acknowledgement, and repeats do not
/// make up for gaps.
fn missing_by_seq<'a>(members: impl Iterator<Item = (&'a Tracker, usize)>, shared: &Shared) -> u64 {
    members
        .map(|(t, room)| {
            let top = shared.room_seq[room].load(Ordering::Relaxed);
            let have = t.contiguous.min(top) + t.ahead.range(..=top).count() as u64;
            top.saturating_sub(have)
        })
        .sum()
}

/// After the settle: *lost* is the deliveries owed for acknowledged messages that never
/// arrived. Ours: `by_seq`, from each member's seqs ([`missing_by_seq`]). The peers
/// acknowledge nothing and carry no seqs, so every message they were written is owed to
/// the other members of its room. When deliveries had not stopped, what is missing is
/// backlog and *lost* stays unknown.
fn account_losses(
    shared: &Shared,
    members: usize,
    by_seq: Option<u64>,
    settled: bool,
    o: &mut Outcome,
) {
    let mut by_room = 0u64;
    let mut unacked = 0u64;
    for (r, sent) in shared.room_sent.iter().enumerate() {
        let sent = sent.load(Ordering::Relaxed);
        if by_seq.is_some() {
            unacked += sent.saturating_sub(shared.room_acked[r].load(Ordering::Relaxed));
        } else {
            let owed = sent * (members as u64 - 1);
            by_room += owed.saturating_sub(shared.room_delivered[r].load(Ordering::Relaxed));
        }
    }
    let lost = by_seq.unwrap_or(by_room);
    if settled {
        o.lost = Some(lost);
    } else {
        o.notes.push(format!(
            "deliveries were still arriving {} s after sending stopped: the {} still missing then are backlog, not counted as lost",
            SETTLE_LIMIT.as_secs(),
            group_thousands(lost)
        ));
    }
    if unacked > 0 {
        o.notes.push(format!(
            "{} sends never acknowledged",
            group_thousands(unacked)
        ));
    }
}

impl Running {
    /// Stops the pacer, waits for deliveries to settle (at most `limit`), stops the
    /// clients and returns them.
    async fn finish(self, shared: &Shared, limit: Duration) -> Finished {
        self.pacer_stop.store(true, Ordering::Relaxed);
        let skipped = self.pacer.await.unwrap_or(0);
        let settled = settle(shared, limit).await;
        let _ = self.phase.send(phase::STOP);
        let mut clients = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            if let Ok(r) = t.await {
                clients.push(r);
            }
        }
        Finished {
            clients,
            skipped,
            settled,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(sent: [u64; 2], acked: [u64; 2], delivered: [u64; 2]) -> Shared {
        let s = Shared::new(2);
        for r in 0..2 {
            s.room_sent[r].store(sent[r], Ordering::Relaxed);
            s.room_acked[r].store(acked[r], Ordering::Relaxed);
            s.room_delivered[r].store(delivered[r], Ordering::Relaxed);
        }
        s
    }

    fn tracker(seqs: &[u64]) -> Tracker {
        let mut t = Tracker::default();
        for s in seqs {
            t.on_seq(*s);
        }
        t
    }

    #[test]
    fn ours_owes_every_seq_up_to_the_highest_acknowledged_one_to_each_member() {
        let s = shared([5, 2], [5, 2], [0, 0]);
        s.room_seq[0].store(5, Ordering::Relaxed);
        s.room_seq[1].store(2, Ordering::Relaxed);
        let complete = tracker(&[1, 2, 3, 4, 5]);
        let gap = tracker(&[1, 2, 4, 4, 4, 6]); // 3 and 5 missing; repeats and 6 count for nothing
        let short = tracker(&[1]);
        let members = [(&complete, 0), (&gap, 0), (&short, 1)];
        let missing = missing_by_seq(members.iter().map(|(t, r)| (*t, *r)), &s);
        assert_eq!(missing, 2 + 1);

        let mut o = Outcome::default();
        account_losses(&s, 3, Some(missing), true, &mut o);
        assert_eq!(o.lost, Some(3), "{o:?}");
        assert!(o.notes.is_empty(), "{o:?}");
    }

    #[test]
    fn sends_never_acknowledged_are_noted() {
        let mut o = Outcome::default();
        account_losses(&shared([2, 1], [2, 0], [4, 0]), 3, Some(0), true, &mut o);
        assert_eq!(o.lost, Some(0), "{o:?}");
        assert!(
            o.notes.iter().any(|n| n == "1 sends never acknowledged"),
            "{o:?}"
        );
    }

    #[test]
    fn the_peers_owe_every_message_written_room_by_room() {
        let mut o = Outcome::default();
        // Room 0 got one delivery too many (a repeat); room 1 lost one: 1 lost in all.
        account_losses(&shared([2, 1], [0, 0], [5, 1]), 3, None, true, &mut o);
        assert_eq!(o.lost, Some(1), "{o:?}");
        assert!(o.notes.is_empty(), "{o:?}");
    }

    #[test]
    fn what_is_missing_while_deliveries_still_arrive_is_backlog_not_loss() {
        let mut o = Outcome::default();
        account_losses(&shared([5, 5], [0, 0], [2, 2]), 3, None, false, &mut o);
        assert_eq!(o.lost, None, "{o:?}");
        assert!(
            o.notes
                .iter()
                .any(|n| n.contains("16 still missing then are backlog")),
            "{o:?}"
        );
        assert_eq!(owed_deliveries(&shared([5, 5], [0, 0], [0, 0]), 3), 20);
    }
}
