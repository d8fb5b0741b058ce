//! `/metrics` in the Prometheus text format, from the engine's stats.

use std::fmt::Write;

use chat_core::engine::{Stats, BUCKETS_MICROS};

/// Renders the engine's stats as Prometheus metrics.
pub(crate) fn render(stats: &Stats, live_connections: usize) -> String {
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        "chat_connections",
        "Open WebSocket sessions on this node.",
        "gauge",
        stats.connections,
    );
    gauge(
        "chat_transport_connections",
        "WebSocket connections the transport holds (including ones being set up).",
        "gauge",
        live_connections as u64,
    );
    gauge(
        "chat_online_users",
        "Users with at least one session on this node.",
        "gauge",
        stats.online_users,
    );
    gauge(
        "chat_live_conversations",
        "Conversations with a live session on this node.",
        "gauge",
        stats.live_conversations,
    );
    gauge(
        "chat_messages_sent_total",
        "Messages appended through this node.",
        "counter",
        stats.messages_sent,
    );
    gauge(
        "chat_deliveries_total",
        "Frames queued to sessions.",
        "counter",
        stats.deliveries,
    );
    gauge(
        "chat_volatile_dropped_total",
        "Typing and presence events dropped because a queue was full.",
        "counter",
        stats.volatile_dropped,
    );
    gauge(
        "chat_slow_consumer_disconnects_total",
        "Sessions cut off because a durable event did not fit their queue.",
        "counter",
        stats.slow_consumer_disconnects,
    );
    gauge(
        "chat_bus_errors_total",
        "Failed publishes to the bus.",
        "counter",
        stats.bus_errors,
    );
    let h = &stats.append_latency;
    let name = "chat_store_append_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Store append latency as the engine saw it.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0u64;
    for (i, bound) in BUCKETS_MICROS.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum {}", h.sum_micros as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {}", h.count());
    out
}
