//! The `Bus` port: fan-out across nodes, and presence leases.
//!
//! A node delivers to its own sessions directly and publishes every committed event to
//! the bus; other nodes that subscribed to the event's topic deliver it to theirs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::event::{Audience, Delivery};
use crate::ids::{ConversationId, NodeId, UserId};

/// What a node subscribes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Events of one conversation.
    Conversation(ConversationId),
    /// Events addressed to one user.
    User(UserId),
    /// Events every node must see (presence).
    Broadcast,
}

impl Topic {
    /// The topic a delivery is published on.
    pub fn of(audience: &Audience) -> Topic {
        match audience {
            Audience::Conversation { conversation } => Topic::Conversation(*conversation),
            Audience::User { user } => Topic::User(user.clone()),
            Audience::Presence { .. } => Topic::Broadcast,
        }
    }
}

/// Receives deliveries published by other nodes.
pub trait BusSink: Send + Sync + 'static {
    /// Called for each delivery on a subscribed topic, published by another node, in the
    /// order that node published them.
    fn deliver(&self, delivery: Arc<Delivery>);

    /// Called when deliveries may have been lost on the way here: after the connection
    /// to the bus server came back (subscriptions already restored, and before any
    /// delivery received on the new connection is handed over), or when a buffer
    /// overflowed. The node then re-reads what it follows from the store, which is the
    /// truth; the bus is only the fast path.
    fn resync(&self) {}
}

/// Fan-out across nodes and cluster-wide presence.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Registers a node and where its deliveries go. The node is subscribed to
    /// [`Topic::Broadcast`].
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()>;

    /// Unregisters a node and its subscriptions. Its presence leases are dropped with it
    /// or left to expire (the engine drops each user's lease as their sessions close).
    async fn detach(&self, node: NodeId) -> Result<()>;

    /// Subscribes a node to a topic. When it returns `Ok`, publications from then on
    /// reach the node. A bus that is disconnected records the subscription and restores
    /// it (with every other) when it reconnects, then calls [`BusSink::resync`].
    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()>;

    /// Unsubscribes a node from a topic (recorded likewise while disconnected).
    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()>;

    /// Publishes a delivery to every other node subscribed to its topic, once per event
    /// (never once per recipient). Publications of one node on one topic arrive in the
    /// order published.
    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()>;

    /// Records that `users` are online on `node` for `ttl` (renewed while connected).
    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()>;

    /// Records that `user` has no connection left on `node`.
    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()>;

    /// Which of `users` are online on any node (one round trip to the bus server).
    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>>;

    /// True for a bus that cannot lose a delivery (in one process). The engine then skips
    /// reading each newly followed conversation's newest seq, which exists only to
    /// notice a loss before the conversation's first live message.
    fn lossless(&self) -> bool {
        false
    }

    /// Whether the bus server answers now (for a readiness check).
    ///
    /// # Errors
    /// `unavailable` when it does not.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}

/// The payload a server bus carries: a versioned envelope with the origin node, so a node
/// can ignore its own publications and a future format can be told apart.
pub mod envelope {
    use serde::{Deserialize, Serialize};

    use crate::error::{Error, Result};
    use crate::event::Delivery;
    use crate::ids::NodeId;

    /// The envelope version this build writes and reads.
    pub const VERSION: u8 = 1;

    #[derive(Serialize)]
    struct Out<'a> {
        v: u8,
        origin: NodeId,
        delivery: &'a Delivery,
    }

    #[derive(Deserialize)]
    struct In {
        v: u8,
        origin: NodeId,
        delivery: Delivery,
    }

    /// Encodes a delivery published by `origin`.
    ///
    /// # Errors
    /// `internal` when the delivery cannot be serialized (it always can).
    pub fn encode(origin: NodeId, delivery: &Delivery) -> Result<Vec<u8>> {
        serde_json::to_vec(&Out {
            v: VERSION,
            origin,
            delivery,
        })
        .map_err(|e| Error::internal(format!("encoding a bus envelope: {e}")))
    }

    /// Decodes an envelope into its origin and delivery.
    ///
    /// # Errors
    /// `invalid` for a malformed payload or another version.
    pub fn decode(bytes: &[u8]) -> Result<(NodeId, Delivery)> {
        let e: In = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("a malformed bus envelope: {e}")))?;
        if e.v != VERSION {
            return Err(Error::invalid(format!(
                "bus envelope version {} (this node reads {VERSION})",
                e.v
            )));
        }
        Ok((e.origin, e.delivery))
    }
}
