//! [`SqliteStore`]: the `Store` implementation.
//!
//! Writes run on the writer thread (`crate::writer`), reads on the read pool
//! (`crate::pool`). The `impl Store` below says which each method is, and hands the work
//! to the module of its section of the trait, where the statements are plain functions
//! over a connection:
//!
//! - `open`: [`SqliteStore::open`] — checks the path, migrates, starts writer and pool;
//! - `users`, `conversations`, `members`, `messages`, `watermarks`, `friendships`: one
//!   module per section of [`Store`];
//! - `shared`: the existence check and the member insert that several sections use.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chat_core::model::{
    direct_pair, Appended, Conversation, FriendAction, Friendship, HistoryPage, Member, Message,
    NewDirect, NewMessage, NewRoom, Role, Watermarks,
};
use chat_core::ports::{ConversationSummary, Store, UserProfile};
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, Seq, UserId};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::pool::ReadPool;
use crate::row::trunc;
use crate::writer::{self, Ctx, Job};

mod conversations;
mod friendships;
mod members;
mod messages;
mod open;
mod shared;
mod users;
mod watermarks;

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the
/// writer after it has committed what was queued.
pub struct SqliteStore {
    writes: mpsc::Sender<Job>,
    reads: Arc<ReadPool>,
    /// Keeps an in-memory database alive for as long as the store.
    _keep: Option<Arc<Mutex<Connection>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Runs `f` on the writer thread, inside its batch transaction; resolves after the
    /// commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> CoreResult<T> + Send + 'static,
    ) -> CoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(writer::job(f, tx))
            .await
            .map_err(|_| CoreError::unavailable("the sqlite writer has stopped"))?;
        rx.await
            .map_err(|_| CoreError::unavailable("the sqlite writer has stopped"))?
    }

    /// Runs `f` on a read connection of the pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> CoreResult<T> + Send + 'static,
    ) -> CoreResult<T> {
        self.reads.read(f).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    // ---- users ----

    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> CoreResult<()> {
        let (user, name) = (user.clone(), display_name.map(str::to_owned));
        self.write(move |ctx| users::upsert(ctx.conn, &user, name.as_deref()))
            .await
    }

    async fn user(&self, user: &UserId) -> CoreResult<Option<UserProfile>> {
        let user = user.clone();
        self.read(move |conn| users::load(conn, user)).await
    }

    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> CoreResult<()> {
        let user = user.clone();
        self.write(move |ctx| users::set_last_seen(ctx.conn, &user, at))
            .await
    }

    // ---- conversations ----

    async fn create_room(&self, room: NewRoom) -> CoreResult<Conversation> {
        self.write(move |ctx| conversations::create_room(ctx, room))
            .await
    }

    async fn open_direct(&self, d: NewDirect) -> CoreResult<(Conversation, bool)> {
        let pair = direct_pair(&d.user, &d.peer)?;
        self.write(move |ctx| conversations::open_direct(ctx, d, pair))
            .await
    }

    async fn conversation(&self, id: ConversationId) -> CoreResult<Option<Conversation>> {
        self.read(move |conn| conversations::load(conn, id)).await
    }

    async fn room_by_name(&self, name: &str) -> CoreResult<Option<Conversation>> {
        let name = name.to_owned();
        self.read(move |conn| conversations::room_by_name(conn, &name))
            .await
    }

    async fn delete_conversation(&self, id: ConversationId) -> CoreResult<()> {
        self.write(move |ctx| conversations::delete(ctx, id)).await
    }

    // ---- members ----

    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> CoreResult<(Member, bool)> {
        let user = user.clone();
        self.write(move |ctx| members::add(ctx, conversation, &user, role, joined_at, max_members))
            .await
    }

    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> CoreResult<bool> {
        let user = user.clone();
        self.write(move |ctx| members::remove(ctx, conversation, &user))
            .await
    }

    async fn member(
        &self,
        conversation: ConversationId,
        user: &UserId,
    ) -> CoreResult<Option<Member>> {
        let user = user.clone();
        self.read(move |conn| members::load(conn, conversation, &user))
            .await
    }

    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Member>> {
        // "" sorts before every user id (they are never empty).
        let after = after.map_or_else(String::new, |u| u.as_str().to_owned());
        self.read(move |conn| members::page(conn, conversation, &after, limit))
            .await
    }

    async fn conversations_of(&self, user: &UserId, limit: u32) -> CoreResult<Vec<ConversationId>> {
        let user = user.clone();
        self.read(move |conn| members::conversations_of(conn, &user, limit))
            .await
    }

    async fn conversations_of_many(
        &self,
        users: &[UserId],
        limit: u32,
    ) -> CoreResult<Vec<Vec<ConversationId>>> {
        // One trip to a reader thread for all of them.
        let users = users.to_vec();
        self.read(move |conn| members::conversations_of_many(conn, &users, limit))
            .await
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> CoreResult<Vec<ConversationSummary>> {
        let user = user.clone();
        self.read(move |conn| members::list(conn, &user, limit))
            .await
    }

    // ---- messages ----

    async fn append(&self, message: NewMessage) -> CoreResult<Appended> {
        self.write(move |ctx| messages::append(ctx, message)).await
    }

    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> CoreResult<Vec<Message>> {
        self.read(move |conn| messages::history(conn, conversation, page, limit))
            .await
    }

    async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: HistoryPage,
        limit: u32,
    ) -> CoreResult<Vec<Message>> {
        self.read(move |conn| messages::thread(conn, conversation, root, page, limit))
            .await
    }

    async fn message(&self, conversation: ConversationId, seq: Seq) -> CoreResult<Option<Message>> {
        self.read(move |conn| messages::load(conn, conversation, seq))
            .await
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        let body = body.to_owned();
        self.write(move |ctx| messages::edit(ctx, conversation, seq, body, at))
            .await
    }

    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        self.write(move |ctx| messages::delete(ctx, conversation, seq, at))
            .await
    }

    // ---- watermarks ----

    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> CoreResult<Watermarks> {
        let user = user.clone();
        self.write(move |ctx| watermarks::advance(ctx, conversation, &user, delivered, read))
            .await
    }

    async fn unread(&self, conversation: ConversationId, user: &UserId) -> CoreResult<u64> {
        let user = user.clone();
        self.read(move |conn| watermarks::unread(conn, conversation, &user))
            .await
    }

    async fn unread_total(&self, user: &UserId) -> CoreResult<u64> {
        let user = user.clone();
        self.read(move |conn| watermarks::unread_total(conn, &user))
            .await
    }

    // ---- friendships ----

    async fn friendship(&self, x: &UserId, y: &UserId) -> CoreResult<Option<Friendship>> {
        let (a, b) = direct_pair(x, y)?;
        self.read(move |conn| friendships::load(conn, &a, &b)).await
    }

    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> CoreResult<Friendship> {
        let pair = direct_pair(actor, other)?;
        let (actor, at) = (actor.clone(), trunc(at));
        self.write(move |ctx| friendships::apply(ctx, pair, &actor, action, at))
            .await
    }

    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Friendship>> {
        let user = user.clone();
        let after = after.map(|a| a.as_str().to_owned()).unwrap_or_default();
        self.read(move |conn| friendships::list(conn, &user, &after, limit))
            .await
    }

    async fn friends_of_many(&self, users: &[UserId], limit: u32) -> CoreResult<Vec<Vec<UserId>>> {
        let users = users.to_vec();
        self.read(move |conn| friendships::friends_of_many(conn, &users, limit))
            .await
    }
}
