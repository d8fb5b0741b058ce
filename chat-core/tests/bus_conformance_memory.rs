//! The bus conformance suite against the in-process bus.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::bus_conformance::BusCluster;
use chat_core::memory::MemoryBus;
use chat_core::ports::{Bus, SystemClock};

/// One in-process bus shared by every node, its leases timed by the system clock.
struct Memory(Arc<MemoryBus>);

#[async_trait]
impl BusCluster for Memory {
    async fn node(&self) -> Arc<dyn Bus> {
        self.0.clone()
    }
    async fn restart(&self, _down: Duration) -> bool {
        false
    }
}

chat_core::bus_conformance_tests!(|| async {
    Arc::new(Memory(Arc::new(MemoryBus::new(Arc::new(SystemClock))))) as Arc<dyn BusCluster>
});

/// The macro is the one list of behaviours.
#[test]
fn every_bus_behaviour_is_run_by_the_macro() {
    let source = include_str!("../src/bus_conformance.rs");
    let list = &source[source
        .find("macro_rules! bus_conformance_tests")
        .expect("the macro")..];
    let mut checked = 0;
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("pub async fn ") else {
            continue;
        };
        let name = rest.split('(').next().unwrap_or_default();
        assert!(
            list.contains(&format!("            {name},"))
                || list.contains(&format!("            {name}\n")),
            "bus_conformance::{name} is not in bus_conformance_tests!"
        );
        checked += 1;
    }
    assert!(checked >= 11, "the scan found the behaviours ({checked})");
}
