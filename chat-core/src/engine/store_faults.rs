//! Every store call the engine makes goes through [`ObservedStore`]: each error is counted
//! by kind, and an outage is logged when it starts, at most once per interval while it
//! lasts, and when it ends.
//!
//! The builder wraps the store it is given, so handlers, presence, the admin calls and
//! [`Engine::store`](super::Engine::store) all share one count and one log. The log's
//! rate limit reads the injected clock, so tests drive it deterministically.
//!
//! A fault is an `unavailable` or `internal` error: the store could not answer. Other
//! kinds (`not_found`, `conflict`, `invalid`) are answers to the request; they are counted
//! but neither start nor prolong an outage, and, being answers, end one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::stats::Counters;
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{ConversationId, Seq, UserId};
use crate::model::{
    Appended, Conversation, FriendAction, Friendship, HistoryPage, Member, Message, NewDirect,
    NewMessage, NewRoom, Role, Watermarks,
};
use crate::ports::{Clock, ConversationSummary, Store, UserProfile};

/// True for the kinds that mean the store could not answer.
fn is_fault(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Unavailable | ErrorCode::Internal)
}

/// An outage in progress.
#[derive(Debug)]
struct Outage {
    /// When its first failure happened.
    since: DateTime<Utc>,
    /// When its last line was written.
    logged_at: DateTime<Utc>,
    /// Failures since it began.
    failures: u64,
    /// Failures since the last line.
    suppressed: u64,
    /// The latest failure, named in the recovery line.
    last: Error,
}

/// The counting and the outage log, shared by the wrapper and the engine.
pub(crate) struct StoreFaults {
    clock: Arc<dyn Clock>,
    counters: Arc<Counters>,
    log_every: Duration,
    /// Mirrors `outage.is_some()`, so that a call succeeding in good times takes no lock.
    failing: AtomicBool,
    outage: Mutex<Option<Outage>>,
}

impl StoreFaults {
    pub(crate) fn new(clock: Arc<dyn Clock>, counters: Arc<Counters>, log_every: Duration) -> Self {
        StoreFaults {
            clock,
            counters,
            log_every,
            failing: AtomicBool::new(false),
            outage: Mutex::new(None),
        }
    }

    /// Counts and logs the outcome of one store call.
    fn observe<T>(&self, operation: &'static str, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => {
                if self.failing.load(Ordering::Acquire) {
                    self.answered(operation);
                }
            }
            Err(e) => {
                self.counters.store_error(e.code());
                if is_fault(e.code()) {
                    self.failed(operation, e);
                } else if self.failing.load(Ordering::Acquire) {
                    self.answered(operation);
                }
            }
        }
        result
    }

    fn failed(&self, operation: &'static str, e: &Error) {
        let now = self.clock.now();
        let mut outage = self.outage.lock();
        match &mut *outage {
            None => {
                tracing::error!(
                    error = e as &dyn std::error::Error,
                    code = %e.code(),
                    operation,
                    "store call failed; until it recovers, failures are logged at most once \
                     every {:?}",
                    self.log_every
                );
                *outage = Some(Outage {
                    since: now,
                    logged_at: now,
                    failures: 1,
                    suppressed: 0,
                    last: e.clone(),
                });
                self.failing.store(true, Ordering::Release);
            }
            Some(o) => {
                o.failures += 1;
                o.last = e.clone();
                let quiet_for = (now - o.logged_at).to_std().unwrap_or_default();
                if quiet_for >= self.log_every {
                    tracing::error!(
                        error = e as &dyn std::error::Error,
                        code = %e.code(),
                        operation,
                        failures = o.failures,
                        suppressed = o.suppressed,
                        outage_ms = millis(now - o.since),
                        "store still failing"
                    );
                    o.logged_at = now;
                    o.suppressed = 0;
                } else {
                    o.suppressed += 1;
                }
            }
        }
    }

    fn answered(&self, operation: &'static str) {
        let now = self.clock.now();
        let Some(o) = self.outage.lock().take() else {
            return; // another call saw the recovery first
        };
        self.failing.store(false, Ordering::Release);
        tracing::info!(
            last_error = &o.last as &dyn std::error::Error,
            operation,
            failures = o.failures,
            outage_ms = millis(now - o.since),
            "store recovered"
        );
    }
}

fn millis(d: chrono::Duration) -> i64 {
    d.num_milliseconds().max(0)
}

/// The engine's view of the store: the embedder's store, observed.
pub(crate) struct ObservedStore {
    inner: Arc<dyn Store>,
    faults: StoreFaults,
}

impl ObservedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, faults: StoreFaults) -> Self {
        ObservedStore { inner, faults }
    }
}

/// `observe!(self, name(args…))`: calls the inner store's `name` and observes the result.
macro_rules! observe {
    ($self:ident, $name:ident($($arg:expr),*)) => {
        $self
            .faults
            .observe(stringify!($name), $self.inner.$name($($arg),*).await)
    };
}

#[async_trait]
impl Store for ObservedStore {
    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> Result<()> {
        observe!(self, upsert_user(user, display_name))
    }

    async fn user(&self, user: &UserId) -> Result<Option<UserProfile>> {
        observe!(self, user(user))
    }

    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> Result<()> {
        observe!(self, set_last_seen(user, at))
    }

    async fn create_room(&self, room: NewRoom) -> Result<Conversation> {
        observe!(self, create_room(room))
    }

    async fn open_direct(&self, direct: NewDirect) -> Result<(Conversation, bool)> {
        observe!(self, open_direct(direct))
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        observe!(self, conversation(id))
    }

    async fn room_by_name(&self, name: &str) -> Result<Option<Conversation>> {
        observe!(self, room_by_name(name))
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        observe!(self, delete_conversation(id))
    }

    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> Result<(Member, bool)> {
        observe!(
            self,
            add_member(conversation, user, role, joined_at, max_members)
        )
    }

    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> Result<bool> {
        observe!(self, remove_member(conversation, user))
    }

    async fn member(&self, conversation: ConversationId, user: &UserId) -> Result<Option<Member>> {
        observe!(self, member(conversation, user))
    }

    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Member>> {
        observe!(self, members(conversation, after, limit))
    }

    async fn conversations_of(&self, user: &UserId, limit: u32) -> Result<Vec<ConversationId>> {
        observe!(self, conversations_of(user, limit))
    }

    async fn conversations_of_many(
        &self,
        users: &[UserId],
        limit: u32,
    ) -> Result<Vec<Vec<ConversationId>>> {
        observe!(self, conversations_of_many(users, limit))
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>> {
        observe!(self, list_conversations(user, limit))
    }

    async fn append(&self, message: NewMessage) -> Result<Appended> {
        observe!(self, append(message))
    }

    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>> {
        observe!(self, history(conversation, page, limit))
    }

    async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>> {
        observe!(self, thread(conversation, root, page, limit))
    }

    async fn message(&self, conversation: ConversationId, seq: Seq) -> Result<Option<Message>> {
        observe!(self, message(conversation, seq))
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        observe!(self, edit_message(conversation, seq, body, at))
    }

    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        observe!(self, delete_message(conversation, seq, at))
    }

    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> Result<Watermarks> {
        observe!(
            self,
            advance_watermarks(conversation, user, delivered, read)
        )
    }

    async fn unread(&self, conversation: ConversationId, user: &UserId) -> Result<u64> {
        observe!(self, unread(conversation, user))
    }

    async fn unread_total(&self, user: &UserId) -> Result<u64> {
        observe!(self, unread_total(user))
    }

    async fn friendship(&self, x: &UserId, y: &UserId) -> Result<Option<Friendship>> {
        observe!(self, friendship(x, y))
    }

    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> Result<Friendship> {
        observe!(self, apply_friendship(actor, other, action, at))
    }

    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Friendship>> {
        observe!(self, friendships(user, after, limit))
    }

    async fn friends_of_many(&self, users: &[UserId], limit: u32) -> Result<Vec<Vec<UserId>>> {
        observe!(self, friends_of_many(users, limit))
    }
}
