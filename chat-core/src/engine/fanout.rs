//! Local fan-out: from a delivery to frames queued on this node's sessions.
//!
//! An event is encoded at most once per wire format, whatever the number of recipients,
//! and every recipient gets a clone of the same `Bytes` (invariant 8). Queues are bounded
//! and never waited on (invariant 7): a durable event that does not fit cuts that client
//! off with [`CloseReason::SlowConsumer`]; a volatile one is dropped.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::session::SessionEntry;
use super::Inner;
use crate::event::{Audience, Delivery, Event, Skip};
use crate::ids::{NodeId, SessionId};
use crate::ports::{CloseReason, Encoder, SendError};

/// Encodes an event lazily, once per format.
struct EncodeCache<'a> {
    event: &'a Event,
    frames: Vec<(&'static str, Option<Bytes>)>,
}

impl<'a> EncodeCache<'a> {
    fn new(event: &'a Event) -> Self {
        EncodeCache {
            event,
            frames: Vec::with_capacity(2),
        }
    }

    fn get(&mut self, encoder: &Arc<dyn Encoder>) -> Option<Bytes> {
        let format = encoder.format();
        if let Some((_, frame)) = self.frames.iter().find(|(f, _)| *f == format) {
            return frame.clone();
        }
        let frame = match encoder.encode(self.event) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, format, "encoding an event");
                None
            }
        };
        self.frames.push((format, frame.clone()));
        frame
    }
}

struct Fanout<'a> {
    node: NodeId,
    cache: EncodeCache<'a>,
    skip: &'a Skip,
    durable: bool,
    delivered: u64,
    dropped: u64,
    slow: Vec<Arc<SessionEntry>>,
}

impl Fanout<'_> {
    fn skipped(&self, s: &SessionEntry) -> bool {
        match self.skip {
            Skip::Nobody => false,
            Skip::Session { node, session } => *node == self.node && *session == s.id,
            Skip::User { user } => &s.user == user,
        }
    }

    fn offer(&mut self, s: &Arc<SessionEntry>) {
        if self.skipped(s) || s.closed.load(Ordering::Relaxed) {
            return;
        }
        let Some(frame) = self.cache.get(s.transport.encoder()) else {
            return;
        };
        match s.transport.try_send(frame) {
            Ok(()) => self.delivered += 1,
            Err(SendError::Full) if self.durable => self.slow.push(s.clone()),
            Err(SendError::Full) => self.dropped += 1,
            Err(SendError::Closed) => {}
        }
    }
}

impl Inner {
    /// Queues a delivery on every matching session of this node.
    pub(crate) fn deliver_local(&self, delivery: &Delivery) {
        let mut f = Fanout {
            node: self.node,
            cache: EncodeCache::new(&delivery.event),
            skip: &delivery.skip,
            durable: delivery.event.is_durable(),
            delivered: 0,
            dropped: 0,
            slow: Vec::new(),
        };
        {
            let registry = self.registry.read();
            match &delivery.audience {
                Audience::Conversation { conversation } => {
                    for s in registry.followers(conversation) {
                        f.offer(s);
                    }
                }
                Audience::User { user } => {
                    for s in registry.sessions(user) {
                        f.offer(s);
                    }
                }
                Audience::Presence {
                    subject,
                    conversations,
                    users,
                } => {
                    let mut seen: HashSet<SessionId> = HashSet::new();
                    for conv in conversations {
                        let followers = registry.followers(conv);
                        if followers.len() > self.limits.presence_room_limit {
                            continue;
                        }
                        for s in followers {
                            if &s.user != subject && seen.insert(s.id) {
                                f.offer(s);
                            }
                        }
                    }
                    for user in users {
                        for s in registry.sessions(user) {
                            if seen.insert(s.id) {
                                f.offer(s);
                            }
                        }
                    }
                }
            }
        }
        self.counters.delivered(f.delivered, f.dropped);
        for s in f.slow {
            self.cut_off(&s);
        }
    }

    /// Closes a slow consumer and stops fanning out to it at once. It stays registered
    /// (its user stays online) until its transport closes the session.
    fn cut_off(&self, s: &Arc<SessionEntry>) {
        if s.closed.swap(true, Ordering::AcqRel) {
            return; // already cut off by a concurrent fan-out
        }
        tracing::info!(session = %s.id, user = %s.user, "slow consumer cut off");
        self.counters.slow_consumer();
        s.transport.close(CloseReason::SlowConsumer);
        let topics = self.registry.write().mute(&s.user, s.id);
        if let Some(me) = self.me.upgrade() {
            me.spawn_reconcile(topics);
        }
    }
}
