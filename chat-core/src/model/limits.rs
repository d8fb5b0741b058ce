//! Validation limits and the per-session rate limiter.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Limits the engine enforces. Every input has a maximum size; every list a maximum page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum bytes in a message body (default 4096).
    pub max_body_bytes: usize,
    /// Maximum messages in one history page (default 100).
    pub max_history_page: u32,
    /// Maximum entries in a conversation or friend list page (default 200).
    pub max_list_page: u32,
    /// Maximum members in a room (default 10,000).
    pub max_room_members: u32,
    /// A resume that misses more messages than this in one conversation is answered
    /// "too far behind" and the client pages history instead (default 500).
    pub max_resume_gap: u64,
    /// Maximum conversations in one resume command (default 1,000).
    pub max_resume_conversations: usize,
    /// Typing lease length in milliseconds (default 5,000).
    pub typing_ttl_ms: u64,
    /// Commands per second per session, sustained (default 50; 0 disables the limit).
    pub commands_per_second: u32,
    /// Commands a session may burst above the rate (default 100).
    pub command_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4096,
            max_history_page: 100,
            max_list_page: 200,
            max_room_members: 10_000,
            max_resume_gap: 500,
            max_resume_conversations: 1_000,
            typing_ttl_ms: 5_000,
            commands_per_second: 50,
            command_burst: 100,
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
