//! The whole chat-core store conformance suite, against the live server; each behaviour
//! gets a store in a fresh schema, dropped with it.

mod common;

use std::sync::Arc;

use chat_core::ports::Store;

chat_core::conformance_tests!(|| async { Arc::new(common::open().await) as Arc<dyn Store> });
