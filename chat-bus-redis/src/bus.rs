//! [`RedisBus`]: connecting, the [`Bus`] implementation, and the background tasks.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::event::Delivery;
use chat_core::ports::{envelope, Bus, BusSink, Topic};
use chat_core::{Error, NodeId, Result, UserId};
use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface};
use fred::types::config::{Config, ReconnectPolicy, ServerConfig};
use fred::types::Builder;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::{redact, RedisBusConfig};
use crate::names::Names;
use crate::presence::Leases;
use crate::publisher::{gone, Publisher};
use crate::subscriber::{Driver, Request, Shared};

/// The [`Bus`] on Redis: pub/sub for deliveries, sorted sets for presence leases.
///
/// One instance per node process, with two connections (one publishing, one
/// subscribing) that reconnect by themselves. See the [crate docs](crate) for the layout
/// in Redis and what happens when the connection drops. Dropping the bus closes both
/// connections; presence leases it renewed expire by themselves.
pub struct RedisBus {
    url: String,
    names: Names,
    publisher: Arc<Publisher>,
    subscriber: Client,
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    /// The subscribing task, the publisher's watcher, and the heartbeat.
    tasks: Vec<JoinHandle<()>>,
    /// Each client's connection task.
    connections: Vec<fred::types::ConnectHandle>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("url", &self.url)
            .field("prefix", &self.names.prefix())
            .field("instance", &self.publisher.instance)
            .field("publisher_connected", &self.publisher.connected())
            .field("subscriber_connected", &self.subscriber_connected())
            .field("nodes", &self.shared.nodes.load(Ordering::Relaxed))
            .field("channels", &self.shared.channels.load(Ordering::Relaxed))
            .field(
                "subscriptions_confirmed",
                &self.shared.in_sync.load(Ordering::Relaxed),
            )
            .field("owes_resync_message", &self.publisher.owes_control())
            .finish()
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Ends each client's connection task, which owns its socket.
        for c in &self.connections {
            c.abort();
        }
    }
}

fn client(redis: &Config, config: &RedisBusConfig) -> Result<Client> {
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1);
    Builder::from_config(redis.clone())
        .with_connection_config(|c| {
            c.connection_timeout = config.connect_timeout;
            c.internal_command_timeout = config.connect_timeout;
            // A command unanswered for a heartbeat closes the connection (and the
            // heartbeat makes sure there is a command to go unanswered).
            c.unresponsive.max_timeout = Some(config.heartbeat);
            c.unresponsive.interval = (config.heartbeat / 4).max(Duration::from_millis(50));
        })
        .with_performance_config(|p| {
            p.broadcast_channel_capacity = config.buffer;
        })
        .set_policy(ReconnectPolicy::new_exponential(
            0, // never stop trying
            ms(config.reconnect_min_delay),
            ms(config.reconnect_max_delay),
            2,
        ))
        .build()
        .map_err(|e| Error::invalid("the bus's Redis client could not be built").with_source(e))
}

impl RedisBus {
    /// Connects to the Redis server at `url` (`redis://[[user]:password@]host[:port][/db]`)
    /// with two connections, and starts the task that receives deliveries.
    ///
    /// ```no_run
    /// use chat_bus_redis::{RedisBus, RedisBusConfig};
    ///
    /// # async fn run() -> chat_core::Result<()> {
    /// let bus = RedisBus::connect("redis://127.0.0.1:6379", RedisBusConfig::default()).await?;
    /// let engine = chat_core::EngineBuilder::new(std::sync::Arc::new(
    ///     chat_core::memory::MemoryStore::default(),
    /// ))
    /// .bus(std::sync::Arc::new(bus))
    /// .build()
    /// .await?;
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `invalid` for a malformed URL, a cluster, sentinel or TLS (`rediss://`) URL (not
    /// supported), or a bad configuration; `unavailable` when Redis cannot be reached
    /// within `connect_timeout`.
    pub async fn connect(url: &str, config: RedisBusConfig) -> Result<RedisBus> {
        config.validate()?;
        let shown = redact(url);
        if url
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss:"))
        {
            return Err(Error::invalid(format!(
                "the bus URL {shown}: TLS (rediss://) is not supported yet"
            )));
        }
        let redis = Config::from_url(url).map_err(|e| {
            Error::invalid(format!("the bus URL {shown} is not a Redis URL")).with_source(e)
        })?;
        if !matches!(redis.server, ServerConfig::Centralized { .. }) {
            return Err(Error::invalid(format!(
                "the bus URL {shown}: one Redis server is supported (no cluster, no sentinel)"
            )));
        }
        let publisher = client(&redis, &config)?;
        let subscriber = client(&redis, &config)?;
        // Before connecting, so that no event is missed.
        let publisher_events = publisher.reconnect_rx();
        let publisher_errors = publisher.error_rx();
        let subscriber_events = subscriber.reconnect_rx();
        let subscriber_errors = subscriber.error_rx();
        let messages = subscriber.message_rx();

        let mut connections = Vec::new();
        for c in [&publisher, &subscriber] {
            let limit = config.connect_timeout + Duration::from_secs(1);
            let result = match tokio::time::timeout(limit, c.init()).await {
                Ok(Ok(handle)) => Ok(handle),
                Ok(Err(e)) => Err(Error::unavailable(format!(
                    "the bus could not connect to Redis at {shown}"
                ))
                .with_source(e)),
                Err(_) => Err(Error::unavailable(format!(
                    "the bus could not connect to Redis at {shown} within {limit:?}"
                ))),
            };
            match result {
                Ok(handle) => connections.push(handle),
                Err(e) => {
                    for h in &connections {
                        h.abort();
                    }
                    return Err(e);
                }
            }
        }

        let names = Names::new(&config.prefix);
        let instance = Uuid::new_v4();
        let shared = Arc::new(Shared::default());
        let publisher = Arc::new(Publisher::new(
            publisher,
            names.all().to_owned(),
            instance,
            config.command_timeout,
        ));
        let (requests, requests_rx) = mpsc::channel(1024);
        let driver = Driver::new(
            subscriber.clone(),
            instance,
            names.all().to_owned(),
            config.command_timeout,
            shared.clone(),
        );
        let mut tasks = vec![tokio::spawn(driver.run(
            requests_rx,
            subscriber_errors,
            subscriber_events,
            messages,
        ))];
        let watcher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            watcher.watch(publisher_errors, publisher_events).await;
        }));
        tasks.push(tokio::spawn(heartbeat(
            publisher.clone(),
            subscriber.clone(),
            config.heartbeat,
        )));
        tracing::info!(url = %shown, prefix = %config.prefix, %instance, "bus: connected to Redis");
        Ok(RedisBus {
            url: shown,
            names,
            publisher,
            subscriber,
            requests,
            shared,
            tasks,
            connections,
        })
    }

    /// Sends a request to the subscribing task and waits until it is done.
    async fn ask(&self, request: impl FnOnce(oneshot::Sender<()>) -> Request) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(request(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    fn subscriber_connected(&self) -> bool {
        !self.shared.down.load(Ordering::Relaxed) && self.subscriber.is_connected()
    }

    fn leases(&self) -> Leases<'_> {
        Leases {
            publisher: &self.publisher,
            names: &self.names,
        }
    }
}

/// Pings both connections every `every`, so that a dead one is noticed (a ping left
/// unanswered for `every` closes it, and the client reconnects), and sends a resync
/// message that is still owed.
async fn heartbeat(publisher: Arc<Publisher>, subscriber: Client, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for c in [&publisher.client, &subscriber] {
            if c.is_connected() {
                let _ = tokio::time::timeout(every * 2, c.ping::<fred::types::Value>(None)).await;
            }
        }
        if publisher.owes_control() {
            publisher.settle(false).await;
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()> {
        self.ask(|reply| Request::Attach { node, sink, reply })
            .await
    }

    async fn detach(&self, node: NodeId) -> Result<()> {
        self.ask(|reply| Request::Detach { node, reply }).await
    }

    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        let channel = self.names.channel(&topic);
        self.ask(|reply| Request::Subscribe {
            node,
            channel,
            reply,
        })
        .await
    }

    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()> {
        let channel = self.names.channel(&topic);
        self.ask(|reply| Request::Unsubscribe {
            node,
            channel,
            reply,
        })
        .await
    }

    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()> {
        let channel = self.names.channel(&Topic::of(&delivery.audience));
        let payload = envelope::encode(origin, &delivery)?;
        self.publisher.publish(channel, payload).await
    }

    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        self.leases().renew(node, users, ttl).await
    }

    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()> {
        self.leases().drop_lease(node, user).await
    }

    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        self.leases().online(users).await
    }

    async fn ready(&self) -> Result<()> {
        if !self.subscriber_connected() {
            return Err(Error::unavailable(
                "the bus's subscribing connection to Redis is down",
            ));
        }
        self.publisher.ping().await
    }
}
