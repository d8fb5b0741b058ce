//! # chat-bus-nats
//!
//! The chat engine's [`Bus`](chat_core::ports::Bus) on NATS (`async-nats`): fan-out
//! across nodes on core NATS subjects, presence leases in a JetStream key-value bucket.
//! Works with nats-server 2.9 and later (no 2.10+ feature is used); the server must run
//! JetStream (`nats-server -js`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use chat_bus_nats::{NatsBus, NatsBusConfig};
//!
//! # async fn run(store: Arc<dyn chat_core::ports::Store>) -> chat_core::Result<()> {
//! let bus = NatsBus::connect("nats://127.0.0.1:4222", NatsBusConfig::default()).await?;
//! let engine = chat_core::Engine::builder(store).bus(Arc::new(bus)).build().await?;
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`NatsBusConfig`]: prefix, bucket, lease TTL, time-outs.
//! - `bus`: [`NatsBus`]: connecting, and the `Bus` implementation.
//! - `shared`: the client's state shared with its tasks: attached nodes, subscriptions,
//!   publishing, and what the client's events (disconnect, reconnect, slow consumer)
//!   set off.
//! - `subs`: one NATS subscription per subject, shared by the nodes of the client.
//! - `presence`: the key-value bucket and the in-memory view kept by a watch.
//! - `subject`: subject and key names (pure).
//! - `wire`: the control message and the lease value (pure).
//! - [`testing`] (feature `test-util`): a `nats-server` child process for tests.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | [`testing::NatsServer`]: a `nats-server -js` of a test's own on a free port, restartable, killed on drop. For this crate's tests and other crates' cluster tests. |
//!
//! # Subjects
//!
//! With the default prefix `chat` ([`NatsBusConfig::prefix`]):
//!
//! | topic | subject |
//! |---|---|
//! | a conversation | `chat.c.{conversation uuid}` |
//! | a user | `chat.u.{user id as unpadded base64url}` |
//! | broadcast (presence events, resync control) | `chat.all` |
//!
//! A user id may hold dots, spaces, `*`, `>` or any non-control character, so it is
//! written as unpadded base64url (`A–Z a–z 0–9 - _`, at most 171 characters): `a.b`
//! becomes `chat.u.YS5i`.
//!
//! A node subscribes to a conversation only while it has a local session following it
//! (the engine calls `subscribe` and `unsubscribe`). One client serves every node of a
//! process that attaches to it: a subject has one NATS subscription per client, counted
//! over the nodes that want it, and `detach` removes a node from all of its subjects.
//!
//! # Payloads
//!
//! `publish` sends one message per event, whatever the number of recipients: chat-core's
//! [`envelope`](chat_core::ports::envelope), `{"v":1,"origin":<node>,"delivery":{…}}`.
//! A node ignores deliveries whose origin is itself (another node of the same client
//! still gets them). Publications of one client on one subject arrive in the order
//! published (NATS orders per connection and subject).
//!
//! The resync control message is `{"v":1,"resync":<client id>}` on `{prefix}.all`: a
//! random id per [`NatsBus`] (one connection), not a node id; it has neither `origin` nor
//! `delivery`, so it never reads as an envelope. A client sends it when its connection
//! comes back (publications it made just before the disconnect, or that failed while
//! away, are lost) and after any failed publish; every other client that hears it calls
//! [`BusSink::resync`](chat_core::ports::BusSink::resync) on its nodes.
//!
//! # Connection loss
//!
//! - `subscribe` returns `Ok` once the server has the subscription: after subscribing
//!   the client makes a round trip (a request that this client answers itself on a
//!   private inbox), which the server handles after the subscribe. While disconnected,
//!   `subscribe` and `unsubscribe` do not fail: the change is queued in the client, which
//!   sends it with every other subscription when it reconnects (async-nats restores
//!   subscriptions by itself; the conformance suite's restart test checks it).
//! - `publish` while disconnected returns `unavailable` at once and sends nothing (it is
//!   not buffered for later). A publish made while connected returns once the message is
//!   in the client's outgoing buffer (at most [`NatsBusConfig::publish_timeout`], else
//!   `unavailable`); if the connection drops before it reaches the server it is lost,
//!   which the control message on reconnect covers. The engine fills gaps from the
//!   store either way.
//! - When the connection comes back, each attached node is resynced once, before the
//!   first delivery that follows the reconnect or after the server has the restored
//!   subscriptions, whichever comes first; then the control message goes out and the
//!   presence watch is made again. A slow consumer (a subscription whose buffer
//!   overflowed, so messages were dropped) resyncs every node, bursts gathered into one.
//!
//! # Presence
//!
//! One JetStream key-value bucket (default `chat_presence`, file storage, history 1,
//! `max_age` = [`NatsBusConfig::presence_ttl`] when this client creates it; an existing
//! bucket keeps its own `max_age`). One key per (user, node):
//!
//! ```text
//! {user id as unpadded base64url}.{node uuid, 32 hex digits}  =  {"v":1,"ttl_ms":30000}
//! ```
//!
//! - `renew_presence` puts the key of every user of the batch, concurrently (256 in
//!   flight), and returns when the server has acknowledged them all.
//! - `drop_presence` deletes that node's key (a delete marker, not a purge: see
//!   `presence` for the server bug purges meet on 2.9); `detach` deletes every key the
//!   node renewed through this client (best effort).
//! - A node that dies stops renewing: its keys are removed by the bucket's `max_age`,
//!   and they count no longer than their lease in every view meanwhile.
//! - `online(users)` answers from memory: each client watches the whole bucket and keeps,
//!   per user, each node's lease end = the entry's server timestamp + its lease (entries
//!   that `max_age` removes leave no marker, so the end is computed, not observed). To
//!   read other nodes' writes that returned a moment ago, `online` first asks the server
//!   for the bucket's last sequence and waits until the watch has applied it: one round
//!   trip for the whole list. After a reconnect the watch is made again and replays the
//!   bucket; `online` waits for it to catch up. When the server does not answer, `online`
//!   answers from the view as it is (leases still end on time).
//! - The `ttl` of `renew_presence` is honoured when it is at most the bucket's `max_age`
//!   (the value records it); a longer one is cut to `max_age`, because the server removes
//!   the key then, and is logged once. Give the bucket the engine's presence TTL.
//! - Lease ends compare the server's timestamps with this host's clock: keep clocks in
//!   sync (NTP) to well within the TTL.

pub mod config;

mod bus;
mod presence;
mod shared;
mod subject;
mod subs;
mod wire;

#[cfg(feature = "test-util")]
pub mod testing;

pub use bus::NatsBus;
pub use config::NatsBusConfig;
