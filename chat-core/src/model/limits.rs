//! Validation limits and the per-session rate limiter.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Limits the engine enforces. Every input has a maximum size; every list a maximum page.
///
/// Start from [`Limits::default`] and set the fields you change; the struct is
/// `#[non_exhaustive]` so that new limits are not breaking changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum bytes in a message body (default 4096).
    pub max_body_bytes: usize,
    /// Maximum attachments on one message (default 10).
    pub max_attachments: usize,
    /// Maximum messages in one history page (default 100).
    pub max_history_page: u32,
    /// Maximum entries in a conversation or friend list page (default 200).
    pub max_list_page: u32,
    /// Maximum members in a room (default 10,000).
    pub max_room_members: u32,
    /// A resume that misses more messages than this in one conversation is answered
    /// "too far behind" and the client pages history instead (default 500).
    pub max_resume_gap: u64,
    /// Maximum conversations in one resume command (default 500: a full resume of
    /// that many fits in one 64 KiB frame).
    pub max_resume_conversations: usize,
    /// Typing lease length in milliseconds (default 5,000).
    pub typing_ttl_ms: u64,
    /// Commands per second per session, sustained (default 50; 0 disables the limit).
    pub commands_per_second: u32,
    /// Commands a session may burst above the rate (default 100).
    pub command_burst: u32,
    /// Conversations per user whose events a session receives live (default 10,000). A
    /// user in more gets live events for this many (ordered by id) plus every one joined
    /// while connected; the others are read with `history` and `resume`.
    pub max_live_conversations: u32,
    /// Rooms with more members than this get no per-message status and no member
    /// watermarks in `history` replies (default 100); clients derive status from receipts.
    pub status_member_limit: u32,
    /// Rooms with more live sessions on one node than this get no presence fan-out there
    /// (default 500): a presence change in a crowd is noise that costs O(members).
    /// Friends are still told.
    pub presence_room_limit: usize,
    /// Conversation kinds a node remembers so that a known member's send reads nothing
    /// from the store (default 100,000); the cache starts over when full.
    pub kind_cache_max: usize,
    /// Messages read from the store per page while replaying a resume (default 1,000).
    pub resume_page: u32,
    /// Appends this node may have waiting for the store at once (default 256; 0 means
    /// no bound). Past it a send is refused at once with `unavailable` and a retry hint
    /// ([`Limits::overload_retry_after_ms`]) instead of queueing: under overload, latency
    /// stays bounded and the excess is shed.
    pub max_pending_appends: usize,
    /// The retry hint, in milliseconds, given with a send refused by
    /// [`Limits::max_pending_appends`] (default 1,000).
    pub overload_retry_after_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4096,
            max_attachments: 10,
            max_history_page: 100,
            max_list_page: 200,
            max_room_members: 10_000,
            max_resume_gap: 500,
            max_resume_conversations: 500,
            typing_ttl_ms: 5_000,
            commands_per_second: 50,
            command_burst: 100,
            max_live_conversations: 10_000,
            status_member_limit: 100,
            presence_room_limit: 500,
            kind_cache_max: 100_000,
            resume_page: 1_000,
            max_pending_appends: 256,
            overload_retry_after_ms: 1_000,
        }
    }
}

/// A token bucket driven by the injected clock (so tests are deterministic).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<DateTime<Utc>>,
}

impl RateLimiter {
    /// `per_second` tokens refill each second up to `burst`; 0 per second never limits.
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: None,
        }
    }

    /// Takes one token at `now`; false when none is left.
    pub fn try_take(&mut self, now: DateTime<Utc>) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        if let Some(last) = self.last {
            let elapsed = (now - last).num_milliseconds().max(0) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
