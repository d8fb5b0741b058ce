//! What a run against several nodes reads at the edges of its measured window: each
//! node's CPU time and engine stats (messages sent, bus publications and receptions),
//! the CPU time of the bus server, and the bus server's own counters (Redis
//! `INFO commandstats`, NATS `/varz`). The differences over the window are the
//! [`ClusterFigures`] of the outcome.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::admin::admin_stats;
use super::procfs::sample;
use super::Options;

/// The longest one reading of a bus server may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes of an answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// A process watched besides the nodes (the bus server), with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Its name in the report (`redis-server`, `nats-server`).
    pub label: String,
    /// Its process id.
    pub pid: u32,
}

/// What was read at one edge of the window.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    at: Option<Instant>,
    node_cpu_s: Vec<Option<f64>>,
    watched_cpu_s: Vec<Option<f64>>,
    own_cpu_s: Option<f64>,
    /// Per node: (messages_sent, bus.published, bus.received, bus.duplicates,
    /// bus.gap_fills, bus.resyncs, bus_errors).
    stats: Vec<Option<[u64; 7]>>,
    redis: Option<RedisCounts>,
    nats: Option<NatsCounts>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RedisCounts {
    publish_calls: u64,
    publish_usec: u64,
    calls: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct NatsCounts {
    in_msgs: u64,
    out_msgs: u64,
}

/// The window's figures of a run against one or several nodes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterFigures {
    /// The nodes the clients were spread over.
    pub nodes: usize,
    /// The window, seconds (between the two readings).
    pub window_s: f64,
    /// Messages the clients wrote during the window.
    pub messages: u64,
    /// Deliveries the clients read during the window.
    pub deliveries: u64,
    /// Per node: CPU seconds over the window (`/proc/PID/stat` utime + stime).
    pub node_cpu_s: Vec<Option<f64>>,
    /// Per watched process: its label and CPU seconds over the window.
    pub watched_cpu_s: Vec<(String, Option<f64>)>,
    /// The load generator's own CPU seconds over the window.
    #[serde(default)]
    pub loadgen_cpu_s: Option<f64>,
    /// Summed over the nodes, over the window: the engines' `messages_sent`.
    pub engine_messages: Option<u64>,
    /// Summed over the nodes: `bus.published`.
    pub bus_published: Option<u64>,
    /// Summed over the nodes: `bus.received` (deliveries from other nodes, after each
    /// bus dropped the node's own publications).
    pub bus_received: Option<u64>,
    /// Summed over the nodes: `bus.duplicates`.
    pub bus_duplicates: Option<u64>,
    /// Summed over the nodes: `bus.gap_fills`.
    pub bus_gap_fills: Option<u64>,
    /// Summed over the nodes: `bus.resyncs`.
    pub bus_resyncs: Option<u64>,
    /// Summed over the nodes: `bus_errors`.
    pub bus_errors: Option<u64>,
    /// Redis: `PUBLISH` calls over the window (`INFO commandstats`).
    pub redis_publish_calls: Option<u64>,
    /// Redis: microseconds Redis spent in `PUBLISH` over the window.
    pub redis_publish_usec: Option<u64>,
    /// Redis: all commands over the window.
    pub redis_calls: Option<u64>,
    /// NATS: messages received by the server over the window (`/varz` `in_msgs`).
    pub nats_in_msgs: Option<u64>,
    /// NATS: messages sent by the server to subscribers (`/varz` `out_msgs`).
    pub nats_out_msgs: Option<u64>,
    /// Several nodes: latency of the deliveries whose sender was on the same node.
    #[serde(default)]
    pub same_node: Option<Latency>,
    /// Several nodes: latency of the deliveries that crossed the bus.
    #[serde(default)]
    pub cross_node: Option<Latency>,
}

/// Send-to-delivery latency of a share of the deliveries.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Deliveries measured.
    pub samples: u64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds; `None` when it is empty.
    pub fn of(hist: &std::sync::Mutex<hdrhistogram::Histogram<u64>>) -> Option<Latency> {
        let h = hist.lock().unwrap_or_else(|p| p.into_inner());
        (!h.is_empty()).then(|| Latency {
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            p999_ms: h.value_at_quantile(0.999) as f64 / 1000.0,
            samples: h.len(),
        })
    }
}

impl ClusterFigures {
    /// Whether anything beyond the clients' own counts was read.
    pub fn has_bus_or_cpu(&self) -> bool {
        self.nodes > 1
            || self.engine_messages.is_some()
            || !self.watched_cpu_s.is_empty()
            || self.redis_publish_calls.is_some()
            || self.nats_in_msgs.is_some()
    }

    /// CPU microseconds per message written, of node `i`.
    pub fn node_us_per_message(&self, i: usize) -> Option<f64> {
        let cpu = (*self.node_cpu_s.get(i)?)?;
        (self.messages > 0).then(|| cpu * 1e6 / self.messages as f64)
    }

    /// CPU microseconds per message written, of the watched process `i`.
    pub fn watched_us_per_message(&self, i: usize) -> Option<f64> {
        let cpu = self.watched_cpu_s.get(i)?.1?;
        (self.messages > 0).then(|| cpu * 1e6 / self.messages as f64)
    }

    /// `count` per message the engines appended.
    pub fn per_message(&self, count: Option<u64>) -> Option<f64> {
        let n = self.engine_messages.filter(|n| *n > 0)?;
        Some(count? as f64 / n as f64)
    }
}

/// Reads everything `opts` names: the nodes' CPU (`--pid`, one per `--addr`), the
/// watched processes (`--watch`), the nodes' stats (with `--admin-key`), Redis
/// (`--redis-info`) and NATS (`--nats-monitor`). What cannot be read is `None`.
pub async fn read(opts: &Options) -> Reading {
    let at = Some(Instant::now());
    let node_cpu_s = opts
        .all_pids()
        .iter()
        .map(|p| sample(*p).map(|s| s.cpu_s))
        .collect();
    let watched_cpu_s = opts
        .watch
        .iter()
        .map(|w| sample(w.pid).map(|s| s.cpu_s))
        .collect();
    let own_cpu_s = sample(std::process::id()).map(|s| s.cpu_s);
    let mut stats = Vec::new();
    if let Some(key) = &opts.admin_key {
        for addr in opts.nodes() {
            stats.push(admin_stats(addr, key).await.ok().map(|v| stat_numbers(&v)));
        }
    }
    let redis = match &opts.redis_info {
        Some(addr) => redis_counts(addr).await.ok(),
        None => None,
    };
    let nats = match &opts.nats_monitor {
        Some(addr) => nats_counts(addr).await.ok(),
        None => None,
    };
    Reading {
        at,
        node_cpu_s,
        watched_cpu_s,
        own_cpu_s,
        stats,
        redis,
        nats,
    }
}

fn stat_numbers(v: &serde_json::Value) -> [u64; 7] {
    let n = |path: &[&str]| {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    [
        n(&["messages_sent"]),
        n(&["bus", "published"]),
        n(&["bus", "received"]),
        n(&["bus", "duplicates"]),
        n(&["bus", "gap_fills"]),
        n(&["bus", "resyncs"]),
        n(&["bus_errors"]),
    ]
}

/// The figures between two readings, with the clients' own counts over the window.
pub fn figures(
    opts: &Options,
    a: &Reading,
    b: &Reading,
    messages: u64,
    deliveries: u64,
) -> ClusterFigures {
    let diff = |x: &[Option<f64>], y: &[Option<f64>]| -> Vec<Option<f64>> {
        x.iter().zip(y).map(|(x, y)| Some((*y)? - (*x)?)).collect()
    };
    // Summed over the nodes; `None` unless every node answered at both edges.
    let stat = |i: usize| -> Option<u64> {
        if a.stats.is_empty() || a.stats.len() != b.stats.len() {
            return None;
        }
        a.stats.iter().zip(&b.stats).try_fold(0u64, |sum, (x, y)| {
            Some(sum + y.as_ref()?[i].saturating_sub(x.as_ref()?[i]))
        })
    };
    let window_s = match (a.at, b.at) {
        (Some(x), Some(y)) => y.duration_since(x).as_secs_f64(),
        _ => 0.0,
    };
    let redis = a.redis.zip(b.redis);
    let nats = a.nats.zip(b.nats);
    ClusterFigures {
        nodes: opts.nodes().len(),
        window_s,
        messages,
        deliveries,
        node_cpu_s: diff(&a.node_cpu_s, &b.node_cpu_s),
        watched_cpu_s: opts
            .watch
            .iter()
            .map(|w| w.label.clone())
            .zip(diff(&a.watched_cpu_s, &b.watched_cpu_s))
            .collect(),
        loadgen_cpu_s: a.own_cpu_s.zip(b.own_cpu_s).map(|(x, y)| y - x),
        engine_messages: stat(0),
        bus_published: stat(1),
        bus_received: stat(2),
        bus_duplicates: stat(3),
        bus_gap_fills: stat(4),
        bus_resyncs: stat(5),
        bus_errors: stat(6),
        redis_publish_calls: redis.map(|(x, y)| y.publish_calls.saturating_sub(x.publish_calls)),
        redis_publish_usec: redis.map(|(x, y)| y.publish_usec.saturating_sub(x.publish_usec)),
        redis_calls: redis.map(|(x, y)| y.calls.saturating_sub(x.calls)),
        nats_in_msgs: nats.map(|(x, y)| y.in_msgs.saturating_sub(x.in_msgs)),
        nats_out_msgs: nats.map(|(x, y)| y.out_msgs.saturating_sub(x.out_msgs)),
        same_node: None,
        cross_node: None,
    }
}

/// `INFO commandstats` over a plain RESP connection: `PUBLISH` calls and time, all calls.
async fn redis_counts(addr: &str) -> Result<RedisCounts, String> {
    let fetch = async {
        let mut tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("redis: connect {addr}: {e}"))?;
        tcp.write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
            .await
            .map_err(|e| format!("redis: write: {e}"))?;
        // One bulk string: `$LEN\r\n` then LEN bytes and `\r\n`.
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = tcp
                .read(&mut buf)
                .await
                .map_err(|e| format!("redis: read: {e}"))?;
            if n == 0 {
                return Err("redis: closed".to_owned());
            }
            answer.extend_from_slice(&buf[..n]);
            if let Some(end) = answer.iter().position(|b| *b == b'\n') {
                let len: usize = std::str::from_utf8(&answer[1..end])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or("redis: not a bulk string")?;
                if answer.len() >= end + 1 + len {
                    return Ok(
                        String::from_utf8_lossy(&answer[end + 1..end + 1 + len]).into_owned()
                    );
                }
            }
            if answer.len() as u64 > MAX_ANSWER {
                return Err("redis: answer too long".to_owned());
            }
        }
    };
    let text = tokio::time::timeout(TIMEOUT, fetch)
        .await
        .map_err(|_| "redis: no answer in time".to_owned())??;
    Ok(parse_commandstats(&text))
}

/// `cmdstat_publish:calls=N,usec=U,…` lines, summed over every command for `calls`.
fn parse_commandstats(text: &str) -> RedisCounts {
    let mut counts = RedisCounts::default();
    for line in text.lines() {
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        let Some(cmd) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        let field = |key: &str| -> u64 {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        counts.calls += field("calls");
        if cmd == "publish" {
            counts.publish_calls = field("calls");
            counts.publish_usec = field("usec");
        }
    }
    counts
}

/// `GET /varz` of a NATS monitoring port: `in_msgs`, `out_msgs`.
async fn nats_counts(addr: &str) -> Result<NatsCounts, String> {
    let fetch = async {
        let mut tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("varz: connect {addr}: {e}"))?;
        let request = format!("GET /varz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("varz: write: {e}"))?;
        let mut answer = Vec::new();
        tcp.take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("varz: read: {e}"))?;
        Ok::<Vec<u8>, String>(answer)
    };
    let answer = tokio::time::timeout(TIMEOUT, fetch)
        .await
        .map_err(|_| "varz: no answer in time".to_owned())??;
    let text = String::from_utf8_lossy(&answer);
    let (_, body) = text.split_once("\r\n\r\n").ok_or("varz: not HTTP")?;
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("varz: {e}"))?;
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok(NatsCounts {
        in_msgs: n("in_msgs"),
        out_msgs: n("out_msgs"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_are_read() {
        let text = "# Commandstats\r\ncmdstat_publish:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_ping:calls=3,usec=1,usec_per_call=0.33\r\n";
        let c = parse_commandstats(text);
        assert_eq!(c.publish_calls, 12);
        assert_eq!(c.publish_usec, 30);
        assert_eq!(c.calls, 15);
    }
}
