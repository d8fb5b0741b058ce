//! [`Ctx`]: what a command handler may use, and nothing more.
//!
//! A handler sees who acts and from which session, the store and policy ports, the
//! limits and the clock, and a few engine services named for what they mean (append a
//! message, follow a conversation, publish an event). It never sees the registry, the
//! bus subscriptions or the counters, so it reads as the business rule it implements.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::event::{Audience, Delivery, Event, Skip};
use crate::ids::{ConversationId, SessionId, UserId};
use crate::model::{
    Appended, Conversation, ConversationKind, Friendship, Limits, MessageKind, NewMessage,
    TypingChange, Visibility,
};
use crate::ports::{Policy, Store};

/// Who runs a command, from where, and the engine services a handler may call.
pub(crate) struct Ctx<'a> {
    inner: &'a Inner,
    /// The acting user.
    pub(crate) user: &'a UserId,
    session: Option<SessionId>,
}

impl<'a> Ctx<'a> {
    /// `user` acting from `session` (none for the HTTP API and the embedder).
    pub(crate) fn new(inner: &'a Inner, user: &'a UserId, session: Option<SessionId>) -> Self {
        Ctx {
            inner,
            user,
            session,
        }
    }

    /// The store.
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The embedder's policy.
    pub(crate) fn policy(&self) -> &dyn Policy {
        &*self.inner.policy
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The injected clock's now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// A fresh conversation id from the injected generator.
    pub(crate) fn new_conversation_id(&self) -> ConversationId {
        self.inner.ids.conversation_id()
    }

    /// A message from the actor, with a fresh id and the clock's time.
    pub(crate) fn new_message(
        &self,
        conversation: ConversationId,
        kind: MessageKind,
        body: String,
        client_id: Option<String>,
    ) -> NewMessage {
        NewMessage {
            id: self.inner.ids.message_id(),
            conversation,
            sender: self.user.clone(),
            client_id,
            kind,
            body,
            created_at: self.now(),
            reply_to: None,
            thread: None,
            attachments: Vec::new(),
        }
    }

    /// Appends to the log (timed; counted when it is not a retry).
    ///
    /// # Errors
    /// `unavailable` with a retry hint, at once and without touching the store, when
    /// [`Limits::max_pending_appends`] appends of this node are already waiting for it;
    /// otherwise the store's error.
    pub(crate) async fn append(&self, message: NewMessage) -> Result<Appended> {
        let inner = self.inner;
        let _slot = match &inner.append_slots {
            None => None,
            Some(slots) => match slots.try_acquire() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    inner.counters.append_refused();
                    return Err(overloaded(&inner.limits));
                }
            },
        };
        let _pending = inner.counters.append_pending();
        let started = std::time::Instant::now();
        let result = self.inner.store.append(message).await;
        self.inner.counters.append_took(started.elapsed());
        if matches!(&result, Ok(a) if !a.duplicate) {
            self.inner.counters.message_sent();
        }
        result
    }

    /// Starts, renews or stops the actor's typing lease in a conversation.
    pub(crate) fn set_typing(&self, conversation: ConversationId, typing: bool) -> TypingChange {
        let now = self.now();
        let mut leases = self.inner.typing.lock();
        if typing {
            leases.start(conversation, self.user, now)
        } else if leases.is_empty() {
            TypingChange::Unchanged
        } else {
            leases.stop(conversation, self.user, now)
        }
    }

    /// Tells the conversation's other members that the actor started or stopped typing.
    pub(crate) async fn tell_typing(&self, conversation: ConversationId, typing: bool) {
        self.publish(
            Audience::Conversation { conversation },
            Skip::User {
                user: self.user.clone(),
            },
            Event::Typing {
                conversation,
                user: self.user.clone(),
                typing,
            },
        )
        .await;
    }

    /// `user`'s live sessions on this node receive `conversation`'s events from now on
    /// (and this node subscribes to it on the bus if it was not).
    pub(crate) async fn follow(&self, user: &UserId, conversation: ConversationId) {
        self.inner.follow(user, conversation).await;
    }

    /// `user`'s live sessions on this node stop receiving `conversation`'s events.
    pub(crate) async fn unfollow(&self, user: &UserId, conversation: ConversationId) {
        self.inner.unfollow(user, conversation).await;
    }

    /// Which of `users` are online on any node.
    ///
    /// # Errors
    /// `unavailable` when the bus cannot answer.
    pub(crate) async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        self.inner.bus.online(users).await
    }

    /// Every friendship record of the actor, however many (read a page at a time).
    pub(crate) async fn friendships(&self) -> Result<Vec<Friendship>> {
        all_friendships(&self.inner.store, self.user, self.limits().max_list_page).await
    }

    /// Skip the acting session (it gets the reply instead).
    pub(crate) fn skip_me(&self) -> Skip {
        match self.session {
            Some(session) => Skip::Session {
                node: self.inner.node,
                session,
            },
            None => Skip::Nobody,
        }
    }

    /// Delivers an event to its audience on every node, after whatever it reports was
    /// committed.
    pub(crate) async fn publish(&self, audience: Audience, skip: Skip, event: Event) {
        self.inner
            .publish(Delivery {
                audience,
                skip,
                event,
            })
            .await;
    }

    /// Loads a conversation the actor belongs to.
    ///
    /// A missing conversation is `not_found`. A non-member gets `forbidden` for a public
    /// room (it is discoverable) and `not_found` otherwise, so direct conversations and
    /// private rooms do not reveal that they exist.
    pub(crate) async fn member_of(&self, id: ConversationId) -> Result<Conversation> {
        let inner = self.inner;
        let conv = inner
            .store
            .conversation(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("conversation {id}")))?;
        inner
            .kinds
            .remember(id, &conv.kind, inner.limits.kind_cache_max);
        if inner.registry.read().knows_member(self.user, id) {
            return Ok(conv);
        }
        if inner.store.member(id, self.user).await?.is_some() {
            return Ok(conv);
        }
        Err(not_member(&conv))
    }

    /// The kind of a conversation the actor belongs to, without asking the store when
    /// this node already knows both (the hot path of `send`, `typing` and marks). The
    /// same answers as [`Ctx::member_of`] otherwise.
    pub(crate) async fn member_kind(&self, id: ConversationId) -> Result<Arc<ConversationKind>> {
        if self.inner.registry.read().knows_member(self.user, id) {
            if let Some(kind) = self.inner.kinds.get(id) {
                return Ok(kind);
            }
        }
        let conv = self.member_of(id).await?;
        Ok(Arc::new(conv.kind))
    }

    /// A page size: the default when absent; `invalid` when 0 or above `max`.
    pub(crate) fn page(limit: Option<u32>, default: u32, max: u32) -> Result<u32> {
        match limit {
            None => Ok(default.min(max)),
            Some(0) => Err(Error::invalid("limit must be at least 1")),
            Some(n) if n > max => Err(Error::invalid(format!("limit must be at most {max}"))),
            Some(n) => Ok(n),
        }
    }
}

/// The refusal of a send past [`Limits::max_pending_appends`].
fn overloaded(limits: &Limits) -> Error {
    Error::unavailable(
        "the server is overloaded: too many messages are waiting to be stored; \
         retry after the hinted delay",
    )
    .with_retry_after(Duration::from_millis(limits.overload_retry_after_ms))
}

/// The answer to a non-member: see [`Ctx::member_of`].
pub(crate) fn not_member(conv: &Conversation) -> Error {
    match &conv.kind {
        ConversationKind::Room {
            visibility: Visibility::Public,
            ..
        } => Error::forbidden("you are not a member of this room"),
        _ => Error::not_found(format!("conversation {}", conv.id)),
    }
}

/// Every friendship record of `user`, read from the store `page` at a time.
pub(crate) async fn all_friendships(
    store: &Arc<dyn Store>,
    user: &UserId,
    page: u32,
) -> Result<Vec<Friendship>> {
    let page = page.max(1);
    let mut all: Vec<Friendship> = Vec::new();
    loop {
        let after = all.last().map(|f| f.other(user).clone());
        let chunk = store.friendships(user, after.as_ref(), page).await?;
        let full = chunk.len() as u64 == u64::from(page);
        all.extend(chunk);
        if !full {
            return Ok(all);
        }
    }
}
