//! [`NatsBusConfig`]: subject prefix, presence bucket, time-outs.

use std::time::Duration;

/// How a [`NatsBus`](crate::NatsBus) names things on the server and how long it waits.
///
/// Built from [`Default`] and its setters; every node of a cluster must use the same
/// `prefix` and `presence_bucket`.
///
/// ```
/// use std::time::Duration;
/// use chat_bus_nats::NatsBusConfig;
///
/// let config = NatsBusConfig::default()
///     .prefix("myapp.chat")
///     .presence_bucket("myapp_presence")
///     .presence_ttl(Duration::from_secs(30));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsBusConfig {
    pub(crate) prefix: String,
    pub(crate) presence_bucket: String,
    pub(crate) presence_ttl: Duration,
    pub(crate) presence_replicas: usize,
    pub(crate) publish_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_reconnect_delay: Duration,
    pub(crate) subscription_capacity: usize,
    pub(crate) name: String,
}

impl Default for NatsBusConfig {
    /// Prefix `chat`, bucket `chat_presence` with a 30 s `max_age` (the engine's default
    /// lease) on one replica, publishes bounded at 500 ms, server round trips at 2 s,
    /// reconnect attempts at most 2 s apart, 65,536 messages buffered per subscription,
    /// connection name `chat-bus-nats`.
    fn default() -> Self {
        NatsBusConfig {
            prefix: "chat".to_owned(),
            presence_bucket: "chat_presence".to_owned(),
            presence_ttl: Duration::from_secs(30),
            presence_replicas: 1,
            publish_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
            max_reconnect_delay: Duration::from_secs(2),
            subscription_capacity: 64 * 1024,
            name: "chat-bus-nats".to_owned(),
        }
    }
}

impl NatsBusConfig {
    /// The first tokens of every subject (default `chat`): one or more dot-separated
    /// tokens, no spaces or wildcards.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The JetStream key-value bucket of presence leases (default `chat_presence`;
    /// letters, digits, `_`, `-`).
    pub fn presence_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.presence_bucket = bucket.into();
        self
    }

    /// The bucket's `max_age` when this node creates it (default 30 s): a node that dies
    /// leaves leases that the server removes after this long. Use the engine's presence
    /// TTL. A bucket that already exists keeps its own `max_age`, which then rules.
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl;
        self
    }

    /// The bucket's replicas when this node creates it (default 1; 3 on a NATS cluster).
    pub fn presence_replicas(mut self, replicas: usize) -> Self {
        self.presence_replicas = replicas.max(1);
        self
    }

    /// How long `publish` may wait for room in the client's outgoing buffer before it
    /// gives up with `unavailable` (default 500 ms; at most 1 s is sensible).
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// The bound of every server round trip: connecting, the barrier after a subscribe,
    /// presence writes, the barrier of `online`, `ready` (default 2 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest wait between two reconnect attempts (default 2 s; attempts start
    /// immediately and back off by doubling from 50 ms).
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Messages buffered per subscription before the client drops them and reports a
    /// slow consumer, which resyncs this node's engines (default 65,536).
    pub fn subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity.max(1);
        self
    }

    /// The connection name the server shows in its monitoring (default `chat-bus-nats`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}
