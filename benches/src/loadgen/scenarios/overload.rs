//! Overload: sends offered at a multiple of what the server sustains, to see what the
//! bound on pending appends (`Limits::max_pending_appends`) does with the excess.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::{open_room_clients, run_prefix, server, spawn_pacer};
use crate::loadgen::admin::admin_stats;
use crate::loadgen::client::{new_histogram, Client, SETUP_TIMEOUT};
use crate::loadgen::procfs::cpu_percent;
use crate::loadgen::proto::{find, number_after, Proto, Stamp};
use crate::loadgen::{Options, Outcome, OverloadFigures};

/// How long answers may still come in after the load stops.
const DRAIN: Duration = Duration::from_secs(10);

/// What the clients of one phase counted.
struct Counters {
    epoch: Instant,
    written: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    other_errors: AtomicU64,
    deliveries: AtomicU64,
    closed: AtomicU64,
    retry_after_ms: AtomicU64,
    recording: AtomicBool,
    /// Send to `sent`, µs, while recording.
    acks: Mutex<Histogram<u64>>,
    /// Send to refusal, µs, while recording.
    refusals: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn new(epoch: Instant) -> Counters {
        Counters {
            epoch,
            written: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            other_errors: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            retry_after_ms: AtomicU64::new(0),
            recording: AtomicBool::new(false),
            acks: Mutex::new(new_histogram()),
            refusals: Mutex::new(new_histogram()),
            first_error: Mutex::new(None),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn answered(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
            + self.refused.load(Ordering::Relaxed)
            + self.other_errors.load(Ordering::Relaxed)
    }

    fn record(&self, hist: &Mutex<Histogram<u64>>, text: &str) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        if let Some(sent) = number_after(text, r#""id":"t"#) {
            let us = self.now_ns().saturating_sub(sent) / 1000;
            let mut h = hist.lock().unwrap_or_else(|p| p.into_inner());
            h.saturating_record(us.max(1));
        }
    }

    /// Counts one frame from the server. The request id of a send is `t` and its send
    /// time, so a reply or an error gives its latency without a lookup.
    fn on_text(&self, text: &str) {
        if text.starts_with(r#"{"type":"message""#) {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
        } else if text.starts_with(r#"{"type":"reply""#) {
            if find(text, r#""reply":{"type":"sent""#).is_some() {
                self.acked.fetch_add(1, Ordering::Relaxed);
                self.record(&self.acks, text);
            }
        } else if text.starts_with(r#"{"type":"error""#) {
            if find(text, r#""code":"unavailable""#).is_some() {
                self.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(ms) = number_after(text, r#""retry_after_ms":"#) {
                    self.retry_after_ms.fetch_max(ms, Ordering::Relaxed);
                }
                self.record(&self.refusals, text);
            } else {
                self.other_errors.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(text.chars().take(200).collect());
                }
            }
        }
    }
}

/// A send with an idempotency key (as clients should send) and a request id that
/// carries its send time.
fn send_frame(c: &mut Client, counters: &Counters) -> (u64, String) {
    let sent_ns = counters.now_ns();
    let body = Stamp {
        sent_ns,
        sender: c.id,
        n: c.written,
    }
    .body();
    let frame = format!(
        r#"{{"id":"t{sent_ns}","type":"send","conversation":"{}","body":"{body}","client_id":"c{}-{}"}}"#,
        c.handle, c.id, c.written
    );
    c.written += 1;
    (sent_ns, frame)
}

/// A closed loop: one send in flight, the next as soon as it is answered, until
/// `deadline`.
async fn closed_loop(mut c: Client, counters: Arc<Counters>, deadline: Instant) -> Client {
    while Instant::now() < deadline {
        let (sent_ns, frame) = send_frame(&mut c, &counters);
        if c.ws.send(Message::text(frame)).await.is_err() {
            counters.closed.fetch_add(1, Ordering::Relaxed);
            return c;
        }
        counters.written.fetch_add(1, Ordering::Relaxed);
        let mine = format!(r#""id":"t{sent_ns}""#);
        loop {
            match tokio::time::timeout(SETUP_TIMEOUT, c.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    counters.on_text(t.as_str());
                    if find(t.as_str(), &mine).is_some() {
                        break;
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return c;
                }
            }
        }
    }
    c
}

/// An open loop: a send for every tick, whatever is still unanswered; reads and counts
/// what comes back, until `stop`.
async fn open_loop(
    mut c: Client,
    counters: Arc<Counters>,
    mut ticks: mpsc::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) -> Client {
    let mut ticks_open = true;
    loop {
        if *stop.borrow_and_update() {
            return c;
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return c;
                }
            }
            tick = ticks.recv(), if ticks_open => match tick {
                Some(()) => {
                    let (_, frame) = send_frame(&mut c, &counters);
                    if c.ws.send(Message::text(frame)).await.is_err() {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                        return c;
                    }
                    counters.written.fetch_add(1, Ordering::Relaxed);
                }
                None => ticks_open = false,
            },
            msg = c.ws.next() => match msg {
                Some(Ok(Message::Text(t))) => counters.on_text(t.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return c;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

fn quantile_ms(h: &Mutex<Histogram<u64>>, q: f64) -> Option<f64> {
    let h = h.lock().unwrap_or_else(|p| p.into_inner());
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

/// Overload (ours only): R rooms × M members. First the sustainable rate: a closed loop
/// of `calibrate_clients` clients, one send in flight each, for `calibrate`; then every
/// client offers sends open-loop at `factor` × that rate (or `sends_per_s`). Refused
/// sends (`unavailable`) are counted and not retried. Reports offered, written, acked
/// and refused rates and the ack latency (p50/p99/p99.9 of the outcome: send → `sent`).
///
/// # Errors
/// When the setup fails, or the calibration acknowledged nothing.
pub async fn overload(opts: &Options, name: &str) -> Result<Outcome, String> {
    if opts.proto != Proto::Chat {
        return Err("overload runs against our server only (it reads the send's ack)".into());
    }
    let (rooms, members) = (opts.rooms, opts.members.max(1));
    let prefix = run_prefix(name);
    let t0 = Instant::now();
    let mut clients = open_room_clients(opts, &prefix, rooms, members, |_| false).await?;
    let setup = t0.elapsed();
    let n = clients.len();
    let epoch = Instant::now();
    let stats0 = match &opts.admin_key {
        Some(key) => Some(admin_stats(&opts.addr, key).await?),
        None => None,
    };

    // The sustainable rate: what a closed loop below the bound gets acknowledged.
    let mut calibration = None;
    if opts.sends_per_s.is_none() {
        let k = opts.calibrate_clients.clamp(1, n);
        let counters = Arc::new(Counters::new(epoch));
        let deadline = Instant::now() + opts.calibrate;
        let start = Instant::now();
        let loops: Vec<_> = clients
            .drain(..k)
            .map(|c| tokio::spawn(closed_loop(c, counters.clone(), deadline)))
            .collect();
        let mut back = Vec::with_capacity(k);
        for l in loops {
            back.push(l.await.map_err(|e| format!("calibration task: {e}"))?);
        }
        let dt = start.elapsed().as_secs_f64();
        back.append(&mut clients);
        clients = back;
        let acked = counters.acked.load(Ordering::Relaxed);
        if acked == 0 {
            return Err("the calibration got no send acknowledged".into());
        }
        calibration = Some((
            acked as f64 / dt,
            counters.refused.load(Ordering::Relaxed),
            k,
        ));
    }
    let rate = opts
        .sends_per_s
        .or(calibration.map(|(s, _, _)| s * opts.factor))
        .ok_or("no rate to offer")?;

    // The offered load.
    let counters = Arc::new(Counters::new(epoch));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for c in clients {
        let (tx, rx) = mpsc::channel::<()>(16);
        senders.push(tx);
        tasks.push(tokio::spawn(open_loop(
            c,
            counters.clone(),
            rx,
            stop_rx.clone(),
        )));
    }
    let issued = Arc::new(AtomicU64::new(0));
    let pacer_stop = Arc::new(AtomicBool::new(false));
    let pacer = spawn_pacer(senders, rate, pacer_stop.clone(), issued.clone());
    tokio::time::sleep(opts.warmup).await;

    let snap = |c: &Counters| {
        (
            issued.load(Ordering::Relaxed),
            c.written.load(Ordering::Relaxed),
            c.acked.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        )
    };
    let before = snap(&counters);
    let s0 = server(opts);
    let mut peak_rss = s0.map(|s| s.rss_kib).unwrap_or(0);
    counters.recording.store(true, Ordering::Relaxed);
    let window = Instant::now();
    while window.elapsed() < opts.duration {
        tokio::time::sleep(Duration::from_millis(250).min(opts.duration)).await;
        if let Some(s) = server(opts) {
            peak_rss = peak_rss.max(s.rss_kib);
        }
    }
    counters.recording.store(false, Ordering::Relaxed);
    let after = snap(&counters);
    let s1 = server(opts);
    let dt = window.elapsed().as_secs_f64();
    pacer_stop.store(true, Ordering::Relaxed);
    let skipped = pacer.await.unwrap_or(0);

    // What is still in flight gets its answer, within a bound.
    let drain = Instant::now();
    while drain.elapsed() < DRAIN
        && counters.answered() + counters.closed.load(Ordering::Relaxed)
            < counters.written.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unanswered = counters
        .written
        .load(Ordering::Relaxed)
        .saturating_sub(counters.answered());
    let _ = stop_tx.send(true);
    for t in tasks {
        if let Ok(mut c) = t.await {
            let _ = tokio::time::timeout(Duration::from_secs(1), c.ws.close(None)).await;
        }
    }
    let stats1 = match &opts.admin_key {
        Some(key) => Some(admin_stats(&opts.addr, key).await?),
        None => None,
    };

    let per_s = |a: u64, b: u64| (b - a) as f64 / dt;
    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{rooms} rooms × {members} members ({n} clients), sends with a client_id and a 64-byte body; {}; {:.0} s after {:.0} s warm-up; refused sends are not retried",
        match calibration {
            Some((s, _, k)) => format!(
                "offered {:.1} × the sustainable rate ({s:.0} sends/s acknowledged to a closed loop of {k} clients, one send in flight each, over {:.0} s)",
                opts.factor,
                opts.calibrate.as_secs_f64()
            ),
            None => format!("offered {rate:.0} sends/s"),
        },
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
    );
    o.connections = n as u64;
    o.setup_s = Some(setup.as_secs_f64());
    o.p50_ms = quantile_ms(&counters.acks, 0.5);
    o.p99_ms = quantile_ms(&counters.acks, 0.99);
    o.p999_ms = quantile_ms(&counters.acks, 0.999);
    o.samples = counters
        .acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len();
    o.messages_sent = counters.written.load(Ordering::Relaxed);
    o.deliveries = counters.deliveries.load(Ordering::Relaxed);
    o.server_closed = counters.closed.load(Ordering::Relaxed);
    o.errors = counters.other_errors.load(Ordering::Relaxed);
    if let (Some(a), Some(b)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&a, &b));
        o.server_rss_kib = Some(b.rss_kib);
        o.server_peak_rss_kib = Some(peak_rss);
    }
    let retry = counters.retry_after_ms.load(Ordering::Relaxed);
    o.overload = Some(OverloadFigures {
        sustainable_per_s: calibration.map(|(s, _, _)| s),
        offered_per_s: per_s(before.0, after.0),
        written_per_s: per_s(before.1, after.1),
        acked_per_s: per_s(before.2, after.2),
        refused: after.3 - before.3,
        refused_per_s: per_s(before.3, after.3),
        refused_p99_ms: quantile_ms(&counters.refusals, 0.99),
        retry_after_ms: (retry > 0).then_some(retry),
        unanswered,
        other_errors: o.errors,
    });
    if let Some((_, refused, k)) = calibration {
        if refused > 0 {
            o.notes.push(format!(
                "{refused} calibration sends were refused: {k} clients are above the server's bound; lower --calibrate-clients"
            ));
        }
    }
    if skipped > 0 {
        o.notes.push(format!(
            "{skipped} offered sends skipped (a client's queue of 16 was full: its socket did not take more)"
        ));
    }
    if let (Some(a), Some(b)) = (stats0, stats1) {
        let d = |k: &str| b[k].as_u64().unwrap_or(0) as i64 - a[k].as_u64().unwrap_or(0) as i64;
        o.notes.push(format!(
            "server stats over the whole run: appends_refused +{}, messages_sent +{}",
            d("appends_refused"),
            d("messages_sent")
        ));
    }
    if let Some(e) = counters
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        o.notes.push(format!("first other error: {e}"));
    }
    Ok(o)
}
