//! The subscribing connection and the one task that owns it.
//!
//! Sans locks: the task owns the attached nodes, the wanted subscriptions (channel →
//! nodes) and the set the server has confirmed on the current connection. Callers send it
//! requests and await its answer; it handles whatever requests have piled up as one
//! batch (one `SUBSCRIBE` and one `UNSUBSCRIBE` for all of them), and passes each
//! received message to the nodes that want its channel.
//!
//! While a batch waits for the server, received messages wait in the driver's buffer
//! (`RedisBusConfig::buffer`); if it overflows, every node is told to resync. After a
//! reconnection the task subscribes again to every wanted channel and only then tells
//! the nodes to resync, so nothing delivered on the new connection can be handed over
//! before that call.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_core::ports::BusSink;
use chat_core::{Error, NodeId, Result};
use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use fred::types::config::Server;
use fred::types::Message;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::error::is_connection;
use crate::payload::Payload;

/// Requests handled as one batch, at most.
const MAX_BATCH: usize = 512;
/// Channels per `SUBSCRIBE` or `UNSUBSCRIBE` when restoring many at once.
const CHANNELS_PER_COMMAND: usize = 1024;
/// How often subscriptions that could not be confirmed are tried again.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// What callers ask of the task.
pub(crate) enum Request {
    Attach {
        node: NodeId,
        sink: Arc<dyn BusSink>,
        reply: oneshot::Sender<Result<()>>,
    },
    Detach {
        node: NodeId,
        reply: oneshot::Sender<Result<()>>,
    },
    Subscribe {
        node: NodeId,
        channel: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Unsubscribe {
        node: NodeId,
        channel: String,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// What the task shows to [`RedisBus`](crate::RedisBus)'s `Debug` and tests.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) nodes: AtomicUsize,
    pub(crate) channels: AtomicUsize,
    /// Every wanted channel is confirmed by the server.
    pub(crate) in_sync: AtomicBool,
}

/// The task's state.
pub(crate) struct Driver {
    pub(crate) client: Client,
    /// This bus instance: its own resync control messages are ignored.
    pub(crate) instance: Uuid,
    pub(crate) all: String,
    pub(crate) timeout: Duration,
    pub(crate) shared: Arc<Shared>,
    sinks: HashMap<NodeId, Arc<dyn BusSink>>,
    /// Channel → the nodes that want it. A channel is here only while some node wants it.
    wanted: HashMap<String, HashSet<NodeId>>,
    /// Channels the server confirmed on the current connection.
    active: HashSet<String>,
    /// `wanted` and `active` may differ: try again when connected.
    dirty: bool,
    /// Deliveries may have been lost (a reconnection, a subscription acknowledged before
    /// the server confirmed it): resync every node once `wanted` is all confirmed.
    owe_resync: bool,
}

/// A caller waiting for its batch, and what to undo if the server refuses it.
struct Waiter {
    reply: oneshot::Sender<Result<()>>,
    undo: Option<(NodeId, String, bool)>,
}

impl Driver {
    pub(crate) fn new(
        client: Client,
        instance: Uuid,
        all: String,
        timeout: Duration,
        shared: Arc<Shared>,
    ) -> Self {
        Driver {
            client,
            instance,
            all,
            timeout,
            shared,
            sinks: HashMap::new(),
            wanted: HashMap::new(),
            active: HashSet::new(),
            dirty: false,
            owe_resync: false,
        }
    }

    /// Runs until the bus is dropped (its request sender closes).
    pub(crate) async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut reconnects: broadcast::Receiver<Server>,
        mut messages: broadcast::Receiver<Message>,
    ) {
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                event = reconnects.recv() => match event {
                    Ok(_) | Err(RecvError::Lagged(_)) => self.reconnected().await,
                    Err(RecvError::Closed) => break,
                },
                request = requests.recv() => match request {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match requests.try_recv() {
                                Ok(r) => batch.push(r),
                                Err(_) => break,
                            }
                        }
                        self.handle(batch).await;
                    }
                    None => break,
                },
                message = messages.recv() => match message {
                    Ok(m) => self.dispatch(&m),
                    Err(RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "bus: received messages overflowed the buffer; every node resyncs");
                        self.resync_all();
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = retry.tick(), if self.dirty => {
                    if self.client.is_connected() {
                        let _ = self.sync(false).await;
                    }
                }
            }
        }
    }

    /// A new connection: nothing is subscribed on it yet.
    async fn reconnected(&mut self) {
        tracing::info!(
            channels = self.wanted.len(),
            "bus: subscriber connected; restoring subscriptions"
        );
        self.active.clear();
        self.dirty = true;
        self.owe_resync = true;
        // The client reports the new connection just before it calls itself connected;
        // commands sent meanwhile wait for it, so do not wait for the flag.
        let _ = self.sync(true).await;
    }

    fn want(&mut self, node: NodeId, channel: String) {
        self.wanted.entry(channel).or_default().insert(node);
    }

    fn unwant(&mut self, node: NodeId, channel: &str) {
        if let Some(nodes) = self.wanted.get_mut(channel) {
            nodes.remove(&node);
            if nodes.is_empty() {
                self.wanted.remove(channel);
            }
        }
    }

    async fn handle(&mut self, batch: Vec<Request>) {
        let mut waiters = Vec::with_capacity(batch.len());
        for request in batch {
            match request {
                Request::Attach { node, sink, reply } => {
                    self.sinks.insert(node, sink);
                    let all = self.all.clone();
                    self.want(node, all.clone());
                    waiters.push(Waiter {
                        reply,
                        undo: Some((node, all, true)),
                    });
                }
                Request::Detach { node, reply } => {
                    self.sinks.remove(&node);
                    self.wanted.retain(|_, nodes| {
                        nodes.remove(&node);
                        !nodes.is_empty()
                    });
                    waiters.push(Waiter { reply, undo: None });
                }
                Request::Subscribe {
                    node,
                    channel,
                    reply,
                } => {
                    self.want(node, channel.clone());
                    waiters.push(Waiter {
                        reply,
                        undo: Some((node, channel, false)),
                    });
                }
                Request::Unsubscribe {
                    node,
                    channel,
                    reply,
                } => {
                    // Effective at once: from now on no message of the channel reaches
                    // the node, whether or not the server has been told yet.
                    self.unwant(node, &channel);
                    waiters.push(Waiter { reply, undo: None });
                }
            }
        }
        let refused = self.sync(false).await;
        for w in waiters {
            let result = match (&refused, w.undo) {
                (Some((channels, e)), Some((node, channel, attach)))
                    if channels.contains(&channel) =>
                {
                    self.unwant(node, &channel);
                    if attach {
                        self.sinks.remove(&node);
                    }
                    Err(e.clone())
                }
                _ => Ok(()),
            };
            let _ = w.reply.send(result);
        }
        self.publish_counts();
    }

    /// Brings the server's subscriptions in line with `wanted`. Returns the channels the
    /// server refused (not merely failed to confirm in time) and why. When not connected
    /// (and `connecting` is false), only records that it must be done.
    async fn sync(&mut self, connecting: bool) -> Option<(HashSet<String>, Error)> {
        let to_unsubscribe: Vec<String> = self
            .active
            .iter()
            .filter(|c| !self.wanted.contains_key(*c))
            .cloned()
            .collect();
        let to_subscribe: Vec<String> = self
            .wanted
            .keys()
            .filter(|c| !self.active.contains(*c))
            .cloned()
            .collect();
        let mut refused = None;
        if to_subscribe.is_empty() && to_unsubscribe.is_empty() {
            self.dirty = false;
        } else {
            if !connecting && !self.client.is_connected() {
                // Recorded: restored, then resynced, on the next connection.
                self.dirty = true;
                self.owe_resync |= !to_subscribe.is_empty();
                self.publish_counts();
                return None;
            }
            self.dirty = false;
            for chunk in to_unsubscribe.chunks(CHANNELS_PER_COMMAND) {
                match self.command(false, chunk).await {
                    Ok(()) => {
                        for c in chunk {
                            self.active.remove(c);
                        }
                    }
                    // Harmless meanwhile: no node wants the channel's messages.
                    Err(_) => self.dirty = true,
                }
            }
            for chunk in to_subscribe.chunks(CHANNELS_PER_COMMAND) {
                match self.command(true, chunk).await {
                    Ok(()) => self.active.extend(chunk.iter().cloned()),
                    Err(e) if e.is_connection => {
                        tracing::warn!(error = %e.error, "bus: subscribing; will retry");
                        self.dirty = true;
                        self.owe_resync = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.error, "bus: Redis refused a subscription");
                        let set: HashSet<String> = chunk.iter().cloned().collect();
                        refused = Some((
                            set,
                            Error::unavailable("Redis refused the bus's subscription")
                                .with_source(e.error),
                        ));
                    }
                }
            }
        }
        if !self.dirty && self.owe_resync {
            self.owe_resync = false;
            self.resync_all();
        }
        self.publish_counts();
        refused
    }

    async fn command(&self, subscribe: bool, channels: &[String]) -> Result<(), Failure> {
        let channels = channels.to_vec();
        let call = async {
            if subscribe {
                self.client.subscribe(channels).await?;
            } else {
                self.client.unsubscribe(channels).await?;
            }
            // fred resolves (UN)SUBSCRIBE once written, not once confirmed. Redis answers
            // a connection's commands in order, so the answer to a PING sent after it
            // means the server has processed it.
            self.client.ping::<fred::types::Value>(None).await.map(drop)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Failure {
                is_connection: is_connection(&error),
                error,
            }),
            Err(_) => Err(Failure {
                is_connection: true,
                error: fred::error::Error::new(
                    fred::error::ErrorKind::Timeout,
                    "no confirmation in time",
                ),
            }),
        }
    }

    fn publish_counts(&self) {
        self.shared.nodes.store(self.sinks.len(), Ordering::Relaxed);
        self.shared
            .channels
            .store(self.wanted.len(), Ordering::Relaxed);
        self.shared.in_sync.store(
            !self.dirty && self.wanted.len() == self.active.len(),
            Ordering::Relaxed,
        );
    }

    fn resync_all(&self) {
        for sink in self.sinks.values() {
            sink.resync();
        }
    }

    /// Hands a received message to the nodes that want its channel, but its origin.
    fn dispatch(&self, message: &Message) {
        let Some(nodes) = self.wanted.get(&*message.channel) else {
            return; // a subscription being dropped
        };
        let Some(bytes) = message.value.as_bytes() else {
            tracing::debug!(channel = %message.channel, "bus: a message that is not bytes");
            return;
        };
        match Payload::decode(bytes) {
            Ok(Payload::Delivery(origin, delivery)) => {
                for node in nodes.iter().filter(|n| **n != origin) {
                    if let Some(sink) = self.sinks.get(node) {
                        sink.deliver(delivery.clone());
                    }
                }
            }
            Ok(Payload::Resync(instance)) => {
                if instance != self.instance && *message.channel == *self.all {
                    tracing::info!(%instance, "bus: another node reconnected; resyncing");
                    self.resync_all();
                }
            }
            Err(e) => {
                tracing::debug!(channel = %message.channel, error = %e, "bus: dropped a payload");
            }
        }
    }
}

/// A failed `SUBSCRIBE` or `UNSUBSCRIBE`.
struct Failure {
    is_connection: bool,
    error: fred::error::Error,
}
