//! What the engine counts: traffic counters, a store-latency histogram, and the
//! [`Stats`] snapshot that `chat-server` turns into metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::NodeId;

/// Counters since the engine started. Every method is lock-free.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    messages_sent: AtomicU64,
    deliveries: AtomicU64,
    volatile_dropped: AtomicU64,
    slow_consumer_disconnects: AtomicU64,
    bus_errors: AtomicU64,
    appends_refused: AtomicU64,
    pending_appends: AtomicU64,
    /// Errors returned by store calls, one counter per [`ErrorCode::ALL`] entry.
    store_errors: [AtomicU64; ErrorCode::ALL.len()],
    append_latency: Histogram,
    pub(crate) bus: BusCounters,
}

/// What crossed the bus, and what the store had to make up for.
#[derive(Debug, Default)]
pub(crate) struct BusCounters {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) gap_fills: AtomicU64,
    pub(crate) filled_messages: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) resume_required: AtomicU64,
    pub(crate) presence_renewals: AtomicU64,
    pub(crate) presence_expired: AtomicU64,
}

impl BusCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BusStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BusStats {
            published: get(&self.published),
            received: get(&self.received),
            resyncs: get(&self.resyncs),
            gap_fills: get(&self.gap_fills),
            filled_messages: get(&self.filled_messages),
            duplicates: get(&self.duplicates),
            resume_required: get(&self.resume_required),
            presence_renewals: get(&self.presence_renewals),
            presence_expired: get(&self.presence_expired),
        }
    }
}

/// This node's traffic on the bus, and how it kept its sessions whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct BusStats {
    /// Deliveries published to the bus (one per event, whatever the recipients).
    pub published: u64,
    /// Deliveries received from other nodes.
    pub received: u64,
    /// Times the bus said deliveries may have been lost (a reconnect, an overflow).
    pub resyncs: u64,
    /// Gaps in a conversation's seqs that this node filled from the store.
    pub gap_fills: u64,
    /// Messages read from the store to fill gaps.
    pub filled_messages: u64,
    /// Messages that arrived again after being passed on already, and were dropped.
    pub duplicates: u64,
    /// `resume_required` events sent because a gap could not be filled.
    pub resume_required: u64,
    /// Presence lease renewals sent (one per batch).
    pub presence_renewals: u64,
    /// Users of another node seen offline because their leases expired (the node died
    /// or lost the bus) rather than because it said so.
    pub presence_expired: u64,
}

/// Where `code` sits in [`ErrorCode::ALL`].
fn code_index(code: ErrorCode) -> usize {
    ErrorCode::ALL
        .iter()
        .position(|c| *c == code)
        .unwrap_or(ErrorCode::ALL.len() - 1)
}

impl Counters {
    pub(crate) fn message_sent(&self) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self, delivered: u64, dropped: u64) {
        self.deliveries.fetch_add(delivered, Ordering::Relaxed);
        if dropped > 0 {
            self.volatile_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    pub(crate) fn slow_consumer(&self) {
        self.slow_consumer_disconnects
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bus_error(&self) {
        self.bus_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A send refused because too many appends were waiting for the store.
    pub(crate) fn append_refused(&self) {
        self.appends_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// An append starts waiting for the store; the guard counts it out when dropped.
    pub(crate) fn append_pending(&self) -> PendingAppend<'_> {
        self.pending_appends.fetch_add(1, Ordering::Relaxed);
        PendingAppend(&self.pending_appends)
    }

    /// A store call returned an error of this kind.
    pub(crate) fn store_error(&self, code: ErrorCode) {
        self.store_errors[code_index(code)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn append_took(&self, d: Duration) {
        self.append_latency.record(d);
    }

    /// A snapshot, with the node's live counts filled in by the caller.
    pub(crate) fn snapshot(&self, node: NodeId, live: (usize, usize, usize)) -> Stats {
        let (connections, online_users, live_conversations) = live;
        Stats {
            node,
            connections: connections as u64,
            online_users: online_users as u64,
            live_conversations: live_conversations as u64,
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            deliveries: self.deliveries.load(Ordering::Relaxed),
            volatile_dropped: self.volatile_dropped.load(Ordering::Relaxed),
            slow_consumer_disconnects: self.slow_consumer_disconnects.load(Ordering::Relaxed),
            bus_errors: self.bus_errors.load(Ordering::Relaxed),
            store_errors: ErrorCode::ALL
                .iter()
                .map(|c| {
                    (
                        *c,
                        self.store_errors[code_index(*c)].load(Ordering::Relaxed),
                    )
                })
                .collect(),
            appends_refused: self.appends_refused.load(Ordering::Relaxed),
            pending_appends: self.pending_appends.load(Ordering::Relaxed),
            append_latency: self.append_latency.snapshot(),
            bus: self.bus.snapshot(),
        }
    }
}

/// A snapshot of the engine's state and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// This node.
    pub node: NodeId,
    /// Open sessions (connections) on this node.
    pub connections: u64,
    /// Users with at least one open session on this node.
    pub online_users: u64,
    /// Conversations with at least one live session on this node.
    pub live_conversations: u64,
    /// Messages appended through this node.
    pub messages_sent: u64,
    /// Frames queued to sessions.
    pub deliveries: u64,
    /// Volatile events (typing, presence) dropped because a queue was full.
    pub volatile_dropped: u64,
    /// Sessions cut off because a durable event did not fit their queue.
    pub slow_consumer_disconnects: u64,
    /// Failed publishes to the bus.
    pub bus_errors: u64,
    /// Errors returned by store calls, by kind; every kind of [`ErrorCode::ALL`] is a key.
    /// `unavailable` and `internal` are faults (an outage, a bug); `not_found`,
    /// `conflict` and `invalid` are usually the store's answer to a request.
    pub store_errors: BTreeMap<ErrorCode, u64>,
    /// Sends refused at once because [`Limits::max_pending_appends`] appends were already
    /// waiting for the store.
    ///
    /// [`Limits::max_pending_appends`]: crate::model::Limits::max_pending_appends
    pub appends_refused: u64,
    /// Appends waiting for the store right now.
    pub pending_appends: u64,
    /// How long store appends took, as the engine saw them.
    pub append_latency: LatencySnapshot,
    /// Traffic on the bus, and gaps filled from the store.
    pub bus: BusStats,
}

/// Counts one pending append out when dropped (the append finished, failed or was
/// cancelled).
#[derive(Debug)]
pub(crate) struct PendingAppend<'a>(&'a AtomicU64);

impl Drop for PendingAppend<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upper bounds of the buckets, in microseconds (the last bucket is unbounded).
pub const BUCKETS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A lock-free latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_MICROS
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(BUCKETS_MICROS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatencySnapshot {
    /// Observations per bucket: `counts[i]` fell at or under `BUCKETS_MICROS[i]` (and
    /// above the bucket before); the last entry counts those above every bound.
    pub counts: Vec<u64>,
    /// The sum of every observation, in microseconds.
    pub sum_micros: u64,
}

impl LatencySnapshot {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_counted_by_kind_and_every_kind_is_reported() {
        let c = Counters::default();
        c.store_error(ErrorCode::Unavailable);
        c.store_error(ErrorCode::Unavailable);
        c.store_error(ErrorCode::Internal);
        let pending = c.append_pending();
        let s = c.snapshot(NodeId(uuid::Uuid::nil()), (0, 0, 0));
        assert_eq!(s.pending_appends, 1);
        drop(pending);
        let s = c.snapshot(NodeId(uuid::Uuid::nil()), (0, 0, 0));
        assert_eq!(s.pending_appends, 0);
        assert_eq!(s.store_errors.len(), ErrorCode::ALL.len());
        assert_eq!(s.store_errors[&ErrorCode::Unavailable], 2);
        assert_eq!(s.store_errors[&ErrorCode::Internal], 1);
        assert_eq!(s.store_errors[&ErrorCode::NotFound], 0);
        // JSON keys are the stable codes, and the snapshot reads back.
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["store_errors"]["unavailable"], 2);
        let back: Stats = serde_json::from_value(json).expect("read back");
        assert_eq!(back, s);
    }
}
