//! Opening the configured bus.

use std::sync::Arc;

use anyhow::Context;
use chat_core::ports::Bus;

use crate::cli::{BusSpec, StoreSpec};

/// Opens the bus named by `spec`; `None` for the in-process one (the engine's default).
///
/// # Errors
/// A server bus with a store that serves one node only (SQLite, memory), or a bus server
/// that cannot be reached.
pub(crate) async fn open(
    spec: &BusSpec,
    prefix: &str,
    presence_ttl: std::time::Duration,
    store: &StoreSpec,
) -> anyhow::Result<Option<Arc<dyn Bus>>> {
    if !matches!(spec, BusSpec::Memory) {
        match store {
            StoreSpec::Postgres(_) => {}
            StoreSpec::Sqlite(_) => anyhow::bail!(
                "--bus {} needs a store that several nodes share: an SQLite file serves one \
                 node only. Use --store postgres://… for several nodes, or --bus memory",
                describe(spec)
            ),
            StoreSpec::Memory => anyhow::bail!(
                "--bus {} needs a store that several nodes share: the memory store lives in \
                 one process. Use --store postgres://…",
                describe(spec)
            ),
        }
    }
    match spec {
        BusSpec::Memory => Ok(None),
        BusSpec::Redis(url) => {
            let config = chat_bus_redis::RedisBusConfig::default().prefix(prefix);
            let bus = chat_bus_redis::RedisBus::connect(url, config)
                .await
                .with_context(|| format!("connecting to the bus at {}", describe(spec)))?;
            Ok(Some(Arc::new(bus)))
        }
        BusSpec::Nats(url) => {
            let config = chat_bus_nats::NatsBusConfig::default()
                .prefix(prefix)
                .presence_ttl(presence_ttl);
            let bus = chat_bus_nats::NatsBus::connect(url, config)
                .await
                .with_context(|| format!("connecting to the bus at {}", describe(spec)))?;
            Ok(Some(Arc::new(bus)))
        }
    }
}

/// Where the bus is, for logs (never prints a password).
pub(crate) fn describe(spec: &BusSpec) -> String {
    let redact = |url: &str| match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_owned(),
    };
    match spec {
        BusSpec::Memory => "memory (one node)".into(),
        BusSpec::Redis(url) | BusSpec::Nats(url) => redact(url),
    }
}
