//! The store conformance suite against the in-memory store.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::ports::Store;

chat_core::conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
