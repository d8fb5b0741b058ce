//! This node on the [`Bus`](crate::ports::Bus): publishing, deliveries from other nodes,
//! and subscriptions kept in line with the registry.
//!
//! Subscriptions change one topic at a time under that topic's own lock: the desired
//! state is read from the registry (a short lock) after the topic's lock is taken, and
//! the bus is called with no other lock held. A subscribe and an unsubscribe racing for
//! the same topic therefore land in order, and the last one decides from the registry as
//! it then is; two different topics never wait for each other.

use std::sync::{Arc, Weak};

use super::stats::BusCounters;
use super::Inner;
use crate::error::Error;
use crate::event::{Audience, Delivery, Event};
use crate::ids::{ConversationId, UserId};
use crate::ports::{BusSink, Topic};

impl Inner {
    /// Delivers to this node's sessions, then publishes to the other nodes.
    pub(crate) async fn publish(&self, delivery: Delivery) {
        let delivery = Arc::new(delivery);
        self.deliver_ordered(delivery.clone());
        match self.bus.publish(self.node, delivery).await {
            Ok(()) => BusCounters::add(&self.counters.bus.published, 1),
            Err(e) => self.bus_error(&e),
        }
    }

    /// Brings this node's bus subscriptions for `topics` in line with its live sessions.
    /// When it returns, each topic's subscription matches the registry as it was at some
    /// moment after the call began.
    pub(crate) async fn reconcile(&self, topics: Vec<Topic>) {
        for topic in topics {
            let mut subscribed = self.topics.lock(&topic).await;
            let want = self.registry.read().wants(&topic);
            if want == *subscribed {
                continue;
            }
            let conversation = match &topic {
                Topic::Conversation(c) => Some(*c),
                _ => None,
            };
            let mut newest_before = None;
            let result = if want {
                if let Some(c) = conversation {
                    // Before subscribing: the first delivery already finds its mark, and
                    // the newest seq read now is where the mark starts once subscribed.
                    self.marks.start(c);
                    newest_before = self.newest_seq_before_subscribing(c).await;
                }
                self.bus.subscribe(self.node, topic.clone()).await
            } else {
                self.bus.unsubscribe(self.node, topic.clone()).await
            };
            match result {
                Ok(()) => {
                    *subscribed = want;
                    match conversation {
                        Some(c) if want => self.mark_subscribed(c, newest_before),
                        Some(c) => self.marks.stop(c),
                        None => {}
                    }
                }
                Err(e) => self.bus_error(&e),
            }
        }
    }

    /// `user`'s live sessions here follow `conversation`; subscribes when it is new here.
    pub(crate) async fn follow(&self, user: &UserId, conversation: ConversationId) {
        let topics = self.registry.write().follow(user, conversation);
        self.reconcile(topics).await;
    }

    /// `user`'s live sessions here stop following `conversation`.
    pub(crate) async fn unfollow(&self, user: &UserId, conversation: ConversationId) {
        let topics = self.registry.write().unfollow(user, conversation);
        self.reconcile(topics).await;
    }

    /// Runs [`Inner::reconcile`] in the background (from code that cannot await).
    pub(crate) fn spawn_reconcile(self: &Arc<Self>, topics: Vec<Topic>) {
        if topics.is_empty() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = self.clone();
            handle.spawn(async move { inner.reconcile(topics).await });
        }
    }

    /// A delivery from another node: keep local subscriptions in step with membership
    /// changes, then deliver.
    fn apply_remote(self: &Arc<Self>, delivery: Arc<Delivery>) {
        BusCounters::add(&self.counters.bus.received, 1);
        let topics = match (&delivery.audience, &delivery.event) {
            (Audience::User { user }, Event::ConversationAdded { conversation }) => {
                self.registry.write().follow(user, conversation.id)
            }
            (Audience::User { user }, Event::ConversationRemoved { conversation }) => {
                self.registry.write().unfollow(user, *conversation)
            }
            _ => Vec::new(),
        };
        self.spawn_reconcile(topics);
        self.note_remote_presence(&delivery);
        self.deliver_ordered(delivery);
    }

    /// Counts and logs a failed bus call.
    pub(crate) fn bus_error(&self, e: &Error) {
        self.counters.bus_error();
        tracing::warn!(error = e as &dyn std::error::Error, "bus");
    }
}

/// Where the bus hands this node the deliveries of other nodes.
pub(crate) struct BusReceiver(pub(crate) Weak<Inner>);

impl BusSink for BusReceiver {
    fn deliver(&self, delivery: Arc<Delivery>) {
        if let Some(inner) = self.0.upgrade() {
            inner.apply_remote(delivery);
        }
    }

    fn resync(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.resync_all();
        }
    }
}
