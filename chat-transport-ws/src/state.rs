//! The state shared by every route: the engine, the authenticator, the settings.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chat_core::ports::{Authenticator, Encoder, JsonEncoder};
use chat_core::Engine;
use tokio::sync::Notify;

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
    pub(crate) live: Live,
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
                engine,
                authenticator,
                config: Arc::new(config),
                encoder: Arc::new(JsonEncoder),
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
