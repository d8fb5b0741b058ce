//! chat-core's bus conformance suite, each behaviour on its own private redis-server.

mod common;

use std::sync::Arc;

use chat_core::bus_conformance::BusCluster;

chat_core::bus_conformance_tests!(|| async {
    common::Cluster::start().await as Arc<dyn BusCluster>
});
