//! The state shared by every route: the engine, the authenticator, the settings, and the
//! HTTP API's per-user rate limits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_core::model::{Limits, RateLimiter};
use chat_core::ports::{Authenticator, Encoder, JsonEncoder};
use chat_core::{Engine, UserId};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Config;

/// What the router needs: the engine, an authenticator and the settings. Cheap to clone.
#[derive(Clone)]
pub struct ChatState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) config: Arc<Config>,
    pub(crate) encoder: Arc<dyn Encoder>,
    /// The encoder of the binary subprotocol `chat.v1.proto`.
    pub(crate) proto_encoder: Arc<dyn Encoder>,
    pub(crate) live: Live,
    pub(crate) rates: UserRates,
}

/// Counts open WebSocket connections so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct Live {
    count: AtomicUsize,
    closing: AtomicBool,
    idle: Notify,
}

/// Held by each connection task; the count drops with it.
pub(crate) struct LiveGuard(Arc<Inner>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.live.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.live.idle.notify_waiters();
        }
    }
}

impl std::fmt::Debug for ChatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatState")
            .field("engine", &self.inner.engine)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ChatState {
    /// The state for [`router`](crate::router) and [`serve`](crate::serve).
    pub fn new(engine: Engine, authenticator: Arc<dyn Authenticator>, config: Config) -> Self {
        ChatState {
            inner: Arc::new(Inner {
                rates: UserRates::new(engine.limits()),
                engine,
                authenticator,
                config: Arc::new(config),
                encoder: Arc::new(JsonEncoder),
                proto_encoder: Arc::new(chat_proto::ProtoEncoder),
                live: Live::default(),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Open WebSocket connections handled by this state.
    pub fn live_connections(&self) -> usize {
        self.inner.live.count.load(Ordering::Acquire)
    }

    /// Registers a connection, unless shutdown began.
    pub(crate) fn enter(&self) -> Option<LiveGuard> {
        if self.inner.live.closing.load(Ordering::Acquire) {
            return None;
        }
        self.inner.live.count.fetch_add(1, Ordering::AcqRel);
        Some(LiveGuard(self.inner.clone()))
    }

    /// True once shutdown began.
    pub(crate) fn closing(&self) -> bool {
        self.inner.live.closing.load(Ordering::Acquire)
    }

    /// Refuses new connections from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.inner.live.closing.store(true, Ordering::Release);
    }

    /// Waits until no connection is open.
    pub(crate) async fn drained(&self) {
        loop {
            let idle = self.inner.live.idle.notified();
            if self.live_connections() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// The HTTP API's command rate, per user: the engine's `commands_per_second` and
/// `command_burst`, the same token bucket ([`RateLimiter`]) a WebSocket session has.
///
/// Memory stays bounded by the users active lately: a bucket left alone long enough to
/// refill is the same as a new one, so such buckets are dropped whenever the map has
/// doubled since the last sweep (amortised O(1) per request).
pub(crate) struct UserRates {
    per_second: u32,
    burst: u32,
    /// How long an untouched bucket takes to be full again.
    refill: Duration,
    /// The time the buckets see: this state's start plus tokio's monotonic clock, so a
    /// test that pauses tokio's time drives them.
    start: (Instant, chrono::DateTime<chrono::Utc>),
    buckets: Mutex<Buckets>,
}

struct Buckets {
    map: HashMap<UserId, (RateLimiter, Instant)>,
    sweep_at: usize,
}

/// The smallest map size that triggers a sweep.
const MIN_SWEEP: usize = 1024;

/// A refused request: how long until the next one may pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryAfter(pub(crate) Duration);

impl UserRates {
    fn new(limits: &Limits) -> Self {
        let per_second = limits.commands_per_second;
        let burst = limits.command_burst.max(1);
        let refill = if per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(f64::from(burst) / f64::from(per_second))
        };
        UserRates {
            per_second,
            burst,
            refill,
            start: (Instant::now(), chrono::Utc::now()),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
        }
    }

    /// Takes one token from `user`'s bucket.
    ///
    /// # Errors
    /// When the bucket is empty: the time until a token is back (at most one token's
    /// worth, `1 / commands_per_second`).
    pub(crate) fn take(&self, user: &UserId) -> Result<(), RetryAfter> {
        if self.per_second == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let wall = self.start.1
            + chrono::Duration::from_std(now.duration_since(self.start.0))
                .unwrap_or(chrono::Duration::MAX);
        let mut b = self.buckets.lock();
        if b.map.len() >= b.sweep_at && !b.map.contains_key(user) {
            let refill = self.refill;
            b.map
                .retain(|_, (_, last)| now.duration_since(*last) < refill);
            b.sweep_at = (b.map.len() * 2).max(MIN_SWEEP);
        }
        let (bucket, last) = b
            .map
            .entry(user.clone())
            .or_insert_with(|| (RateLimiter::new(self.per_second, self.burst), now));
        *last = now;
        if bucket.try_take(wall) {
            Ok(())
        } else {
            Err(RetryAfter(Duration::from_secs_f64(
                1.0 / f64::from(self.per_second),
            )))
        }
    }

    /// Users with a bucket (for tests of the sweep).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32, burst: u32) -> Limits {
        let mut l = Limits::default();
        l.commands_per_second = per_second;
        l.command_burst = burst;
        l
    }

    fn user(i: usize) -> UserId {
        UserId::new(format!("u{i}")).expect("user id")
    }

    #[tokio::test(start_paused = true)]
    async fn idle_users_are_swept_and_active_ones_keep_their_bucket() {
        let rates = UserRates::new(&limits(10, 2));
        // One busy user empties their bucket.
        let busy = user(0);
        assert!(rates.take(&busy).is_ok());
        assert!(rates.take(&busy).is_ok());
        assert!(rates.take(&busy).is_err());
        // Many users come once, and go.
        for i in 1..MIN_SWEEP {
            assert!(rates.take(&user(i)).is_ok());
        }
        assert_eq!(rates.len(), MIN_SWEEP);
        // Past the refill time (2 / 10 s) every bucket is full again: a sweep drops them.
        tokio::time::advance(Duration::from_millis(250)).await;
        assert!(rates.take(&user(MIN_SWEEP)).is_ok());
        assert_eq!(rates.len(), 1, "only the newcomer is left");
        // A user still within the refill time keeps their (empty) bucket.
        for _ in 0..2 {
            assert!(rates.take(&busy).is_ok());
        }
        for i in MIN_SWEEP + 1..2 * MIN_SWEEP + 1 {
            assert!(rates.take(&user(i)).is_ok());
        }
        // A sweep ran on the way (the map reached its size again) and dropped nobody.
        assert_eq!(rates.len(), MIN_SWEEP + 2);
        assert!(
            rates.take(&busy).is_err(),
            "the busy user's bucket survived"
        );
    }
}
