//! Fan-out, and with a share of members that stop reading, the slow consumer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    account_losses, errors, missing_by_seq, open_room_clients, owed_deliveries, percentiles,
    run_prefix, server, start, SETTLE_LIMIT,
};
use crate::loadgen::client::Shared;
use crate::loadgen::cluster;
use crate::loadgen::procfs::cpu_percent;
use crate::loadgen::{Options, Outcome};

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
    let slow = move |id: u32| {
        slow_every > 0 && !(id as usize).is_multiple_of(members) && id % slow_every == 1
    };
    let n = rooms * members;
    let slow_count = (0..n as u32).filter(|id| slow(*id)).count();
    let senders = n - slow_count;
    let per_member = match opts.offered {
        Some(d) => d / (senders as f64 * (members - 1) as f64),
        None => opts.rate,
    };
    let total_rate = per_member * senders as f64;
    let prefix = run_prefix(name);
    let mut shared = Shared::new(rooms);
    shared.topology = (members, opts.nodes().len());
    let shared = Arc::new(shared);
    let t0 = Instant::now();
    let clients = open_room_clients(opts, &prefix, rooms, members, slow).await?;
    let setup = t0.elapsed();
    let running = start(clients, &shared, members, total_rate, slow, |_| true);

    tokio::time::sleep(opts.warmup).await;
    let c0 = cluster::read(opts).await;
    let m0 = shared.sent.load(Ordering::Relaxed);
    let d0 = shared.deliveries.load(Ordering::Relaxed);
    let b0 = shared.rx_bytes.load(Ordering::Relaxed);
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
    // Deliveries owed for every message written so far, less those made: the backlog
    // when the window closed (queued in the server, the kernel or the clients).
    let owed_at_close = owed_deliveries(&shared, members);
    let d1 = shared.deliveries.load(Ordering::Relaxed);
    let b1 = shared.rx_bytes.load(Ordering::Relaxed);
    let m1 = shared.sent.load(Ordering::Relaxed);
    let s1 = server(opts);
    let c1 = cluster::read(opts).await;
    let dt = window_start.elapsed().as_secs_f64();
    let finished = running.finish(&shared, SETTLE_LIMIT).await;
    let (done, skipped) = (finished.clients, finished.skipped);

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
    if d1 > d0 {
        o.bytes_per_delivery = Some(b1.saturating_sub(b0) as f64 / (d1 - d0) as f64);
    }
    o.messages_sent = shared.sent.load(Ordering::Relaxed);
    o.deliveries = shared.deliveries.load(Ordering::Relaxed);
    percentiles(&shared, &mut o);
    let mut figures = cluster::figures(opts, &c0, &c1, m1 - m0, d1 - d0);
    figures.same_node = cluster::Latency::of(&shared.hist_same_node);
    figures.cross_node = cluster::Latency::of(&shared.hist_cross_node);
    if figures.window_s > 0.0 {
        o.loadgen_cpu_pct = figures.loadgen_cpu_s.map(|s| s * 100.0 / figures.window_s);
    }
    o.cluster = Some(figures);
    // With members that stop reading, what they are owed is not on its way.
    if slow_count == 0 {
        o.queued_at_close = Some(owed_at_close.saturating_sub(d1));
    }
    let nodes = opts.nodes().len();
    if nodes > 1 {
        o.notes.push(format!(
            "{nodes} nodes; member m of each room on node m mod {nodes}"
        ));
    }
    if let (Some(a), Some(b)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&a, &b));
        let window_deliveries = d1 - d0;
        if window_deliveries > 0 {
            o.server_us_per_delivery = Some((b.cpu_s - a.cpu_s) * 1e6 / window_deliveries as f64);
        }
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
        let by_seq = opts
            .proto
            .is_ours()
            .then(|| missing_by_seq(done.iter().map(|(c, _)| (&c.tracker, c.room)), &shared));
        account_losses(&shared, members, by_seq, finished.settled, &mut o);
        if opts.proto.is_ours() {
            let gaps = done
                .iter()
                .filter(|(c, _)| {
                    c.tracker.contiguous < shared.room_seq[c.room].load(Ordering::Relaxed)
                        || !c.tracker.ahead.is_empty()
                })
                .count() as u64;
            o.gaps = Some(gaps);
            let echoes = shared.own_echoes.load(Ordering::Relaxed);
            o.own_echoes = Some(echoes);
            if echoes > 0 {
                o.notes.push(format!(
                    "{echoes} messages came back to their own sender as `message` events (not counted as deliveries)"
                ));
            }
        }
    } else {
        o.slow_clients = Some(slow_count as u64);
    }
    Ok(o)
}
