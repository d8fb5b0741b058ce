//! Typing leases: "typing" holds for a few seconds unless renewed, then ends by itself.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::ids::{ConversationId, UserId};

/// What a typing signal should cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingChange {
    /// Tell the others: started typing.
    Started,
    /// Renewed within the coalescing window: tell nobody.
    Renewed,
    /// Tell the others: stopped typing.
    Stopped,
    /// Was not typing: tell nobody.
    Unchanged,
}

/// Typing leases of many users in many conversations.
///
/// A renewal only extends the lease; the others hear "started" once and "stopped" once,
/// whether the user stops, sends, or the lease runs out ([`TypingLeases::expire`]).
#[derive(Debug, Clone)]
pub struct TypingLeases {
    ttl: Duration,
    leases: HashMap<(ConversationId, UserId), DateTime<Utc>>,
}

impl TypingLeases {
    /// Leases that last `ttl` unless renewed.
    pub fn new(ttl: Duration) -> Self {
        TypingLeases {
            ttl,
            leases: HashMap::new(),
        }
    }

    /// The lease length.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The user types (again).
    pub fn start(
        &mut self,
        conv: ConversationId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> TypingChange {
        let until = now + self.ttl;
        match self.leases.insert((conv, user.clone()), until) {
            Some(old) if old > now => TypingChange::Renewed,
            _ => TypingChange::Started,
        }
    }

    /// The user stopped typing (or sent their message).
    pub fn stop(
        &mut self,
        conv: ConversationId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> TypingChange {
        match self.leases.remove(&(conv, user.clone())) {
            Some(until) if until > now => TypingChange::Stopped,
            _ => TypingChange::Unchanged,
        }
    }

    /// Removes and returns every lease that ran out by `now`.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<(ConversationId, UserId)> {
        let mut gone = Vec::new();
        self.leases.retain(|key, until| {
            if *until <= now {
                gone.push(key.clone());
                false
            } else {
                true
            }
        });
        gone.sort();
        gone
    }

    /// True while `user` holds a live lease in `conv`.
    pub fn is_typing(&self, conv: ConversationId, user: &UserId, now: DateTime<Utc>) -> bool {
        self.leases
            .get(&(conv, user.clone()))
            .is_some_and(|until| *until > now)
    }

    /// Number of leases held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True when no lease is held.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }
}
