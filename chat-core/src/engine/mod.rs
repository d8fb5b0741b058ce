//! The engine: sessions, commands and fan-out.
//!
//! [`Engine`] is a cheap-to-clone handle. A transport authenticates a connection, then
//! calls [`Engine::open_session`] with the connection's [`Transport`]; the returned
//! [`Session`] takes [`Command`]s and answers [`Reply`]s, while events for the user are
//! encoded (once per wire format) and queued on the transport without ever blocking.
//!
//! Fan-out happens after the store commits (invariant 2). Each node delivers to its own
//! sessions and publishes the delivery on the [`Bus`] for the others.
//!
//! # Layout
//!
//! | file | what it holds |
//! |---|---|
//! | `builder.rs` | [`EngineBuilder`]: the ports and settings, with their defaults |
//! | `session.rs` | [`Session`]: opening, running commands, closing |
//! | `command/` | [`Command`], [`Reply`], the handlers' narrow context, one file per command |
//! | `registry.rs` | sans-IO: who is connected, who follows which conversation, topic diffs |
//! | `bus.rs` | publishing, deliveries from other nodes, bus subscriptions per topic |
//! | `fanout.rs` | from a delivery to frames queued on this node's sessions |
//! | `gaps.rs` | per followed conversation, the seq passed on; gaps filled from the store |
//! | `presence.rs` | coming online, going offline, telling friends and co-members |
//! | `admin.rs` | what the embedder does outside any session: system messages, deletions |
//! | `stats.rs` | counters, the append-latency histogram, [`Stats`] |
//! | `store_faults.rs` | the store as the engine calls it: errors counted by kind, outages logged |
//! | `keyed.rs`, `kinds.rs` | per-key async locks; the conversation-kind cache |

mod admin;
mod builder;
mod bus;
mod command;
mod fanout;
mod gaps;
mod keyed;
mod kinds;
mod loads;
mod presence;
mod registry;
mod session;
mod stats;
mod store_faults;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

pub use crate::event::{Audience, Delivery, Event, Skip};
pub use builder::EngineBuilder;
pub use command::*;
pub use session::Session;
pub use stats::{BusStats, LatencySnapshot, Stats, BUCKETS_MICROS};

use crate::error::Result;
use crate::ids::{NodeId, SessionId, UserId};
use crate::model::{Limits, TypingLeases};
use crate::ports::{Bus, Clock, CloseReason, IdGen, Policy, Store, Topic};
use keyed::KeyedLocks;
use kinds::KindCache;
use registry::Registry;
use session::SessionEntry;
use stats::Counters;

/// The engine handle. Clone it freely: every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.inner.node)
            .finish()
    }
}

/// The state behind an [`Engine`] handle: the ports, and this node's live state.
pub(crate) struct Inner {
    /// This very `Inner`, for work spawned from `&self`.
    me: Weak<Inner>,
    node: NodeId,
    store: Arc<dyn Store>,
    /// Session opens' reads of the store, coalesced.
    loads: loads::Loads,
    bus: Arc<dyn Bus>,
    policy: Arc<dyn Policy>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    limits: Limits,
    presence_ttl: Duration,
    next_session: AtomicU64,
    /// Who is connected here and who follows what.
    registry: RwLock<Registry<Arc<SessionEntry>>>,
    /// Per bus topic: whether this node is subscribed (changed under that topic's lock).
    topics: KeyedLocks<Topic, bool>,
    /// Per followed conversation: the highest seq passed to this node's sessions.
    marks: gaps::Marks,
    /// Per user: one online/offline transition at a time.
    presence_turns: KeyedLocks<UserId, ()>,
    typing: Mutex<TypingLeases>,
    /// Users another node announced online, with whom to tell when their leases expire.
    /// (Whether the last sweep found them without a lease.)
    remote_online: Mutex<HashMap<UserId, bool>>,
    /// When this node last renewed its presence leases (renewed every third of a lease).
    last_renewal: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    kinds: KindCache,
    counters: Arc<Counters>,
    /// Slots for appends waiting for the store ([`Limits::max_pending_appends`]); `None`
    /// when unbounded.
    append_slots: Option<tokio::sync::Semaphore>,
    shutting_down: AtomicBool,
}

impl Inner {
    fn next_session_id(&self) -> SessionId {
        SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

impl Engine {
    /// Starts building an engine on `store`.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder::new(store)
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The store, as the engine calls it: the one given to the builder, its errors counted
    /// in [`Stats::store_errors`] and its outages logged.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Whether the bus answers now (an in-process bus always does).
    ///
    /// # Errors
    /// `unavailable` when the bus server cannot be reached.
    pub async fn bus_ready(&self) -> Result<()> {
        self.inner.bus.ready().await
    }

    /// Runs a command as `user` without a connection (for an HTTP API): the same rules
    /// apply, and events reach the user's live sessions, if any.
    ///
    /// # Errors
    /// The command's error.
    pub async fn execute_as(&self, user: &UserId, command: Command) -> Result<Reply> {
        command::run(&Ctx::new(&self.inner, user, None), command).await
    }

    /// Counts of this node's sessions, users, live conversations and traffic.
    pub fn stats(&self) -> Stats {
        let live = self.inner.registry.read().counts();
        self.inner.counters.snapshot(self.inner.node, live)
    }

    /// Periodic upkeep, run by the background task (or by tests after moving a manual
    /// clock): ends expired typing leases (telling the others); every third of a presence
    /// lease, renews this node's leases in one batch and tells its sessions of users of
    /// other nodes whose leases ran out.
    pub async fn tick(&self) {
        let inner = &self.inner;
        let expired = inner.typing.lock().expire(inner.clock.now());
        for (conversation, user) in expired {
            inner
                .publish(Delivery {
                    audience: Audience::Conversation { conversation },
                    skip: Skip::User { user: user.clone() },
                    event: Event::Typing {
                        conversation,
                        user,
                        typing: false,
                    },
                })
                .await;
        }
        let now = inner.clock.now();
        let due = {
            let mut last = inner.last_renewal.lock();
            let every = chrono::Duration::from_std(inner.presence_ttl / 3).unwrap_or_default();
            let due = match *last {
                Some(at) => now - at >= every,
                None => true,
            };
            if due {
                *last = Some(now);
            }
            due
        };
        if !due {
            return;
        }
        inner.sweep_departed().await;
        let users: Vec<UserId> = inner.registry.read().users().cloned().collect();
        if !users.is_empty() {
            match inner
                .bus
                .renew_presence(inner.node, &users, inner.presence_ttl)
                .await
            {
                Ok(()) => stats::BusCounters::add(&inner.counters.bus.presence_renewals, 1),
                Err(e) => inner.bus_error(&e),
            }
        }
    }

    /// Closes every session with [`CloseReason::Shutdown`] (their queued frames stay
    /// queued for the transports to flush) and leaves the bus. Sessions opened from now
    /// on are refused with `unavailable`.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<Arc<SessionEntry>> =
            inner.registry.read().all_sessions().cloned().collect();
        for s in sessions {
            s.closed.store(true, Ordering::Release);
            s.transport.close(CloseReason::Shutdown);
            inner.detach_session(&s).await;
        }
        if let Err(e) = inner.bus.detach(inner.node).await {
            inner.bus_error(&e);
        }
    }
}
