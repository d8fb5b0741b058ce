//! The state of one client, shared with its background tasks: the connection, the
//! attached nodes and their sinks, the subscriptions, presence, and what the client's
//! events (disconnected, connected again, slow consumer) set off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, Event};
use bytes::Bytes;
use chat_core::ids::NodeId;
use chat_core::ports::{BusSink, Topic};
use chat_core::{Error, ErrorCode, Result};
use futures::StreamExt as _;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::NatsBusConfig;
use crate::presence::Presence;
use crate::subject::Subjects;
use crate::subs::{deliver_loop, Slot};
use crate::wire::{self, Inbound};

/// How long a burst of slow-consumer events is gathered into one resync.
const SLOW_CONSUMER_COALESCE: Duration = Duration::from_millis(100);

pub(crate) struct Shared {
    /// This client: the origin of its control messages.
    pub(crate) id: Uuid,
    /// The server URL with any credentials replaced by `***`.
    pub(crate) url: String,
    pub(crate) client: Client,
    pub(crate) subjects: Subjects,
    pub(crate) config: NatsBusConfig,
    pub(crate) presence: Presence,
    /// Where each attached node's deliveries go.
    sinks: RwLock<HashMap<NodeId, Arc<dyn BusSink>>>,
    /// One slot per subscribed subject.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// A private subject answered by this client: a request to it is a round trip that
    /// the server handles after every command sent before it.
    barrier_subject: String,
    /// A disconnect was seen and no reconnect since.
    disconnected: AtomicBool,
    /// The nodes have not been resynced since the connection came back; whichever comes
    /// first does it: the first message delivered, or the end of the reconnect handling.
    resync_owed: AtomicBool,
    /// A publication failed: tell the other nodes to resync once publishing works again.
    control_owed: AtomicBool,
    /// A slow-consumer resync is already scheduled.
    slow_resync_scheduled: AtomicBool,
    /// The events and barrier tasks.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("url", &self.url)
            .field("id", &self.id)
            .field("state", &self.client.connection_state())
            .field("prefix", &self.config.prefix)
            .field("nodes", &self.sinks.read().len())
            .field("subjects", &self.slots.lock().len())
            .field("presence", &self.presence)
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
        for slot in self.slots.get_mut().values() {
            if let Ok(mut state) = slot.state.try_lock() {
                if let Some(task) = state.task.take() {
                    task.abort();
                }
            }
        }
    }
}

fn unavailable(what: impl Into<String>) -> Error {
    Error::unavailable(what)
}

impl Shared {
    pub(crate) fn new(
        url: String,
        client: Client,
        config: NatsBusConfig,
        presence: Presence,
        barrier_subject: String,
    ) -> Self {
        Shared {
            id: Uuid::new_v4(),
            url,
            client,
            subjects: Subjects::new(&config.prefix),
            config,
            presence,
            sinks: RwLock::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            barrier_subject,
            disconnected: AtomicBool::new(false),
            resync_owed: AtomicBool::new(false),
            control_owed: AtomicBool::new(false),
            slow_resync_scheduled: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Starts the tasks: client events, and the answers to this client's barrier.
    pub(crate) fn start(
        self: &Arc<Self>,
        mut events: mpsc::UnboundedReceiver<Event>,
        barrier: async_nats::Subscriber,
    ) {
        let weak = Arc::downgrade(self);
        let on_events = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                shared.on_event(event);
            }
        });
        let client = self.client.clone();
        let answer = tokio::spawn(async move {
            let mut barrier = barrier;
            while let Some(request) = barrier.next().await {
                if let Some(reply) = request.reply {
                    let _ = client.publish(reply, Bytes::new()).await;
                }
            }
        });
        self.tasks.lock().extend([on_events, answer]);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// A round trip through the server on this connection: when it returns `Ok`, the
    /// server has handled every subscribe sent before it.
    pub(crate) async fn barrier(&self) -> Result<()> {
        let request = self
            .client
            .request(self.barrier_subject.clone(), Bytes::new());
        match tokio::time::timeout(self.config.request_timeout, request).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable("NATS round trip failed").with_source(e)),
            Err(e) => Err(unavailable("NATS round trip timed out").with_source(e)),
        }
    }

    // ----- nodes and subscriptions -----

    pub(crate) fn add_sink(&self, node: NodeId, sink: Arc<dyn BusSink>) {
        self.sinks.write().insert(node, sink);
    }

    pub(crate) fn remove_sink(&self, node: NodeId) {
        self.sinks.write().remove(&node);
    }

    /// The subjects `node` hears.
    pub(crate) fn subjects_of(&self, node: NodeId) -> Vec<String> {
        self.slots
            .lock()
            .values()
            .filter(|slot| slot.nodes.read().contains(&node))
            .map(|slot| slot.subject.clone())
            .collect()
    }

    /// Adds `node` to `topic`'s subject, subscribing on the server when it is the first.
    pub(crate) async fn subscribe(self: &Arc<Self>, node: NodeId, topic: &Topic) -> Result<()> {
        let subject = self.subjects.of(topic);
        let broadcast = matches!(topic, Topic::Broadcast);
        let added = loop {
            let slot = self
                .slots
                .lock()
                .entry(subject.clone())
                .or_insert_with(|| Arc::new(Slot::new(subject.clone(), broadcast)))
                .clone();
            let mut state = slot.state.lock().await;
            if state.removed {
                continue; // emptied and dropped while we waited: start over
            }
            let added = slot.nodes.write().insert(node);
            // No task, or one whose subscription ended (the client closed it): subscribe.
            if !matches!(&state.task, Some(task) if !task.is_finished()) {
                // Queued in the client's buffer even while disconnected; the client sends
                // it when it reconnects, with every other subscription.
                let sub = tokio::time::timeout(
                    self.config.publish_timeout,
                    self.client.subscribe(subject.clone()),
                )
                .await;
                match sub {
                    Ok(Ok(sub)) => {
                        let task = deliver_loop(Arc::downgrade(self), slot.clone(), sub);
                        state.task = Some(tokio::spawn(task));
                    }
                    failed => {
                        slot.nodes.write().remove(&node);
                        self.remove_if_empty(&slot, &mut state);
                        let e = unavailable(format!("subscribing to {subject}"));
                        return Err(match failed {
                            Ok(Err(cause)) => e.with_source(cause),
                            Err(cause) => e.with_source(cause),
                            Ok(Ok(_)) => e,
                        });
                    }
                }
            }
            break added;
        };
        tracing::trace!(%node, %subject, added, "NATS bus: subscribed");
        if !added || !self.is_connected() {
            // Already heard, or recorded for the reconnect (which then resyncs).
            return Ok(());
        }
        match self.barrier().await {
            Ok(()) => Ok(()),
            // Lost the connection meanwhile: recorded, restored on reconnect.
            Err(_) if !self.is_connected() => Ok(()),
            Err(e) => {
                // Connected yet the server did not confirm: undo, so the caller's state
                // (not subscribed) is the truth, and let it retry.
                self.unsubscribe_subject(node, &subject).await;
                Err(e)
            }
        }
    }

    /// Removes `node` from `subject`, unsubscribing on the server when it was the last.
    pub(crate) async fn unsubscribe_subject(&self, node: NodeId, subject: &str) {
        tracing::trace!(%node, %subject, "NATS bus: unsubscribe");
        loop {
            let Some(slot) = self.slots.lock().get(subject).cloned() else {
                return;
            };
            let mut state = slot.state.lock().await;
            if state.removed {
                continue;
            }
            slot.nodes.write().remove(&node);
            self.remove_if_empty(&slot, &mut state);
            return;
        }
    }

    /// Drops a slot nobody hears any more (its task ends, which unsubscribes).
    fn remove_if_empty(&self, slot: &Arc<Slot>, state: &mut crate::subs::SlotState) {
        if !slot.nodes.read().is_empty() {
            return;
        }
        let mut slots = self.slots.lock();
        if slots
            .get(&slot.subject)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            slots.remove(&slot.subject);
        }
        state.removed = true;
        if let Some(task) = state.task.take() {
            task.abort();
        }
    }

    // ----- deliveries -----

    /// One message of `slot`'s subject.
    pub(crate) fn dispatch(&self, slot: &Slot, payload: &[u8]) {
        if self.resync_owed.load(Ordering::Relaxed)
            && self.resync_owed.swap(false, Ordering::AcqRel)
        {
            // The connection came back and this message may be the first through:
            // resync before it, so nothing delivered after the gap precedes the resync.
            self.resync_all("the connection to NATS came back");
        }
        match wire::decode(payload, slot.broadcast) {
            Ok(Inbound::Delivery { origin, delivery }) => {
                tracing::trace!(subject = %slot.subject, %origin, "NATS bus: delivery");
                let targets: Vec<Arc<dyn BusSink>> = {
                    let nodes = slot.nodes.read();
                    let sinks = self.sinks.read();
                    nodes
                        .iter()
                        .filter(|n| **n != origin)
                        .filter_map(|n| sinks.get(n).cloned())
                        .collect()
                };
                if targets.is_empty() {
                    return;
                }
                for sink in targets {
                    sink.deliver(delivery.clone());
                }
            }
            Ok(Inbound::Resync { from }) => {
                if from != self.id {
                    self.resync_all("another node's connection to NATS came back");
                }
            }
            Err(e) => {
                tracing::warn!("{}", wire::malformed(&slot.subject, payload.len(), &e));
            }
        }
    }

    /// Tells every attached node that deliveries may have been lost.
    pub(crate) fn resync_all(&self, why: &str) {
        let sinks: Vec<Arc<dyn BusSink>> = self.sinks.read().values().cloned().collect();
        tracing::info!(nodes = sinks.len(), "NATS bus: resync ({why})");
        for sink in sinks {
            sink.resync();
        }
    }

    // ----- publishing -----

    /// Publishes `payload` on `subject`, bounded by the publish time-out.
    pub(crate) async fn send(&self, subject: String, payload: Vec<u8>) -> Result<()> {
        let publish = self.client.publish(subject, Bytes::from(payload));
        match tokio::time::timeout(self.config.publish_timeout, publish).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let code = match e.kind() {
                    async_nats::client::PublishErrorKind::MaxPayloadExceeded => ErrorCode::TooLarge,
                    _ => ErrorCode::Unavailable,
                };
                Err(Error::new(code, "publishing to NATS").with_source(e))
            }
            Err(e) => Err(unavailable("publishing to NATS timed out").with_source(e)),
        }
    }

    /// Publishes an event's envelope; a failure owes the other nodes a resync.
    pub(crate) async fn publish(&self, subject: String, payload: Vec<u8>) -> Result<()> {
        if !self.is_connected() {
            self.control_owed.store(true, Ordering::Release);
            return Err(unavailable(
                "not connected to NATS; the publication was not sent",
            ));
        }
        if self.control_owed.load(Ordering::Relaxed)
            && self.control_owed.swap(false, Ordering::AcqRel)
        {
            self.send_control().await;
        }
        tracing::trace!(%subject, "NATS bus: publish");
        let sent = self.send(subject, payload).await;
        if sent.is_err() {
            self.control_owed.store(true, Ordering::Release);
        }
        sent
    }

    /// `{"v":1,"resync":<id>}` on `{prefix}.all`: the other nodes resync. Owed again
    /// when it fails.
    async fn send_control(&self) {
        let sent = self
            .send(self.subjects.broadcast(), wire::encode_resync(self.id))
            .await;
        if let Err(e) = sent {
            self.control_owed.store(true, Ordering::Release);
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "NATS bus: resync control message"
            );
        }
    }

    // ----- client events -----

    fn on_event(self: &Arc<Self>, event: Event) {
        match event {
            Event::Disconnected => {
                self.disconnected.store(true, Ordering::Release);
                tracing::warn!(url = %self.url, "NATS bus: disconnected; reconnecting");
            }
            Event::Connected => {
                if self.disconnected.swap(false, Ordering::AcqRel) {
                    tracing::info!(url = %self.url, "NATS bus: connected again");
                    self.resync_owed.store(true, Ordering::Release);
                    let shared = self.clone();
                    tokio::spawn(async move { shared.after_reconnect().await });
                }
            }
            Event::SlowConsumer(sid) => {
                tracing::warn!(
                    sid,
                    "NATS bus: a subscription overflowed; messages were dropped"
                );
                if !self.slow_resync_scheduled.swap(true, Ordering::AcqRel) {
                    let weak: Weak<Self> = Arc::downgrade(self);
                    tokio::spawn(async move {
                        tokio::time::sleep(SLOW_CONSUMER_COALESCE).await;
                        if let Some(shared) = weak.upgrade() {
                            shared.slow_resync_scheduled.store(false, Ordering::Release);
                            shared.resync_all("a subscription overflowed");
                        }
                    });
                }
            }
            other => tracing::info!(url = %self.url, "NATS bus: {other}"),
        }
    }

    /// The connection came back; the client has queued every subscription again ahead
    /// of anything sent from now on.
    async fn after_reconnect(&self) {
        // Once the server has them all, resync: what is committed from then on arrives.
        if let Err(e) = self.barrier().await {
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "NATS bus: barrier after reconnect"
            );
        }
        if self.resync_owed.swap(false, Ordering::AcqRel) {
            self.resync_all("the connection to NATS came back");
        }
        // This node's publications may have been lost while it was away.
        self.control_owed.store(false, Ordering::Release);
        self.send_control().await;
        self.presence.rewatch();
    }
}
