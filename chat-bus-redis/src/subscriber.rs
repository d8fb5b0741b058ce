//! The subscribing connection and the one task that owns it.
//!
//! Sans locks: the task owns the attached nodes, the wanted subscriptions (channel →
//! nodes) and the set the server has confirmed on the current connection. Callers send it
//! requests and await its answer; it handles whatever requests have piled up as one
//! batch (one `SUBSCRIBE` and one `UNSUBSCRIBE` for all of them, each followed by a
//! `PING` whose answer means the server has processed it: fred resolves a `SUBSCRIBE` as
//! soon as it is written), and passes each received message to the nodes that want its
//! channel, but the one it came from.
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
use chat_core::NodeId;
use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use fred::types::config::Server;
use fred::types::Message;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

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
        reply: oneshot::Sender<()>,
    },
    Detach {
        node: NodeId,
        reply: oneshot::Sender<()>,
    },
    Subscribe {
        node: NodeId,
        channel: String,
        reply: oneshot::Sender<()>,
    },
    Unsubscribe {
        node: NodeId,
        channel: String,
        reply: oneshot::Sender<()>,
    },
}

/// What the task shows to [`RedisBus`](crate::RedisBus)'s `Debug` and tests.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) nodes: AtomicUsize,
    pub(crate) channels: AtomicUsize,
    /// Every wanted channel is confirmed by the server.
    pub(crate) in_sync: AtomicBool,
    /// The subscribing connection was lost and is not back yet.
    pub(crate) down: AtomicBool,
}

/// The task's state.
pub(crate) struct Driver {
    client: Client,
    /// This bus instance: its own resync control messages are ignored.
    instance: Uuid,
    all: String,
    timeout: Duration,
    shared: Arc<Shared>,
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
    /// The last (un)subscription failed: log the next failures quietly.
    failing: bool,
    /// The connection was lost (the client reported an error) and no new one has been
    /// reported since. The client's own state says "connected" until its first attempt
    /// to reconnect, which may be a back-off delay later.
    down: bool,
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
            failing: false,
            down: false,
        }
    }

    /// Runs until the bus is dropped (its request sender closes).
    pub(crate) async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut errors: broadcast::Receiver<(fred::error::Error, Option<Server>)>,
        mut reconnects: broadcast::Receiver<Server>,
        mut messages: broadcast::Receiver<Message>,
    ) {
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                // Errors first: the client reports a lost connection before the next
                // one, so when both wait, this order is theirs.
                error = errors.recv() => match error {
                    Ok((e, _)) => self.lost(&e),
                    Err(RecvError::Lagged(_)) => self.lost(&fred::error::Error::new(
                        fred::error::ErrorKind::Unknown,
                        "connection errors were missed",
                    )),
                    Err(RecvError::Closed) => break,
                },
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
                _ = retry.tick(), if self.dirty => {
                    if self.connected() {
                        self.sync(false).await;
                    }
                }
                message = messages.recv() => match message {
                    Ok(m) => self.dispatch(&m),
                    Err(RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "bus: received messages overflowed the buffer; every node resyncs");
                        self.resync_all();
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    }

    fn connected(&self) -> bool {
        !self.down && self.client.is_connected()
    }

    /// The connection is lost: until a new one is reported, calls are only recorded.
    fn lost(&mut self, e: &fred::error::Error) {
        if !self.down {
            tracing::warn!(error = %e, "bus: subscriber lost its connection to Redis");
        }
        self.down = true;
        self.shared.down.store(true, Ordering::Relaxed);
    }

    /// A new connection: nothing is subscribed on it yet.
    async fn reconnected(&mut self) {
        self.down = false;
        self.shared.down.store(false, Ordering::Relaxed);
        tracing::info!(
            channels = self.wanted.len(),
            "bus: subscriber connected; restoring subscriptions"
        );
        self.active.clear();
        self.dirty = true;
        self.owe_resync = true;
        // The client reports the new connection just before it calls itself connected;
        // commands sent meanwhile wait for it, so do not wait for the flag.
        self.sync(true).await;
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
        let mut replies = Vec::with_capacity(batch.len());
        for request in batch {
            match request {
                Request::Attach { node, sink, reply } => {
                    self.sinks.insert(node, sink);
                    let all = self.all.clone();
                    self.want(node, all);
                    replies.push(reply);
                }
                Request::Detach { node, reply } => {
                    self.sinks.remove(&node);
                    self.wanted.retain(|_, nodes| {
                        nodes.remove(&node);
                        !nodes.is_empty()
                    });
                    replies.push(reply);
                }
                Request::Subscribe {
                    node,
                    channel,
                    reply,
                } => {
                    self.want(node, channel);
                    replies.push(reply);
                }
                Request::Unsubscribe {
                    node,
                    channel,
                    reply,
                } => {
                    // Effective at once: from now on no message of the channel reaches
                    // the node, whether or not the server has been told yet.
                    self.unwant(node, &channel);
                    replies.push(reply);
                }
            }
        }
        self.sync(false).await;
        for reply in replies {
            let _ = reply.send(());
        }
    }

    /// Brings the server's subscriptions in line with `wanted`. When not connected (and
    /// not `connecting`), or when the server does not confirm in time, only records that
    /// it must be done: it is tried again, and the nodes resync once it is.
    ///
    /// Nothing here fails: the client cannot tell a refusal by the server from a
    /// connection lost while writing (fred reports both as `Unknown`), so every failure
    /// is retried; the first of a streak is logged as a warning.
    async fn sync(&mut self, connecting: bool) {
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
        if to_subscribe.is_empty() && to_unsubscribe.is_empty() {
            self.dirty = false;
        } else if !connecting && !self.connected() {
            // Recorded: restored, then resynced, on the next connection.
            self.dirty = true;
            self.owe_resync |= !to_subscribe.is_empty();
        } else {
            self.dirty = false;
            for chunk in to_unsubscribe.chunks(CHANNELS_PER_COMMAND) {
                match self.command(false, chunk).await {
                    Ok(()) => {
                        for c in chunk {
                            self.active.remove(c);
                        }
                    }
                    // Harmless meanwhile: no node wants the channel's messages.
                    Err(e) => self.failed("unsubscribing", &e),
                }
            }
            for chunk in to_subscribe.chunks(CHANNELS_PER_COMMAND) {
                match self.command(true, chunk).await {
                    Ok(()) => self.active.extend(chunk.iter().cloned()),
                    Err(e) => {
                        self.failed("subscribing", &e);
                        self.owe_resync = true;
                    }
                }
            }
            if !self.dirty {
                self.failing = false;
            }
        }
        if !self.dirty && self.owe_resync {
            self.owe_resync = false;
            self.resync_all();
        }
        self.publish_counts();
    }

    fn failed(&mut self, what: &str, e: &fred::error::Error) {
        self.dirty = true;
        if std::mem::replace(&mut self.failing, true) {
            tracing::debug!(error = %e, "bus: {what} failed again; will retry");
        } else {
            tracing::warn!(error = %e, "bus: {what} failed; will retry");
        }
    }

    async fn command(
        &self,
        subscribe: bool,
        channels: &[String],
    ) -> Result<(), fred::error::Error> {
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
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(fred::error::Error::new(
                    fred::error::ErrorKind::Timeout,
                    "no confirmation in time",
                ))
            })
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
