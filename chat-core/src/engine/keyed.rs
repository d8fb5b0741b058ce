//! One async lock per key, made on first use and forgotten when idle.
//!
//! The engine serializes work per bus topic (subscribe/unsubscribe) and per user
//! (online/offline) without a node-wide lock: two keys never wait for each other, and
//! the map itself is only held for a moment, never across an await.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

/// Async locks by key, each guarding a `V`. A key's slot is dropped when its value is
/// back to `V::default()` and nobody holds or waits for it.
#[derive(Debug)]
pub(crate) struct KeyedLocks<K, V> {
    slots: Mutex<HashMap<K, Arc<tokio::sync::Mutex<V>>>>,
}

impl<K, V> Default for KeyedLocks<K, V> {
    fn default() -> Self {
        KeyedLocks {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Default + PartialEq> KeyedLocks<K, V> {
    /// Waits for `key`'s lock. Other keys are not affected.
    pub(crate) async fn lock(&self, key: &K) -> KeyedGuard<'_, K, V> {
        let slot = self.slots.lock().entry(key.clone()).or_default().clone();
        let guard = slot.clone().lock_owned().await;
        KeyedGuard {
            owner: self,
            key: key.clone(),
            slot,
            guard: Some(guard),
        }
    }

    /// Keys with a slot (held, waited for, or holding a non-default value).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().len()
    }

    fn release(&self, key: &K, slot: &Arc<tokio::sync::Mutex<V>>) {
        let mut slots = self.slots.lock();
        // Under the map lock nobody can take a new handle: the map's and ours are the
        // only ones when nobody else holds or waits.
        if Arc::strong_count(slot) != 2 {
            return;
        }
        let idle = slot.try_lock().is_ok_and(|v| *v == V::default());
        if idle && slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }
}

/// Holds one key's lock; derefs to its value.
pub(crate) struct KeyedGuard<'a, K: Eq + Hash + Clone, V: Default + PartialEq> {
    owner: &'a KeyedLocks<K, V>,
    key: K,
    slot: Arc<tokio::sync::Mutex<V>>,
    guard: Option<OwnedMutexGuard<V>>,
}

impl<K: Eq + Hash + Clone, V: Default + PartialEq> Deref for KeyedGuard<'_, K, V> {
    type Target = V;
    fn deref(&self) -> &V {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("held until drop"))
    }
}

impl<K: Eq + Hash + Clone, V: Default + PartialEq> DerefMut for KeyedGuard<'_, K, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("held until drop"))
    }
}

impl<K: Eq + Hash + Clone, V: Default + PartialEq> Drop for KeyedGuard<'_, K, V> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.owner.release(&self.key, &self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_slot_lives_while_its_value_is_set_and_goes_when_idle() {
        let locks: KeyedLocks<u32, bool> = KeyedLocks::default();
        {
            let mut g = locks.lock(&1).await;
            *g = true;
        }
        assert_eq!(locks.len(), 1, "a set value is kept");
        assert!(*locks.lock(&1).await);
        {
            let mut g = locks.lock(&1).await;
            *g = false;
        }
        assert_eq!(locks.len(), 0, "back to default: forgotten");
    }

    #[tokio::test]
    async fn the_same_key_waits_and_other_keys_do_not() {
        let locks: Arc<KeyedLocks<u32, ()>> = Arc::new(KeyedLocks::default());
        let held = locks.lock(&1).await;
        // Another key is free at once.
        let other = tokio::time::timeout(Duration::from_secs(1), locks.lock(&2)).await;
        assert!(other.is_ok(), "key 2 does not wait for key 1");
        drop(other);
        // The same key waits until the holder lets go.
        let l = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l.lock(&1).await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "key 1 is held");
        drop(held);
        waiter.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(locks.len(), 0);
    }
}
