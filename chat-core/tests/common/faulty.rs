//! [`FaultyStore`]: the memory store behind switches a test flips: every call fails with a
//! chosen kind (with a driver-like cause), and appends can be held until released.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chat_core::ids::{ConversationId, Seq, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::{
    Appended, Conversation, FriendAction, Friendship, HistoryPage, Member, Message, NewDirect,
    NewMessage, NewRoom, Role, Watermarks,
};
use chat_core::ports::{ConversationSummary, Store, UserProfile};
use chat_core::{Error, ErrorCode, Result};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::watch;

/// A [`MemoryStore`] that fails or stalls on demand.
#[derive(Debug)]
pub(crate) struct FaultyStore {
    pub inner: MemoryStore,
    failing: Mutex<Option<ErrorCode>>,
    /// Calls that failed because of [`FaultyStore::fail`].
    pub failed: AtomicUsize,
    /// Appends that reached the store (held or not).
    pub appends_started: AtomicUsize,
    hold: watch::Sender<bool>,
}

impl FaultyStore {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(FaultyStore {
            inner: MemoryStore::new(),
            failing: Mutex::new(None),
            failed: AtomicUsize::new(0),
            appends_started: AtomicUsize::new(0),
            hold: watch::Sender::new(false),
        })
    }

    /// From now on every call fails with `code` (`None`: calls work again). The error's
    /// cause is an I/O error, "connection refused", as a driver's would be.
    pub(crate) fn fail(&self, code: Option<ErrorCode>) {
        *self.failing.lock() = code;
    }

    /// Appends wait (after they reach the store, before they write) until released.
    pub(crate) fn hold_appends(&self) {
        self.hold.send_replace(true);
    }

    /// Lets held appends (and later ones) through.
    pub(crate) fn release_appends(&self) {
        self.hold.send_replace(false);
    }

    fn check(&self) -> Result<()> {
        match *self.failing.lock() {
            None => Ok(()),
            Some(code) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                let io = std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                );
                Err(Error::new(code, "the database is gone").with_source(io))
            }
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> Result<()> {
        self.check()?;
        self.inner.upsert_user(user, display_name).await
    }
    async fn user(&self, user: &UserId) -> Result<Option<UserProfile>> {
        self.check()?;
        self.inner.user(user).await
    }
    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> Result<()> {
        self.check()?;
        self.inner.set_last_seen(user, at).await
    }
    async fn create_room(&self, room: NewRoom) -> Result<Conversation> {
        self.check()?;
        self.inner.create_room(room).await
    }
    async fn open_direct(&self, direct: NewDirect) -> Result<(Conversation, bool)> {
        self.check()?;
        self.inner.open_direct(direct).await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.check()?;
        self.inner.conversation(id).await
    }
    async fn room_by_name(&self, name: &str) -> Result<Option<Conversation>> {
        self.check()?;
        self.inner.room_by_name(name).await
    }
    async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        self.check()?;
        self.inner.delete_conversation(id).await
    }
    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> Result<(Member, bool)> {
        self.check()?;
        self.inner
            .add_member(conversation, user, role, joined_at, max_members)
            .await
    }
    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> Result<bool> {
        self.check()?;
        self.inner.remove_member(conversation, user).await
    }
    async fn member(&self, conversation: ConversationId, user: &UserId) -> Result<Option<Member>> {
        self.check()?;
        self.inner.member(conversation, user).await
    }
    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Member>> {
        self.check()?;
        self.inner.members(conversation, after, limit).await
    }
    async fn conversations_of(&self, user: &UserId, limit: u32) -> Result<Vec<ConversationId>> {
        self.check()?;
        self.inner.conversations_of(user, limit).await
    }
    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>> {
        self.check()?;
        self.inner.list_conversations(user, limit).await
    }
    async fn append(&self, message: NewMessage) -> Result<Appended> {
        self.check()?;
        self.appends_started.fetch_add(1, Ordering::SeqCst);
        let mut held = self.hold.subscribe();
        // Err only when the sender is gone, which cannot happen while `self` lives.
        let _ = held.wait_for(|on| !*on).await;
        self.inner.append(message).await
    }
    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>> {
        self.check()?;
        self.inner.history(conversation, page, limit).await
    }
    async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>> {
        self.check()?;
        self.inner.thread(conversation, root, page, limit).await
    }
    async fn message(&self, conversation: ConversationId, seq: Seq) -> Result<Option<Message>> {
        self.check()?;
        self.inner.message(conversation, seq).await
    }
    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        self.check()?;
        self.inner.edit_message(conversation, seq, body, at).await
    }
    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        self.check()?;
        self.inner.delete_message(conversation, seq, at).await
    }
    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> Result<Watermarks> {
        self.check()?;
        self.inner
            .advance_watermarks(conversation, user, delivered, read)
            .await
    }
    async fn unread(&self, conversation: ConversationId, user: &UserId) -> Result<u64> {
        self.check()?;
        self.inner.unread(conversation, user).await
    }
    async fn unread_total(&self, user: &UserId) -> Result<u64> {
        self.check()?;
        self.inner.unread_total(user).await
    }
    async fn friendship(&self, x: &UserId, y: &UserId) -> Result<Option<Friendship>> {
        self.check()?;
        self.inner.friendship(x, y).await
    }
    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> Result<Friendship> {
        self.check()?;
        self.inner.apply_friendship(actor, other, action, at).await
    }
    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Friendship>> {
        self.check()?;
        self.inner.friendships(user, after, limit).await
    }
}
