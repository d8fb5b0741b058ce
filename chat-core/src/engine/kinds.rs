//! Conversation kinds this node has seen. A kind never changes, so a known member's
//! `send`, `typing` or mark reads no conversation from the store.

use std::sync::Arc;

use dashmap::DashMap;

use crate::ids::ConversationId;
use crate::model::ConversationKind;

/// A bounded cache of conversation kinds: it starts over when it reaches its limit.
#[derive(Debug, Default)]
pub(crate) struct KindCache {
    kinds: DashMap<ConversationId, Arc<ConversationKind>>,
}

impl KindCache {
    pub(crate) fn get(&self, id: ConversationId) -> Option<Arc<ConversationKind>> {
        self.kinds.get(&id).map(|k| k.clone())
    }

    /// Remembers a kind; clears everything first when `max` kinds are known.
    pub(crate) fn remember(&self, id: ConversationId, kind: &ConversationKind, max: usize) {
        if self.kinds.len() >= max {
            self.kinds.clear();
        }
        self.kinds
            .entry(id)
            .or_insert_with(|| Arc::new(kind.clone()));
    }

    pub(crate) fn forget(&self, id: ConversationId) {
        self.kinds.remove(&id);
    }
}
