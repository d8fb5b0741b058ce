//! The publishing connection: deliveries, the resync control message, presence.
//!
//! One connection, so that publications leave in the order they were made: a call's
//! command is queued on the connection when the call is first polled, and a caller that
//! awaits each publish before the next keeps its order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chat_core::{Error, Result};
use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use fred::types::config::{Options, Server};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::error::{timed_out, unavailable};
use crate::payload;

/// The publishing side of one bus instance.
#[derive(Debug)]
pub(crate) struct Publisher {
    pub(crate) client: Client,
    pub(crate) all: String,
    pub(crate) instance: Uuid,
    pub(crate) timeout: Duration,
    /// The other nodes may have missed a publication of this instance (it failed, or
    /// the connection was replaced): send them the control message before anything else.
    owe_control: AtomicBool,
    /// The connection was lost and no new one has been reported since (the client's
    /// own state says "connected" until its first attempt to reconnect).
    down: AtomicBool,
}

impl Publisher {
    pub(crate) fn new(client: Client, all: String, instance: Uuid, timeout: Duration) -> Self {
        Publisher {
            client,
            all,
            instance,
            timeout,
            owe_control: AtomicBool::new(false),
            down: AtomicBool::new(false),
        }
    }

    /// Whether commands can be sent now.
    pub(crate) fn connected(&self) -> bool {
        !self.down.load(Ordering::Acquire) && self.client.is_connected()
    }

    /// `unavailable` at once when not connected.
    pub(crate) fn check_connected(&self, what: &str) -> Result<()> {
        if self.connected() {
            Ok(())
        } else {
            Err(Error::unavailable(format!(
                "the bus could not {what}: not connected to Redis"
            )))
        }
    }

    /// Fails at once when not connected, and after the time-out when Redis is slow.
    fn fast(&self) -> Options {
        Options {
            fail_fast: true,
            timeout: Some(self.timeout),
            ..Options::default()
        }
    }

    /// Publishes `payload` on `channel`: one `PUBLISH`.
    pub(crate) async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<()> {
        if let Err(e) = self.check_connected("publish") {
            self.owe_control.store(true, Ordering::Release);
            return Err(e);
        }
        if self.owe_control.load(Ordering::Acquire) {
            self.settle(false).await;
        }
        let client = self.client.with_options(&self.fast());
        let call = client.publish::<i64, _, _>(channel, payload);
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(_receivers)) => Ok(()),
            Ok(Err(e)) => Err(unavailable("publish", e)),
            Err(_) => Err(timed_out("publish")),
        };
        if result.is_err() {
            self.owe_control.store(true, Ordering::Release);
        }
        result
    }

    /// Sends the control message if it is owed. `connecting`: the connection was just
    /// replaced and is finishing its handshake, so the command waits for it rather than
    /// failing at once.
    pub(crate) async fn settle(&self, connecting: bool) {
        if !self.owe_control.swap(false, Ordering::AcqRel) {
            return;
        }
        let options = Options {
            fail_fast: !connecting,
            timeout: Some(self.timeout),
            ..Options::default()
        };
        let client = self.client.with_options(&options);
        let call = client.publish::<i64, _, _>(self.all.clone(), payload::resync(self.instance));
        let result: Result<()> = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable("publish the resync message", e)),
            Err(_) => Err(timed_out("publish the resync message")),
        };
        match result {
            Ok(()) => tracing::info!("bus: told the other nodes to resync"),
            Err(e) => {
                tracing::debug!(error = &e as &dyn std::error::Error, "bus: resync message");
                self.owe_control.store(true, Ordering::Release);
            }
        }
    }

    /// Checks the connection with a `PING`.
    pub(crate) async fn ping(&self) -> Result<()> {
        self.check_connected("reach Redis")?;
        let client = self.client.with_options(&self.fast());
        let call = client.ping::<String>(None);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable("reach Redis", e)),
            Err(_) => Err(timed_out("reach Redis")),
        }
    }

    /// Runs until the client closes: notes each lost connection, and after each
    /// reconnection (not the first connection) owes the other nodes a control message and
    /// sends it.
    pub(crate) async fn watch(
        &self,
        mut errors: broadcast::Receiver<(fred::error::Error, Option<Server>)>,
        mut reconnects: broadcast::Receiver<Server>,
    ) {
        let mut first = true;
        loop {
            tokio::select! {
                biased;
                // Errors first: the client reports a lost connection before the next
                // one, so when both wait, this order is theirs.
                error = errors.recv() => match error {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        if !self.down.swap(true, Ordering::AcqRel) {
                            tracing::warn!("bus: publisher lost its connection to Redis");
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                // Lagged: reconnections were missed, which is a reconnection all the same.
                event = reconnects.recv() => match event {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        self.down.store(false, Ordering::Release);
                        if std::mem::take(&mut first) {
                            continue;
                        }
                        tracing::info!("bus: publisher reconnected");
                        self.owe_control.store(true, Ordering::Release);
                        self.settle(true).await;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    }

    /// Whether a control message is still owed (tests and `Debug`).
    pub(crate) fn owes_control(&self) -> bool {
        self.owe_control.load(Ordering::Acquire)
    }
}

/// Makes an error for a bus whose subscribing task has ended (the bus is being dropped).
pub(crate) fn gone() -> Error {
    Error::unavailable("the bus is shutting down")
}
