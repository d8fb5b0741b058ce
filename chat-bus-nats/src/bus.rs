//! [`NatsBus`]: connecting, and the [`Bus`] port on top of [`Shared`].

use std::sync::Arc;
use std::time::Duration;

use async_nats::ConnectOptions;
use async_trait::async_trait;
use chat_core::event::Delivery;
use chat_core::ids::{NodeId, UserId};
use chat_core::ports::{envelope, Bus, BusSink, Topic};
use chat_core::{Error, Result};
use tokio::sync::mpsc;

use crate::config::NatsBusConfig;
use crate::presence::Presence;
use crate::shared::Shared;
use crate::subject::{check_bucket, check_prefix};

/// The chat engine's [`Bus`] on NATS: core subjects for deliveries, a JetStream key-value
/// bucket for presence. One client (one connection) serves any number of nodes
/// ([`NodeId`]s) of a process; cheap to share behind an `Arc`.
///
/// See the [crate docs](crate) for the subjects, the bucket and the guarantees.
pub struct NatsBus {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.fmt(f)
    }
}

/// `url` with the user and password (or token) of each comma-separated server replaced
/// by `***`, for logs and `Debug`.
pub(crate) fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let start = one.find("://").map_or(0, |i| i + 3);
            match one[start..].rfind('@') {
                Some(at) => format!("{}***@{}", &one[..start], &one[start + at + 1..]),
                None => one.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The wait before reconnect attempt `attempts` (1 for the first): none, then 50 ms
/// doubling up to `max`.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    (Duration::from_millis(50) * 2u32.pow(doublings)).min(max)
}

impl NatsBus {
    /// Connects to the NATS server(s) at `url` (`nats://host:4222`, credentials as
    /// `nats://user:password@host:4222` or `nats://token@host:4222`, several servers
    /// separated by commas), opens the presence bucket (creating it with
    /// [`NatsBusConfig::presence_ttl`] as `max_age` when it does not exist) and starts
    /// watching it. The server must run JetStream (`nats-server -js`).
    ///
    /// Once connected, the client reconnects by itself for ever.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use chat_bus_nats::{NatsBus, NatsBusConfig};
    ///
    /// # async fn run() -> chat_core::Result<()> {
    /// let bus = NatsBus::connect("nats://127.0.0.1:4222", NatsBusConfig::default()).await?;
    /// # let store: Arc<dyn chat_core::ports::Store> = Arc::new(chat_core::memory::MemoryStore::new());
    /// let engine = chat_core::Engine::builder(store).bus(Arc::new(bus)).build().await?;
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `invalid` for a prefix or bucket name NATS cannot take; `unavailable` when the
    /// server does not answer within [`NatsBusConfig::request_timeout`], refuses the
    /// credentials, or has no JetStream.
    pub async fn connect(url: &str, config: NatsBusConfig) -> Result<NatsBus> {
        check_prefix(&config.prefix)?;
        check_bucket(&config.presence_bucket)?;
        let shown = redact(url);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let max_delay = config.max_reconnect_delay;
        let options = ConnectOptions::new()
            .name(&config.name)
            .connection_timeout(config.request_timeout)
            .request_timeout(Some(config.request_timeout))
            .subscription_capacity(config.subscription_capacity)
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, max_delay))
            .event_callback(move |event| {
                let tx = events_tx.clone();
                async move {
                    let _ = tx.send(event);
                }
            });
        let client = tokio::time::timeout(config.request_timeout * 2, options.connect(url))
            .await
            .map_err(|e| {
                Error::unavailable(format!("connecting to NATS at {shown} timed out"))
                    .with_source(e)
            })?
            .map_err(|e| {
                Error::unavailable(format!("connecting to NATS at {shown}")).with_source(e)
            })?;

        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(config.request_timeout);
        let presence = Presence::open(&js, &config).await?;

        let barrier_subject = client.new_inbox();
        let barrier = client
            .subscribe(barrier_subject.clone())
            .await
            .map_err(|e| Error::unavailable(format!("subscribing at {shown}")).with_source(e))?;

        let shared = Arc::new(Shared::new(
            shown,
            client,
            config,
            presence,
            barrier_subject,
        ));
        shared.start(events_rx, barrier);
        shared.barrier().await?;
        Ok(NatsBus { shared })
    }
}

/// `async-trait`, as the port requires: the engine holds its bus as `Arc<dyn Bus>`.
#[async_trait]
impl Bus for NatsBus {
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()> {
        self.shared.add_sink(node, sink);
        if let Err(e) = self.shared.subscribe(node, &Topic::Broadcast).await {
            self.shared.remove_sink(node);
            return Err(e);
        }
        Ok(())
    }

    async fn detach(&self, node: NodeId) -> Result<()> {
        // First: from now on nothing reaches the node.
        self.shared.remove_sink(node);
        for subject in self.shared.subjects_of(node) {
            self.shared.unsubscribe_subject(node, &subject).await;
        }
        // Disconnected, the deletes would wait out their time-out for nothing: the
        // leases end with their TTL anyway.
        if self.shared.is_connected() {
            self.shared.presence.drop_node(node).await;
        }
        Ok(())
    }

    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        self.shared.subscribe(node, &topic).await
    }

    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        let subject = self.shared.subjects.of(&topic);
        self.shared.unsubscribe_subject(node, &subject).await;
        Ok(())
    }

    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()> {
        let subject = self.shared.subjects.of(&Topic::of(&delivery.audience));
        let payload = envelope::encode(origin, &delivery)?;
        self.shared.publish(subject, payload).await
    }

    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        if !self.shared.is_connected() {
            return Err(Error::unavailable(
                "not connected to NATS; presence leases not renewed",
            ));
        }
        self.shared.presence.renew(node, users, ttl).await
    }

    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()> {
        if !self.shared.is_connected() {
            return Err(Error::unavailable(
                "not connected to NATS; the presence lease ends with its TTL",
            ));
        }
        self.shared.presence.drop_lease(node, user).await
    }

    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        let connected = self.shared.is_connected();
        Ok(self.shared.presence.online(users, connected).await)
    }

    async fn ready(&self) -> Result<()> {
        if !self.shared.is_connected() {
            return Err(Error::unavailable(format!(
                "not connected to NATS at {}",
                self.shared.url
            )));
        }
        self.shared.presence.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("tls://s3cr3t@h"), "tls://***@h");
        assert_eq!(redact("u:p@h:4222"), "***@h:4222");
        assert_eq!(
            redact("nats://a:b@h1:4222, nats://h2:4222,nats://c:d@e@h3"),
            "nats://***@h1:4222,nats://h2:4222,nats://***@h3"
        );
    }

    #[test]
    fn reconnects_back_off_from_nothing_to_the_maximum() {
        let max = Duration::from_secs(2);
        let delays: Vec<u128> = (1..=8)
            .map(|n| reconnect_delay(n, max).as_millis())
            .collect();
        assert_eq!(delays, [0, 50, 100, 200, 400, 800, 1600, 2000]);
        assert_eq!(reconnect_delay(usize::MAX, max), max);
    }
}
