//! [`EngineBuilder`]: the ports and settings an [`Engine`] is made of.
//!
//! Every port has a default good for one process: an in-memory bus, the default policy
//! (direct messages between friends only), the system clock and random ids. Only the
//! store has none.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::bus::BusReceiver;
use super::loads::Loads;
use super::stats::Counters;
use super::store_faults::{ObservedStore, StoreFaults};
use super::{Engine, Inner};
use crate::error::Result;
use crate::ids::NodeId;
use crate::memory::MemoryBus;
use crate::model::{Limits, TypingLeases};
use crate::ports::{Bus, Clock, DefaultPolicy, IdGen, Policy, RandomIds, Store, SystemClock};

/// Builds an [`Engine`]. Only the store is required.
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    bus: Option<Arc<dyn Bus>>,
    policy: Arc<dyn Policy>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    limits: Limits,
    node: Option<NodeId>,
    presence_ttl: Duration,
    maintenance: Option<Duration>,
    store_error_log_interval: Duration,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("limits", &self.limits)
            .field("node", &self.node)
            .field("presence_ttl", &self.presence_ttl)
            .field("maintenance", &self.maintenance)
            .field("store_error_log_interval", &self.store_error_log_interval)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Starts a builder with the defaults: an in-memory bus (one node, its leases timed
    /// by the builder's clock), the default policy, the system clock, random ids, default
    /// limits, a 30 s presence lease, maintenance (typing expiry, presence renewal) every
    /// second, and at most one log line every 10 s while the store keeps failing.
    pub fn new(store: Arc<dyn Store>) -> Self {
        EngineBuilder {
            store,
            bus: None,
            policy: Arc::new(DefaultPolicy::default()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            limits: Limits::default(),
            node: None,
            presence_ttl: Duration::from_secs(30),
            maintenance: Some(Duration::from_secs(1)),
            store_error_log_interval: Duration::from_secs(10),
        }
    }

    /// The bus shared with other nodes.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The embedder's policy.
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// The clock (inject a [`ManualClock`](crate::ports::ManualClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The id generator.
    pub fn ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// The limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// This node's id (random by default).
    pub fn node(mut self, node: NodeId) -> Self {
        self.node = Some(node);
        self
    }

    /// How long a node's presence lease lasts without renewal (default 30 s).
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl;
        self
    }

    /// How often the background task expires typing leases and renews presence; `None`
    /// runs no background task (call [`Engine::tick`] yourself, as deterministic tests do).
    pub fn maintenance(mut self, every: Option<Duration>) -> Self {
        self.maintenance = every;
        self
    }

    /// While the store keeps failing, at most one log line per `every` (default 10 s),
    /// counting the failures it did not log; the first failure and the recovery are always
    /// logged. Timed by the builder's clock.
    pub fn store_error_log_interval(mut self, every: Duration) -> Self {
        self.store_error_log_interval = every;
        self
    }

    /// Builds the engine and attaches it to the bus. Must run inside a tokio runtime
    /// when maintenance is on.
    ///
    /// # Errors
    /// `unavailable` when the bus refuses the node.
    pub async fn build(self) -> Result<Engine> {
        let clock = self.clock;
        let bus = self
            .bus
            .unwrap_or_else(|| Arc::new(MemoryBus::new(clock.clone())));
        let node = self.node.unwrap_or_else(|| NodeId(uuid::Uuid::now_v7()));
        let typing_ttl = chrono::Duration::milliseconds(
            i64::try_from(self.limits.typing_ttl_ms).unwrap_or(i64::MAX),
        );
        let counters = Arc::new(Counters::default());
        let store = Arc::new(ObservedStore::new(
            self.store,
            StoreFaults::new(
                clock.clone(),
                counters.clone(),
                self.store_error_log_interval,
            ),
        ));
        let append_slots = match self.limits.max_pending_appends {
            0 => None,
            n => Some(tokio::sync::Semaphore::new(
                n.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
        };
        let loads = Loads::new(
            store.clone(),
            self.limits.max_live_conversations,
            self.limits.max_live_conversations,
        );
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            node,
            store,
            loads,
            bus: bus.clone(),
            policy: self.policy,
            clock,
            ids: self.ids,
            limits: self.limits,
            presence_ttl: self.presence_ttl,
            next_session: AtomicU64::new(1),
            registry: RwLock::default(),
            topics: Default::default(),
            marks: Default::default(),
            remote_online: Default::default(),
            last_renewal: Default::default(),
            presence_turns: Default::default(),
            typing: Mutex::new(TypingLeases::new(typing_ttl)),
            kinds: Default::default(),
            counters,
            append_slots,
            shutting_down: AtomicBool::new(false),
        });
        bus.attach(node, Arc::new(BusReceiver(Arc::downgrade(&inner))))
            .await?;
        let engine = Engine { inner };
        if let Some(every) = self.maintenance {
            let weak = Arc::downgrade(&engine.inner);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    Engine { inner }.tick().await;
                }
            });
        }
        Ok(engine)
    }
}
