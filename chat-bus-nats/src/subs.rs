//! Subscriptions: one NATS subscription per subject per client, shared by the nodes
//! attached to it, and the task that hands its messages to their sinks.
//!
//! Each subject has a [`Slot`]: the nodes that want it (read by the delivery task on
//! every message) and, under the slot's own async lock, the NATS subscription. Changes
//! to one subject run one at a time; two subjects never wait for each other, and no lock
//! of the whole client is held across a call to the server.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use async_nats::Subscriber;
use chat_core::ids::NodeId;
use futures::StreamExt as _;
use parking_lot::RwLock;
use tokio::task::JoinHandle;

use crate::shared::Shared;

/// One subject of this client.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) subject: String,
    /// `{prefix}.all`: may carry control messages.
    pub(crate) broadcast: bool,
    /// The nodes that hear this subject.
    pub(crate) nodes: RwLock<HashSet<NodeId>>,
    pub(crate) state: tokio::sync::Mutex<SlotState>,
}

/// The NATS side of a slot.
#[derive(Debug, Default)]
pub(crate) struct SlotState {
    /// The task that owns the NATS subscription; aborting it unsubscribes.
    pub(crate) task: Option<JoinHandle<()>>,
    /// Taken out of the client's map: a caller that waited for this slot starts over.
    pub(crate) removed: bool,
}

impl Slot {
    pub(crate) fn new(subject: String, broadcast: bool) -> Self {
        Slot {
            subject,
            broadcast,
            nodes: RwLock::new(HashSet::new()),
            state: tokio::sync::Mutex::new(SlotState::default()),
        }
    }
}

impl Drop for SlotState {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Hands each message of `sub` to the nodes of `slot`, in the order the server sent them.
pub(crate) async fn deliver_loop(shared: Weak<Shared>, slot: Arc<Slot>, mut sub: Subscriber) {
    while let Some(message) = sub.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.dispatch(&slot, &message.payload);
    }
}
