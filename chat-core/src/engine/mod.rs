//! The engine: sessions, commands and fan-out.
//!
//! [`Engine`] is a cheap-to-clone handle. A transport authenticates a connection, then
//! calls [`Engine::open_session`] with the connection's [`Transport`]; the returned
//! [`Session`] takes [`Command`]s and answers [`Reply`]s, while events for the user are
//! encoded (once per wire format) and queued on the transport without ever blocking.
//!
//! Fan-out happens after the store commits (invariant 2). Each node delivers to its own
//! sessions and publishes the delivery on the [`Bus`] for the others.

mod command;
mod event;
mod fanout;
mod latency;
mod session;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use command::*;
pub use event::{Audience, Delivery, Event, Skip};
pub use latency::{LatencySnapshot, BUCKETS_MICROS};
pub use session::Session;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, NodeId, SessionId, UserId};
use crate::memory::MemoryBus;
use crate::model::{
    validate_body, Limits, Message, MessageKind, NewMessage, Presence, TypingLeases,
};
use crate::ports::{
    Bus, BusSink, Clock, CloseReason, DefaultPolicy, IdGen, Identity, Policy, RandomIds, Store,
    SystemClock, Topic, Transport,
};

/// Counters since the engine started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    messages_sent: AtomicU64,
    deliveries: AtomicU64,
    volatile_dropped: AtomicU64,
    slow_consumer_disconnects: AtomicU64,
    bus_errors: AtomicU64,
    pub(crate) append_latency: latency::Histogram,
}

/// A snapshot of the engine's state and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// This node.
    pub node: NodeId,
    /// Open sessions (connections) on this node.
    pub connections: u64,
    /// Users with at least one open session on this node.
    pub online_users: u64,
    /// Conversations with at least one live session on this node.
    pub live_conversations: u64,
    /// Messages appended through this node.
    pub messages_sent: u64,
    /// Frames queued to sessions.
    pub deliveries: u64,
    /// Volatile events (typing, presence) dropped because a queue was full.
    pub volatile_dropped: u64,
    /// Sessions cut off because a durable event did not fit their queue.
    pub slow_consumer_disconnects: u64,
    /// Failed publishes to the bus.
    pub bus_errors: u64,
    /// How long store appends took, as the engine saw them.
    pub append_latency: LatencySnapshot,
}

/// Builds an [`Engine`]. Only the store is required.
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    bus: Option<Arc<dyn Bus>>,
    policy: Arc<dyn Policy>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    limits: Limits,
    node: Option<NodeId>,
    presence_ttl: Duration,
    maintenance: Option<Duration>,
}

impl EngineBuilder {
    /// Starts a builder with the defaults: an in-memory bus (one node), the default
    /// policy (direct messages between friends only), the system clock, random ids,
    /// default limits, and maintenance (typing expiry, presence renewal) every second.
    pub fn new(store: Arc<dyn Store>) -> Self {
        EngineBuilder {
            store,
            bus: None,
            policy: Arc::new(DefaultPolicy::default()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            limits: Limits::default(),
            node: None,
            presence_ttl: Duration::from_secs(30),
            maintenance: Some(Duration::from_secs(1)),
        }
    }

    /// The bus shared with other nodes.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The embedder's policy.
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// The clock (inject a [`ManualClock`](crate::ports::ManualClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The id generator.
    pub fn ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// The limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// This node's id (random by default).
    pub fn node(mut self, node: NodeId) -> Self {
        self.node = Some(node);
        self
    }

    /// How long a node's presence lease lasts without renewal (default 30 s).
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl;
        self
    }

    /// How often the background task expires typing leases and renews presence; `None`
    /// runs no background task (call [`Engine::tick`] yourself, as deterministic tests do).
    pub fn maintenance(mut self, every: Option<Duration>) -> Self {
        self.maintenance = every;
        self
    }

    /// Builds the engine and attaches it to the bus. Must run inside a tokio runtime
    /// when maintenance is on.
    ///
    /// # Errors
    /// `unavailable` when the bus refuses the node.
    pub async fn build(self) -> Result<Engine> {
        let bus = self
            .bus
            .unwrap_or_else(|| Arc::new(MemoryBus::new(self.clock.clone())));
        let node = self.node.unwrap_or_else(|| NodeId(uuid::Uuid::now_v7()));
        let typing_ttl = chrono::Duration::milliseconds(
            i64::try_from(self.limits.typing_ttl_ms).unwrap_or(i64::MAX),
        );
        let inner = Arc::new(Inner {
            node,
            store: self.store,
            bus: bus.clone(),
            policy: self.policy,
            clock: self.clock,
            ids: self.ids,
            limits: self.limits,
            presence_ttl: self.presence_ttl,
            next_session: AtomicU64::new(1),
            users: DashMap::new(),
            conv_subs: DashMap::new(),
            typing: Mutex::new(TypingLeases::new(typing_ttl)),
            counters: Counters::default(),
            kinds: DashMap::new(),
            bus_topics: tokio::sync::Mutex::new(HashSet::from([Topic::Broadcast])),
            presence_locks: (0..PRESENCE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        });
        bus.attach(node, Arc::new(BusReceiver(Arc::downgrade(&inner))))
            .await?;
        let engine = Engine { inner };
        if let Some(every) = self.maintenance {
            let weak = Arc::downgrade(&engine.inner);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    Engine { inner }.tick().await;
                }
            });
        }
        Ok(engine)
    }
}

/// The engine handle. Clone it freely: every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.inner.node)
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) node: NodeId,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGen>,
    pub(crate) limits: Limits,
    presence_ttl: Duration,
    next_session: AtomicU64,
    /// Users with live sessions on this node.
    pub(crate) users: DashMap<UserId, Arc<Mutex<UserState>>>,
    /// Live sessions per conversation, for fan-out.
    pub(crate) conv_subs: DashMap<ConversationId, Vec<Arc<SessionEntry>>>,
    pub(crate) typing: Mutex<TypingLeases>,
    pub(crate) counters: Counters,
    /// Conversation kinds seen (they never change), so that a known member's send needs
    /// no store read. Bounded: cleared when it grows past `limits.kind_cache_max`.
    pub(crate) kinds: DashMap<ConversationId, Arc<crate::model::ConversationKind>>,
    /// Topics this node is subscribed to on the bus; held while changing them.
    bus_topics: tokio::sync::Mutex<HashSet<Topic>>,
    /// Striped locks that order a user's online/offline transitions on this node.
    presence_locks: Vec<tokio::sync::Mutex<()>>,
    shutting_down: std::sync::atomic::AtomicBool,
}

const PRESENCE_LOCKS: usize = 64;

/// One open session, as the fan-out sees it.
pub(crate) struct SessionEntry {
    pub(crate) id: SessionId,
    pub(crate) user: UserId,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) detached: std::sync::atomic::AtomicBool,
    /// Set when the engine closed the transport (slow consumer, shutdown).
    pub(crate) closed: std::sync::atomic::AtomicBool,
}

/// A user's live sessions on this node and the conversations they belong to.
#[derive(Default)]
pub(crate) struct UserState {
    pub(crate) sessions: Vec<Arc<SessionEntry>>,
    pub(crate) conversations: HashSet<ConversationId>,
}

struct BusReceiver(Weak<Inner>);

impl BusSink for BusReceiver {
    fn deliver(&self, delivery: Arc<Delivery>) {
        if let Some(inner) = self.0.upgrade() {
            inner.apply_remote(&delivery);
        }
    }
}

impl Engine {
    /// Starts building an engine on `store`.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder::new(store)
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Opens a session for an authenticated user on a connection.
    ///
    /// The user comes online (friends and co-members are told) when this is their first
    /// connection anywhere; events for them start flowing into `transport` at once.
    ///
    /// # Errors
    /// `unavailable` when the store cannot be reached.
    pub async fn open_session(
        &self,
        identity: Identity,
        transport: Arc<dyn Transport>,
    ) -> Result<Session> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(Error::unavailable("the engine is shutting down"));
        }
        if identity.display_name.is_some() {
            inner
                .store
                .upsert_user(&identity.user, identity.display_name.as_deref())
                .await?;
        }
        let entry = Arc::new(SessionEntry {
            id: SessionId(inner.next_session.fetch_add(1, Ordering::Relaxed)),
            user: identity.user.clone(),
            transport,
            detached: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        // Register first, then load: a join that lands meanwhile finds the user here and
        // subscribes this session too.
        {
            let state = inner.users.entry(identity.user.clone()).or_default();
            state.lock().sessions.push(entry.clone());
        }
        let conversations = match inner
            .store
            .conversations_of(&identity.user, inner.limits.max_live_conversations)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                inner.detach_session(&entry).await;
                return Err(e);
            }
        };
        let mut topics = inner.attach_session(&entry, conversations);
        topics.push(Topic::User(identity.user.clone()));
        inner.reconcile(topics).await;
        if inner.shutting_down.load(Ordering::Acquire) {
            // Shutdown began while this session opened and did not see it.
            entry.closed.store(true, Ordering::Release);
            entry.transport.close(CloseReason::Shutdown);
            inner.detach_session(&entry).await;
            return Err(Error::unavailable("the engine is shutting down"));
        }
        inner.came_online(&identity.user).await;
        Ok(Session::new(self.clone(), entry, identity))
    }

    /// Runs a command as `user` without a connection (for an HTTP API): the same rules
    /// apply, and events reach the user's live sessions, if any.
    ///
    /// # Errors
    /// The command's error.
    pub async fn execute_as(&self, user: &UserId, command: Command) -> Result<Reply> {
        command::run(
            &command::Ctx {
                engine: self,
                user,
                session: None,
            },
            command,
        )
        .await
    }

    /// Appends a system message to a conversation on behalf of the embedder (an admin
    /// API), and fans it out like any message. `sender` names the author shown to users
    /// (e.g. `system`). No membership is needed.
    ///
    /// # Errors
    /// `not_found` for a missing conversation, `too_large`/`invalid` for the body.
    pub async fn system_message(
        &self,
        conversation: ConversationId,
        sender: &UserId,
        body: &str,
    ) -> Result<Message> {
        let inner = &self.inner;
        validate_body(body, inner.limits.max_body_bytes)?;
        if inner.store.conversation(conversation).await?.is_none() {
            return Err(Error::not_found(format!("conversation {conversation}")));
        }
        let appended = inner
            .append(NewMessage {
                id: inner.ids.message_id(),
                conversation,
                sender: sender.clone(),
                client_id: None,
                kind: MessageKind::System,
                body: body.to_owned(),
                created_at: inner.clock.now(),
            })
            .await?;
        inner.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.inner
            .publish(Delivery {
                audience: Audience::Conversation { conversation },
                skip: Skip::Nobody,
                event: Event::Message {
                    message: appended.message.clone(),
                },
            })
            .await;
        Ok(appended.message)
    }

    /// Deletes a conversation with its history; its live members are told
    /// (`conversation_removed`).
    ///
    /// # Errors
    /// `not_found` when it does not exist.
    pub async fn delete_conversation(&self, conversation: ConversationId) -> Result<()> {
        let mut members = Vec::new();
        let mut after: Option<UserId> = None;
        loop {
            let page = self
                .inner
                .store
                .members(conversation, after.as_ref(), 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user.clone());
            members.extend(page.into_iter().map(|m| m.user));
        }
        self.inner.store.delete_conversation(conversation).await?;
        self.inner.kinds.remove(&conversation);
        for user in members {
            self.inner.unsubscribe_user(&user, conversation).await;
            self.inner
                .publish(Delivery {
                    audience: Audience::User { user },
                    skip: Skip::Nobody,
                    event: Event::ConversationRemoved { conversation },
                })
                .await;
        }
        Ok(())
    }

    /// Counts of this node's sessions, users, live conversations and traffic.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let connections = inner
            .users
            .iter()
            .map(|u| u.value().lock().sessions.len() as u64)
            .sum();
        let c = &inner.counters;
        Stats {
            node: inner.node,
            connections,
            online_users: inner.users.len() as u64,
            live_conversations: inner.conv_subs.len() as u64,
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            deliveries: c.deliveries.load(Ordering::Relaxed),
            volatile_dropped: c.volatile_dropped.load(Ordering::Relaxed),
            slow_consumer_disconnects: c.slow_consumer_disconnects.load(Ordering::Relaxed),
            bus_errors: c.bus_errors.load(Ordering::Relaxed),
            append_latency: c.append_latency.snapshot(),
        }
    }

    /// Periodic upkeep, run by the background task (or by tests after moving a manual
    /// clock): ends expired typing leases (telling the others) and renews this node's
    /// presence leases.
    pub async fn tick(&self) {
        let inner = &self.inner;
        let expired = inner.typing.lock().expire(inner.clock.now());
        for (conversation, user) in expired {
            inner
                .publish(Delivery {
                    audience: Audience::Conversation { conversation },
                    skip: Skip::User { user: user.clone() },
                    event: Event::Typing {
                        conversation,
                        user,
                        typing: false,
                    },
                })
                .await;
        }
        let users: Vec<UserId> = inner.users.iter().map(|e| e.key().clone()).collect();
        if !users.is_empty() {
            if let Err(e) = inner
                .bus
                .renew_presence(inner.node, &users, inner.presence_ttl)
                .await
            {
                inner.bus_error(&e);
            }
        }
    }

    /// Closes every session with [`CloseReason::Shutdown`] (their queued frames stay
    /// queued for the transports to flush) and leaves the bus. Sessions opened from now
    /// on are refused with `unavailable`.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<Arc<SessionEntry>> = self
            .inner
            .users
            .iter()
            .flat_map(|u| u.value().lock().sessions.clone())
            .collect();
        for s in sessions {
            s.closed.store(true, Ordering::Release);
            s.transport.close(CloseReason::Shutdown);
            self.inner.detach_session(&s).await;
        }
        if let Err(e) = self.inner.bus.detach(self.inner.node).await {
            self.inner.bus_error(&e);
        }
    }
}

impl Inner {
    pub(crate) fn remember_kind(&self, id: ConversationId, kind: &crate::model::ConversationKind) {
        if self.kinds.len() >= self.limits.kind_cache_max {
            self.kinds.clear();
        }
        self.kinds
            .entry(id)
            .or_insert_with(|| Arc::new(kind.clone()));
    }

    /// Appends through the store, timing it.
    pub(crate) async fn append(&self, message: NewMessage) -> Result<crate::model::Appended> {
        let started = std::time::Instant::now();
        let result = self.store.append(message).await;
        self.counters.append_latency.record(started.elapsed());
        result
    }

    pub(crate) fn bus_error(&self, e: &Error) {
        self.counters.bus_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "bus");
    }

    /// Delivers to this node's sessions, then publishes to the other nodes.
    pub(crate) async fn publish(&self, delivery: Delivery) {
        let delivery = Arc::new(delivery);
        self.deliver_local(&delivery);
        if let Err(e) = self.bus.publish(self.node, delivery).await {
            self.bus_error(&e);
        }
    }

    /// A delivery from another node: keep local subscriptions in step with membership
    /// changes, then deliver.
    fn apply_remote(self: &Arc<Self>, delivery: &Delivery) {
        match (&delivery.audience, &delivery.event) {
            (Audience::User { user }, Event::ConversationAdded { conversation }) => {
                let topics = self.subscribe_user_sync(user, conversation.id);
                self.spawn_reconcile(topics);
            }
            (Audience::User { user }, Event::ConversationRemoved { conversation }) => {
                let topics = self.unsubscribe_user_sync(user, *conversation);
                self.spawn_reconcile(topics);
            }
            _ => {}
        }
        self.deliver_local(delivery);
    }

    fn spawn_reconcile(self: &Arc<Self>, topics: Vec<Topic>) {
        if topics.is_empty() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = self.clone();
            handle.spawn(async move { inner.reconcile(topics).await });
        }
    }

    /// Brings this node's bus subscriptions for `topics` in line with its live sessions.
    ///
    /// Every change of subscription goes through here, one at a time, and decides from
    /// the state at that moment, so a subscribe and an unsubscribe racing for the same
    /// topic cannot land in the wrong order.
    pub(crate) async fn reconcile(&self, topics: Vec<Topic>) {
        if topics.is_empty() {
            return;
        }
        let mut subscribed = self.bus_topics.lock().await;
        for topic in topics {
            let want = match &topic {
                Topic::Conversation(c) => self.conv_subs.get(c).is_some_and(|s| !s.is_empty()),
                Topic::User(u) => self.users.contains_key(u),
                Topic::Broadcast => true,
            };
            if want == subscribed.contains(&topic) {
                continue;
            }
            let result = if want {
                self.bus.subscribe(self.node, topic.clone()).await
            } else {
                self.bus.unsubscribe(self.node, topic.clone()).await
            };
            match result {
                Ok(()) if want => {
                    subscribed.insert(topic);
                }
                Ok(()) => {
                    subscribed.remove(&topic);
                }
                Err(e) => self.bus_error(&e),
            }
        }
    }

    fn presence_lock(&self, user: &UserId) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.hash(&mut h);
        &self.presence_locks[(h.finish() as usize) % PRESENCE_LOCKS]
    }

    /// After a session opened: the user comes online unless they already were.
    async fn came_online(&self, user: &UserId) {
        let _turn = self.presence_lock(user).lock().await;
        if !self.users.contains_key(user) {
            return; // closed again meanwhile
        }
        let was_online = !self
            .bus
            .online(std::slice::from_ref(user))
            .await
            .unwrap_or_default()
            .is_empty();
        if let Err(e) = self
            .bus
            .renew_presence(self.node, std::slice::from_ref(user), self.presence_ttl)
            .await
        {
            self.bus_error(&e);
        }
        if !was_online {
            self.announce_presence(Presence {
                user: user.clone(),
                online: true,
                last_seen: None,
            })
            .await;
        }
    }

    /// Adds a session to the fan-out of its user's conversations (those loaded plus those
    /// already known). Returns topics that gained their first local session.
    fn attach_session(&self, entry: &Arc<SessionEntry>, loaded: Vec<ConversationId>) -> Vec<Topic> {
        let Some(state) = self.users.get(&entry.user).map(|s| s.value().clone()) else {
            return Vec::new();
        };
        let mut st = state.lock();
        st.conversations.extend(loaded);
        let mut topics = Vec::new();
        for conv in &st.conversations {
            let mut subs = self.conv_subs.entry(*conv).or_default();
            if subs.is_empty() {
                topics.push(Topic::Conversation(*conv));
            }
            if !subs.iter().any(|s| s.id == entry.id) {
                subs.push(entry.clone());
            }
        }
        topics
    }

    /// Makes `user`'s live sessions here receive `conversation`'s events.
    pub(crate) fn subscribe_user_sync(
        &self,
        user: &UserId,
        conversation: ConversationId,
    ) -> Vec<Topic> {
        let Some(state) = self.users.get(user).map(|s| s.value().clone()) else {
            return Vec::new();
        };
        let mut st = state.lock();
        st.conversations.insert(conversation);
        let mut subs = self.conv_subs.entry(conversation).or_default();
        let was_empty = subs.is_empty();
        for s in &st.sessions {
            if !subs.iter().any(|x| x.id == s.id) {
                subs.push(s.clone());
            }
        }
        if was_empty && !subs.is_empty() {
            vec![Topic::Conversation(conversation)]
        } else {
            Vec::new()
        }
    }

    /// Stops `user`'s live sessions here from receiving `conversation`'s events.
    pub(crate) fn unsubscribe_user_sync(
        &self,
        user: &UserId,
        conversation: ConversationId,
    ) -> Vec<Topic> {
        let Some(state) = self.users.get(user).map(|s| s.value().clone()) else {
            return Vec::new();
        };
        let mut st = state.lock();
        st.conversations.remove(&conversation);
        self.remove_subs(conversation, |s| &s.user == user)
    }

    fn remove_subs(
        &self,
        conversation: ConversationId,
        gone: impl Fn(&SessionEntry) -> bool,
    ) -> Vec<Topic> {
        let emptied = match self.conv_subs.get_mut(&conversation) {
            Some(mut subs) => {
                subs.retain(|s| !gone(s));
                subs.is_empty()
            }
            None => false,
        };
        if emptied
            && self
                .conv_subs
                .remove_if(&conversation, |_, v| v.is_empty())
                .is_some()
        {
            vec![Topic::Conversation(conversation)]
        } else {
            Vec::new()
        }
    }

    pub(crate) async fn subscribe_user(&self, user: &UserId, conversation: ConversationId) {
        let topics = self.subscribe_user_sync(user, conversation);
        self.reconcile(topics).await;
    }

    pub(crate) async fn unsubscribe_user(&self, user: &UserId, conversation: ConversationId) {
        let topics = self.unsubscribe_user_sync(user, conversation);
        self.reconcile(topics).await;
    }

    /// True when this node knows `user` as a member of `conversation` (a fast path; the
    /// store is asked when this says no).
    pub(crate) fn knows_member(&self, user: &UserId, conversation: ConversationId) -> bool {
        self.users
            .get(user)
            .is_some_and(|s| s.lock().conversations.contains(&conversation))
    }

    /// Removes a session from every fan-out list; when it was the user's last here, the
    /// user goes offline unless another node still holds them.
    pub(crate) async fn detach_session(&self, entry: &Arc<SessionEntry>) {
        if entry.detached.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(state) = self.users.get(&entry.user).map(|s| s.value().clone()) else {
            return;
        };
        let (topics, last) = {
            let mut st = state.lock();
            st.sessions.retain(|s| s.id != entry.id);
            let mut topics = Vec::new();
            for conv in &st.conversations {
                topics.extend(self.remove_subs(*conv, |s| s.id == entry.id));
            }
            (topics, st.sessions.is_empty())
        };
        self.reconcile(topics).await;
        if !last {
            return;
        }
        let removed = self
            .users
            .remove_if(&entry.user, |_, v| {
                Arc::ptr_eq(v, &state) && v.lock().sessions.is_empty()
            })
            .is_some();
        if !removed {
            return;
        }
        self.reconcile(vec![Topic::User(entry.user.clone())]).await;
        let _turn = self.presence_lock(&entry.user).lock().await;
        if self.users.contains_key(&entry.user) {
            return; // a new session opened meanwhile: still online here
        }
        if let Err(e) = self.bus.drop_presence(self.node, &entry.user).await {
            self.bus_error(&e);
        }
        let still_online = !self
            .bus
            .online(std::slice::from_ref(&entry.user))
            .await
            .unwrap_or_default()
            .is_empty();
        if still_online {
            return;
        }
        let now = self.clock.now();
        if let Err(e) = self.store.set_last_seen(&entry.user, now).await {
            tracing::warn!(error = %e, user = %entry.user, "recording last seen");
        }
        self.announce_presence(Presence {
            user: entry.user.clone(),
            online: false,
            last_seen: Some(now),
        })
        .await;
    }

    /// Tells friends and co-members about a presence change.
    pub(crate) async fn announce_presence(&self, presence: Presence) {
        let user = presence.user.clone();
        let conversations = match self
            .store
            .conversations_of(&user, self.limits.max_live_conversations)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "loading conversations for presence");
                Vec::new()
            }
        };
        let friends =
            match command::all_friendships(&self.store, &user, self.limits.max_list_page).await {
                Ok(f) => f
                    .into_iter()
                    .filter(|f| f.is_friends())
                    .map(|f| f.other(&user).clone())
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "loading friends for presence");
                    Vec::new()
                }
            };
        self.publish(Delivery {
            audience: Audience::Presence {
                subject: user.clone(),
                conversations,
                users: friends,
            },
            skip: Skip::User { user },
            event: Event::Presence { presence },
        })
        .await;
    }
}
