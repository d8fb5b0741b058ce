//! `/metrics` in the Prometheus text format, from the engine's stats.

use std::fmt::Write;

use chat_core::engine::{Stats, BUCKETS_MICROS};
use chat_core::ErrorCode;

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
    gauge(
        "chat_appends_refused_total",
        "Sends refused at once because too many appends were waiting for the store.",
        "counter",
        stats.appends_refused,
    );
    gauge(
        "chat_pending_appends",
        "Appends waiting for the store.",
        "gauge",
        stats.pending_appends,
    );
    let b = &stats.bus;
    for (name, help, value) in [
        (
            "chat_bus_published_total",
            "Deliveries published to the bus (one per event, whatever the recipients).",
            b.published,
        ),
        (
            "chat_bus_received_total",
            "Deliveries received from other nodes.",
            b.received,
        ),
        (
            "chat_bus_resyncs_total",
            "Times the bus said deliveries may have been lost (a reconnect, an overflow).",
            b.resyncs,
        ),
        (
            "chat_bus_gap_fills_total",
            "Gaps in a conversation's seqs filled from the store.",
            b.gap_fills,
        ),
        (
            "chat_bus_filled_messages_total",
            "Messages read from the store to fill gaps.",
            b.filled_messages,
        ),
        (
            "chat_bus_duplicates_total",
            "Messages that arrived again after being passed on, dropped.",
            b.duplicates,
        ),
        (
            "chat_bus_resume_required_total",
            "resume_required events sent because a gap could not be filled.",
            b.resume_required,
        ),
        (
            "chat_presence_renewals_total",
            "Presence lease renewals sent to the bus (one per batch).",
            b.presence_renewals,
        ),
        (
            "chat_presence_expired_total",
            "Users of other nodes seen offline because their leases ran out.",
            b.presence_expired,
        ),
    ] {
        gauge(name, help, "counter", value);
    }
    let name = "chat_store_errors_total";
    let _ = writeln!(
        out,
        "# HELP {name} Errors returned by store calls, by code (unavailable and internal are faults).\n# TYPE {name} counter"
    );
    for code in ErrorCode::ALL {
        let n = stats.store_errors.get(&code).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_have_one_series_per_code() {
        let mut stats: Stats = serde_json::from_value(serde_json::json!({
            "node": "00000000-0000-0000-0000-000000000000",
            "connections": 0, "online_users": 0, "live_conversations": 0,
            "messages_sent": 0, "deliveries": 0, "volatile_dropped": 0,
            "slow_consumer_disconnects": 0, "bus_errors": 0,
            "store_errors": {}, "appends_refused": 3, "pending_appends": 7,
            "append_latency": { "counts": [], "sum_micros": 0 },
            "bus": { "published": 0, "received": 0, "resyncs": 2, "gap_fills": 1,
                     "filled_messages": 4, "duplicates": 0, "resume_required": 0,
                     "presence_renewals": 9, "presence_expired": 0 }
        }))
        .expect("stats");
        stats.store_errors.insert(ErrorCode::Unavailable, 19_500);
        let text = render(&stats, 0);
        assert!(
            text.contains("chat_store_errors_total{code=\"unavailable\"} 19500"),
            "{text}"
        );
        assert!(text.contains("chat_store_errors_total{code=\"internal\"} 0"));
        assert_eq!(
            text.matches("chat_store_errors_total{").count(),
            ErrorCode::ALL.len()
        );
        assert_eq!(
            text.matches("# TYPE chat_store_errors_total counter")
                .count(),
            1
        );
        assert!(text.contains("chat_appends_refused_total 3"));
        assert!(text.contains("chat_pending_appends 7"));
        assert!(text.contains("chat_bus_resyncs_total 2"));
        assert!(text.contains("chat_bus_filled_messages_total 4"));
        assert!(text.contains("chat_presence_renewals_total 9"));
    }
}
