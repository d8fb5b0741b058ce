use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::Result;
use crate::event::Delivery;
use crate::ids::{NodeId, UserId};
use crate::ports::{Bus, BusSink, Clock, Topic};

/// A [`Bus`] inside one process. Several engines attached to one `MemoryBus` (and one
/// shared store) behave as the nodes of a cluster, which is how multi-node behaviour is
/// tested without a broker.
pub struct MemoryBus {
    clock: Arc<dyn Clock>,
    state: Mutex<BusState>,
}

#[derive(Default)]
struct BusState {
    sinks: HashMap<NodeId, Arc<dyn BusSink>>,
    subs: HashMap<Topic, HashSet<NodeId>>,
    presence: HashMap<UserId, HashMap<NodeId, DateTime<Utc>>>,
}

impl MemoryBus {
    /// A bus whose presence leases expire by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryBus {
            clock,
            state: Mutex::new(BusState::default()),
        }
    }
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("MemoryBus")
            .field("nodes", &s.sinks.len())
            .field("topics", &s.subs.len())
            .finish()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()> {
        let mut s = self.state.lock();
        s.sinks.insert(node, sink);
        s.subs.entry(Topic::Broadcast).or_default().insert(node);
        Ok(())
    }

    async fn detach(&self, node: NodeId) -> Result<()> {
        let mut s = self.state.lock();
        s.sinks.remove(&node);
        s.subs.retain(|_, nodes| {
            nodes.remove(&node);
            !nodes.is_empty()
        });
        for leases in s.presence.values_mut() {
            leases.remove(&node);
        }
        Ok(())
    }

    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        self.state
            .lock()
            .subs
            .entry(topic)
            .or_default()
            .insert(node);
        Ok(())
    }

    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        let mut s = self.state.lock();
        if let Some(nodes) = s.subs.get_mut(&topic) {
            nodes.remove(&node);
            if nodes.is_empty() {
                s.subs.remove(&topic);
            }
        }
        Ok(())
    }

    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()> {
        let targets: Vec<Arc<dyn BusSink>> = {
            let s = self.state.lock();
            match s.subs.get(&Topic::of(&delivery.audience)) {
                Some(nodes) => nodes
                    .iter()
                    .filter(|n| **n != origin)
                    .filter_map(|n| s.sinks.get(n).cloned())
                    .collect(),
                None => Vec::new(),
            }
        };
        for sink in targets {
            sink.deliver(delivery.clone());
        }
        Ok(())
    }

    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        let until = self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        let mut s = self.state.lock();
        for u in users {
            s.presence.entry(u.clone()).or_default().insert(node, until);
        }
        Ok(())
    }

    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()> {
        let mut s = self.state.lock();
        if let Some(leases) = s.presence.get_mut(user) {
            leases.remove(&node);
            if leases.is_empty() {
                s.presence.remove(user);
            }
        }
        Ok(())
    }

    fn lossless(&self) -> bool {
        true
    }

    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        let now = self.clock.now();
        let s = self.state.lock();
        Ok(users
            .iter()
            .filter(|u| {
                s.presence
                    .get(*u)
                    .is_some_and(|leases| leases.values().any(|until| *until > now))
            })
            .cloned()
            .collect())
    }
}
