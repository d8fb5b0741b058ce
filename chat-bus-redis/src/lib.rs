//! # chat-bus-redis
//!
//! The [`Bus`](chat_core::ports::Bus) of chat-core on Redis, for engines running as
//! several nodes: each committed event is published once on Redis pub/sub and every node
//! that follows its conversation fans it out to its own sessions; presence leases live in
//! Redis with a time to live.
//!
//! ```no_run
//! use chat_bus_redis::{RedisBus, RedisBusConfig};
//!
//! # async fn run() -> chat_core::Result<()> {
//! let bus = RedisBus::connect("redis://127.0.0.1:6379", RedisBusConfig::default()).await?;
//! # let _ = bus;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout in Redis
//!
//! Every name starts with the configured prefix (`chat` by default):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `{prefix}:c:{conversation}` | channel | deliveries to a conversation's followers |
//! | `{prefix}:u:{user}` | channel | deliveries to one user (conversation added or removed, …) |
//! | `{prefix}:all` | channel | deliveries every node hears (presence), and the resync control message |
//! | `{prefix}:p:{user}` | sorted set | the user's presence leases: member = node id, score = the lease's expiry in ms of Redis's clock (`TIME`); the key expires with its last lease (`PEXPIREAT`) |
//!
//! A payload is chat-core's versioned envelope
//! ([`envelope::encode`](chat_core::ports::envelope::encode): JSON with `v`, `origin`
//! and `delivery`), one `PUBLISH` per event whatever the number of recipients. A node
//! drops payloads whose origin is itself.
//!
//! The **resync control message** is `{"v":1,"resync":"<uuid>"}` on `{prefix}:all`, the
//! uuid naming the bus instance that sends it. It has no `origin` and no `delivery`, so a
//! node that reads only deliveries refuses it as malformed and drops it; a node of this
//! crate calls [`BusSink::resync`](chat_core::ports::BusSink::resync) on every node it
//! carries (unless the message is its own).
//!
//! A node is subscribed to `{prefix}:all` while attached, and to a conversation's or a
//! user's channel while the engine asks (while a local session follows it). One
//! [`RedisBus`] has one subscription per channel whatever the number of nodes attached
//! to it (normally one).
//!
//! # When the connection drops
//!
//! The bus is a fast path; the store is the truth. Both connections reconnect by
//! themselves, forever, with an exponential back-off.
//!
//! - `subscribe` and `unsubscribe` never fail because Redis is down: the wanted
//!   subscriptions are recorded and restored on the next connection. When Redis is up,
//!   `subscribe` returns once Redis confirmed the subscription.
//! - After the subscribing connection comes back and every wanted subscription is
//!   confirmed, every attached node is told to resync (it re-reads what it follows from
//!   the store). So too when received messages overflowed the buffer.
//! - After the publishing connection comes back, or after a publish failed, the bus
//!   publishes the resync control message, so that the *other* nodes re-read what this
//!   node may have failed to publish.
//! - `publish`, the presence calls and `ready` fail with `unavailable` at once while
//!   disconnected, and after [`RedisBusConfig::command_timeout`] when Redis is slow.
//! - A node that dies stops renewing its leases; they expire by themselves.
//!
//! Requires Redis 5 or later (scripts that read `TIME` and then write), a single server
//! (not Redis Cluster), without TLS for now.
//!
//! # Layout
//!
//! - [`config`] holds [`RedisBusConfig`].
//! - `bus`: [`RedisBus`]: connecting, the `Bus` implementation, the heartbeat.
//! - `publisher`: the publishing connection and the resync control message it owes.
//! - `subscriber`: the subscribing connection and the one task that owns the wanted
//!   subscriptions, restores them, and hands received deliveries to the nodes.
//! - `presence`: the lease scripts.
//! - `payload`: deliveries and the control message on the wire; `names`: every channel
//!   and key name.
//! - `testing` (feature `test-util`): starts a private `redis-server` for tests.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | `chat_bus_redis::testing`: a private `redis-server` on a free loopback port, in a temporary directory, stopped on drop, that a test can kill and restart. |
//!
//! # Why fred
//!
//! [fred](https://docs.rs/fred) reconnects by itself with a back-off policy, reports each
//! lost and each new connection (`error_rx`, `reconnect_rx`), fails a command at once
//! when disconnected (`fail_fast`), closes connections that stop answering, and
//! pipelines. The wanted subscriptions are kept here rather than in the client, because
//! `subscribe` must succeed while disconnected and the nodes must be told to resync only
//! once every subscription is back. Two things fred does not do are done here: it
//! resolves `SUBSCRIBE` once the command is written, so a `PING` after it stands for the
//! server's confirmation; and its connection state reads "connected" until its first
//! reconnection attempt, so a lost connection is taken from its error reports.

pub mod config;
#[cfg(feature = "test-util")]
pub mod testing;

mod bus;
mod error;
mod names;
mod payload;
mod presence;
mod publisher;
mod subscriber;

pub use bus::RedisBus;
pub use config::RedisBusConfig;
