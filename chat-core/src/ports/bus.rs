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
    /// Called for each delivery on a subscribed topic, published by another node.
    fn deliver(&self, delivery: Arc<Delivery>);
}

/// Fan-out across nodes and cluster-wide presence.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Registers a node and where its deliveries go. The node is subscribed to
    /// [`Topic::Broadcast`].
    async fn attach(&self, node: NodeId, sink: Arc<dyn BusSink>) -> Result<()>;

    /// Unregisters a node and its subscriptions.
    async fn detach(&self, node: NodeId) -> Result<()>;

    /// Subscribes a node to a topic.
    async fn subscribe(&self, node: NodeId, topic: Topic) -> Result<()>;

    /// Unsubscribes a node from a topic.
    async fn unsubscribe(&self, node: NodeId, topic: Topic) -> Result<()>;

    /// Publishes a delivery to every other node subscribed to its topic.
    async fn publish(&self, origin: NodeId, delivery: Arc<Delivery>) -> Result<()>;

    /// Records that `users` are online on `node` for `ttl` (renewed while connected).
    async fn renew_presence(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()>;

    /// Records that `user` has no connection left on `node`.
    async fn drop_presence(&self, node: NodeId, user: &UserId) -> Result<()>;

    /// Which of `users` are online on any node.
    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>>;
}
