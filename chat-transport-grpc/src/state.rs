//! The state every call shares: the engine, the authenticator, the settings, the
//! encoder of this wire format, open streams, and the unary calls' per-user rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_core::model::RateLimiter;
use chat_core::ports::{Authenticator, Encoder};
use chat_core::{Engine, UserId};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::GrpcConfig;

/// What [`serve`](crate::serve) needs: the engine, an authenticator and the settings.
/// Cheap to clone.
#[derive(Clone)]
pub struct GrpcState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) config: Arc<GrpcConfig>,
    pub(crate) encoder: Arc<dyn Encoder>,
    live: Live,
    rates: UserRates,
}

impl std::fmt::Debug for GrpcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcState")
            .field("engine", &self.inner.engine)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl GrpcState {
    /// The state for [`serve`](crate::serve).
    pub fn new(engine: Engine, authenticator: Arc<dyn Authenticator>, config: GrpcConfig) -> Self {
        GrpcState {
            inner: Arc::new(Inner {
                rates: UserRates::new(
                    engine.limits().commands_per_second,
                    engine.limits().command_burst,
                ),
                engine,
                authenticator,
                config: Arc::new(config),
                encoder: Arc::new(chat_proto::ProtoEncoder),
                live: Live::default(),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The settings.
    pub fn config(&self) -> &GrpcConfig {
        &self.inner.config
    }

    /// Open `Connect` streams handled by this state.
    pub fn live_streams(&self) -> usize {
        self.inner.live.count.load(Ordering::Acquire)
    }

    /// Registers a stream, unless shutdown began.
    pub(crate) fn enter(&self) -> Option<LiveGuard> {
        if self.closing() {
            return None;
        }
        self.inner.live.count.fetch_add(1, Ordering::AcqRel);
        Some(LiveGuard(self.inner.clone()))
    }

    /// True once shutdown began.
    pub(crate) fn closing(&self) -> bool {
        self.inner.live.closing.load(Ordering::Acquire)
    }

    /// Refuses new streams and calls from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.inner.live.closing.store(true, Ordering::Release);
    }

    /// Waits until no stream is open.
    pub(crate) async fn drained(&self) {
        loop {
            let idle = self.inner.live.idle.notified();
            if self.live_streams() == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Takes one unary call from `user`'s budget (the engine's `commands_per_second` and
    /// `command_burst`, as a `Connect` session has).
    ///
    /// # Errors
    /// `rate_limited`, with the time until the next call may pass as the retry hint.
    pub(crate) fn take_call(&self, user: &UserId) -> chat_core::Result<()> {
        self.inner.rates.take(user).map_err(|after| {
            chat_core::Error::rate_limited("too many calls; slow down").with_retry_after(after)
        })
    }
}

/// Counts open `Connect` streams so shutdown can wait for them.
#[derive(Default)]
struct Live {
    count: AtomicUsize,
    closing: AtomicBool,
    idle: Notify,
}

/// Held by each stream; the count drops with it.
pub(crate) struct LiveGuard(Arc<Inner>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.live.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.live.idle.notify_waiters();
        }
    }
}

/// Unary calls' rate, per user: a token bucket each ([`RateLimiter`]), dropped once
/// full again so that memory stays bounded by the users active lately.
struct UserRates {
    per_second: u32,
    burst: u32,
    /// How long an untouched bucket takes to be full again.
    refill: Duration,
    /// The buckets' time: this state's start plus tokio's monotonic clock.
    start: (Instant, chrono::DateTime<chrono::Utc>),
    buckets: Mutex<Buckets>,
}

struct Buckets {
    map: HashMap<UserId, (RateLimiter, Instant)>,
    sweep_at: usize,
}

/// The smallest map size that triggers a sweep.
const MIN_SWEEP: usize = 1024;

impl UserRates {
    fn new(per_second: u32, burst: u32) -> Self {
        let burst = burst.max(1);
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

    fn take(&self, user: &UserId) -> Result<(), Duration> {
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
            Err(Duration::from_secs_f64(1.0 / f64::from(self.per_second)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_user_past_the_burst_waits_and_others_do_not() {
        let rates = UserRates::new(10, 2);
        let alice = UserId::new("alice").expect("user");
        let bob = UserId::new("bob").expect("user");
        assert!(rates.take(&alice).is_ok());
        assert!(rates.take(&alice).is_ok());
        assert_eq!(rates.take(&alice), Err(Duration::from_millis(100)));
        assert!(rates.take(&bob).is_ok(), "each user has a bucket");
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(rates.take(&alice).is_ok(), "refilled");
        let unlimited = UserRates::new(0, 0);
        for _ in 0..1000 {
            assert!(unlimited.take(&alice).is_ok());
        }
    }
}
