//! chat-core's bus conformance suite against a real nats-server of each test's own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_bus_nats::testing::NatsServer;
use chat_core::bus_conformance::BusCluster;
use chat_core::ports::Bus;

/// One server; every node gets a client (a connection) of its own.
struct Nats {
    server: NatsServer,
}

#[async_trait]
impl BusCluster for Nats {
    async fn node(&self) -> Arc<dyn Bus> {
        common::bus(&self.server.url(), common::config()).await
    }

    async fn restart(&self, down: Duration) -> bool {
        self.server
            .restart(down)
            .await
            .unwrap_or_else(|e| panic!("restarting nats-server: {e}"));
        true
    }
}

chat_core::bus_conformance_tests!(|| async {
    Arc::new(Nats {
        server: common::server().await,
    }) as Arc<dyn BusCluster>
});
