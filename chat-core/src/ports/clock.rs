//! Injected time and ids (invariant 10).

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, DurationRound, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::ids::{ConversationId, MessageId};

/// Where the engine reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Now, with millisecond precision (what stores keep).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, truncated to milliseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now.duration_trunc(Duration::milliseconds(1)).unwrap_or(now)
    }
}

/// A clock that moves only when told to. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// A clock standing at 2024-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock();
        *now += Duration::from_std(by).unwrap_or(Duration::zero());
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }
}

/// Where the engine gets new ids.
pub trait IdGen: Send + Sync + 'static {
    /// A new conversation id.
    fn conversation_id(&self) -> ConversationId;
    /// A new message id.
    fn message_id(&self) -> MessageId;
}

/// Time-ordered random ids (UUID v7): unique across nodes and friendly to indexes.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGen for RandomIds {
    fn conversation_id(&self) -> ConversationId {
        ConversationId(Uuid::now_v7())
    }
    fn message_id(&self) -> MessageId {
        MessageId(Uuid::now_v7())
    }
}

/// Ids counted from 1, for deterministic tests.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    fn bump(&self) -> u128 {
        u128::from(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl IdGen for SequentialIds {
    fn conversation_id(&self) -> ConversationId {
        ConversationId(Uuid::from_u128((1u128 << 64) | self.bump()))
    }
    fn message_id(&self) -> MessageId {
        MessageId(Uuid::from_u128((2u128 << 64) | self.bump()))
    }
}
