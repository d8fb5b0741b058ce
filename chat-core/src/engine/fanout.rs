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

use super::{Audience, Delivery, Event, Inner, SessionEntry, Skip};
use crate::ids::SessionId;
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
    inner: &'a Inner,
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
            Skip::Session { node, session } => *node == self.inner.node && *session == s.id,
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
            inner: self,
            cache: EncodeCache::new(&delivery.event),
            skip: &delivery.skip,
            durable: delivery.event.is_durable(),
            delivered: 0,
            dropped: 0,
            slow: Vec::new(),
        };
        match &delivery.audience {
            Audience::Conversation { conversation } => {
                if let Some(subs) = self.conv_subs.get(conversation) {
                    for s in subs.iter() {
                        f.offer(s);
                    }
                }
            }
            Audience::User { user } => {
                if let Some(state) = self.users.get(user) {
                    for s in state.lock().sessions.iter() {
                        f.offer(s);
                    }
                }
            }
            Audience::Presence {
                subject,
                conversations,
                users,
            } => {
                let mut seen: HashSet<SessionId> = HashSet::new();
                for conv in conversations {
                    if let Some(subs) = self.conv_subs.get(conv) {
                        if subs.len() > self.limits.presence_room_limit {
                            continue;
                        }
                        for s in subs.iter() {
                            if &s.user != subject && seen.insert(s.id) {
                                f.offer(s);
                            }
                        }
                    }
                }
                for user in users {
                    if let Some(state) = self.users.get(user) {
                        for s in state.lock().sessions.iter() {
                            if seen.insert(s.id) {
                                f.offer(s);
                            }
                        }
                    }
                }
            }
        }
        let c = &self.counters;
        c.deliveries.fetch_add(f.delivered, Ordering::Relaxed);
        if f.dropped > 0 {
            c.volatile_dropped.fetch_add(f.dropped, Ordering::Relaxed);
        }
        for s in f.slow {
            self.cut_off(s);
        }
    }

    /// Closes a slow consumer and removes it from every fan-out list. Its presence
    /// bookkeeping finishes in the background.
    fn cut_off(&self, s: Arc<SessionEntry>) {
        tracing::info!(session = %s.id, user = %s.user, "slow consumer cut off");
        self.counters
            .slow_consumer_disconnects
            .fetch_add(1, Ordering::Relaxed);
        s.closed.store(true, Ordering::Release);
        s.transport.close(CloseReason::SlowConsumer);
        // Stop fanning out to it right away, synchronously.
        if let Some(state) = self.users.get(&s.user).map(|st| st.value().clone()) {
            let st = state.lock();
            for conv in &st.conversations {
                if let Some(mut subs) = self.conv_subs.get_mut(conv) {
                    subs.retain(|x| x.id != s.id);
                }
            }
        }
    }
}
