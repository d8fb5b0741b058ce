//! Presence: a user is online while at least one of their connections is open.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// A user's presence as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Whose.
    pub user: UserId,
    /// Online on at least one device.
    pub online: bool,
    /// When they were last online (set when offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}

/// A change in a user's presence, as produced by [`Connections`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    /// The first connection opened.
    CameOnline,
    /// The last connection closed.
    WentOffline,
    /// Still online on another device (or still offline).
    Unchanged,
}

/// Counts open connections per user (several devices per user).
#[derive(Debug, Default, Clone)]
pub struct Connections {
    open: HashMap<UserId, usize>,
}

impl Connections {
    /// Records an opened connection.
    pub fn open(&mut self, user: &UserId) -> PresenceChange {
        let n = self.open.entry(user.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            PresenceChange::CameOnline
        } else {
            PresenceChange::Unchanged
        }
    }

    /// Records a closed connection. Closing a connection that was never opened changes
    /// nothing.
    pub fn close(&mut self, user: &UserId) -> PresenceChange {
        match self.open.get_mut(user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                PresenceChange::Unchanged
            }
            Some(_) => {
                self.open.remove(user);
                PresenceChange::WentOffline
            }
            None => PresenceChange::Unchanged,
        }
    }

    /// True while the user has an open connection.
    pub fn is_online(&self, user: &UserId) -> bool {
        self.open.contains_key(user)
    }

    /// Open connections of one user.
    pub fn count(&self, user: &UserId) -> usize {
        self.open.get(user).copied().unwrap_or(0)
    }

    /// Users with at least one connection.
    pub fn online_users(&self) -> usize {
        self.open.len()
    }

    /// Open connections in all.
    pub fn total(&self) -> usize {
        self.open.values().sum()
    }
}
