//! The `Store` port: where conversations, messages, watermarks and friendships live.
//!
//! Every store passes the conformance suite (`chat_core::conformance`, feature
//! `conformance`). Rules about *who* may do what live in the engine; a store only keeps
//! data consistent: gap-free `seq` per conversation, idempotent appends, watermarks that
//! never move back, one direct conversation per pair, friendship changes applied with
//! [`Friendship::apply`] inside one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{ConversationId, Seq, UserId};
use crate::model::{
    Appended, Conversation, FriendAction, Friendship, HistoryPage, Member, Message, NewDirect,
    NewMessage, NewRoom, Role, Watermarks,
};

/// A user's display profile (identity itself belongs to the embedding app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// The user.
    pub user: UserId,
    /// Display name from the token's claims, if any.
    pub display_name: Option<String>,
    /// When they were last online.
    pub last_seen: Option<DateTime<Utc>>,
}

/// One line of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// My role in it.
    pub role: Role,
    /// My watermarks in it.
    pub watermarks: Watermarks,
    /// The newest message (possibly a tombstone).
    pub last_message: Option<Message>,
    /// Messages after my read watermark, sent by others, not deleted.
    pub unread: u64,
}

impl ConversationSummary {
    /// The time used to order the list: the newest message's, else the creation time.
    pub fn last_activity(&self) -> DateTime<Utc> {
        self.last_message
            .as_ref()
            .map_or(self.conversation.created_at, |m| m.created_at)
    }
}

/// Durable storage for the engine.
///
/// # Errors
/// Methods return the engine's portable errors: `not_found` for a missing conversation,
/// member or message, `conflict` for a broken uniqueness rule, `unavailable` when the
/// backing database cannot be reached (the caller may retry), `internal` otherwise.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- users ----

    /// Creates or updates a user's profile (display name from the token's claims).
    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> Result<()>;

    /// A user's profile, if the engine has seen them.
    async fn user(&self, user: &UserId) -> Result<Option<UserProfile>>;

    /// Records when a user went offline (creating the profile if needed).
    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> Result<()>;

    // ---- conversations ----

    /// Creates a room with its creator as owner. `conflict` when the name is taken.
    async fn create_room(&self, room: NewRoom) -> Result<Conversation>;

    /// Returns the direct conversation of the pair, creating it (both as members) if the
    /// pair has none. The flag is true when it was created. Whatever the order of the two
    /// users, a pair has one conversation, even under concurrent calls.
    async fn open_direct(&self, direct: NewDirect) -> Result<(Conversation, bool)>;

    /// A conversation by id.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;

    /// A room by its unique name.
    async fn room_by_name(&self, name: &str) -> Result<Option<Conversation>>;

    /// Deletes a conversation with its members and messages. `not_found` when missing.
    async fn delete_conversation(&self, id: ConversationId) -> Result<()>;

    // ---- members ----

    /// Adds a member. Returns the membership and true when it is new; an existing member
    /// is returned unchanged with false. `conflict` when the conversation already has
    /// `max_members` members; `not_found` when it does not exist.
    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> Result<(Member, bool)>;

    /// Removes a member; true when they were one. `not_found` when the conversation does
    /// not exist.
    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> Result<bool>;

    /// One membership.
    async fn member(&self, conversation: ConversationId, user: &UserId) -> Result<Option<Member>>;

    /// Members ordered by user id (byte order), after `after` (exclusive), at most
    /// `limit`. `not_found` when the conversation does not exist.
    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Member>>;

    /// The ids of the conversations the user is a member of, ordered by id, at most
    /// `limit` (the engine follows at most [`Limits::max_live_conversations`] live).
    ///
    /// [`Limits::max_live_conversations`]: crate::model::Limits::max_live_conversations
    async fn conversations_of(&self, user: &UserId, limit: u32) -> Result<Vec<ConversationId>>;

    /// [`conversations_of`](Store::conversations_of) for several users at once, in the
    /// order of `users` (a user named twice gets two equal lists). The engine coalesces
    /// the session opens of a connect storm into these calls; a store behind a network
    /// answers in one round trip. The default asks for each user in turn.
    async fn conversations_of_many(
        &self,
        users: &[UserId],
        limit: u32,
    ) -> Result<Vec<Vec<ConversationId>>> {
        let mut all = Vec::with_capacity(users.len());
        for user in users {
            all.push(self.conversations_of(user, limit).await?);
        }
        Ok(all)
    }

    /// The user's conversations, most recently active first, at most `limit`.
    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>>;

    // ---- messages ----

    /// Appends a message, assigning the next `seq` in the same transaction, and adds one
    /// to the `reply_count` of its thread root when it has one. When the
    /// message has a client id and (sender, client id) exists, returns the original with
    /// `duplicate: true` and writes nothing — wherever the original is, even in another
    /// conversation: the key is (sender, client id), so a client never has to remember
    /// where a retried send went. Resolves only after the commit is durable.
    /// `not_found` when the conversation does not exist.
    async fn append(&self, message: NewMessage) -> Result<Appended>;

    /// A page of history in ascending seq order, tombstones in place.
    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// A page of one thread in ascending seq order: the message at `root` and every
    /// message whose `thread` is `root`, tombstones in place, paged by seq like
    /// [`Store::history`]. `not_found` when the conversation does not exist.
    async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// One message by position.
    async fn message(&self, conversation: ConversationId, seq: Seq) -> Result<Option<Message>>;

    /// Replaces a message's body. `not_found` when missing, `conflict` when deleted.
    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<Message>;

    /// Turns a message into a tombstone (empty body, no attachments, `deleted_at` set),
    /// and takes one from its thread root's `reply_count` when it is a reply. Deleting a
    /// tombstone returns it unchanged. `not_found` when missing.
    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> Result<Message>;

    // ---- watermarks ----

    /// Moves a member's watermarks forward (see [`Watermarks::advance`]), never back,
    /// clamped to the conversation's last seq. Returns the new watermarks.
    /// `not_found` when the user is not a member.
    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> Result<Watermarks>;

    /// Unread messages of `user` in one conversation. `not_found` when not a member.
    async fn unread(&self, conversation: ConversationId, user: &UserId) -> Result<u64>;

    /// Unread messages of `user` across all conversations.
    async fn unread_total(&self, user: &UserId) -> Result<u64>;

    // ---- friendships ----

    /// The record between two users, if any.
    async fn friendship(&self, x: &UserId, y: &UserId) -> Result<Option<Friendship>>;

    /// Loads the pair's record (or [`Friendship::empty`]), applies `action` by `actor`
    /// with [`Friendship::apply`], and saves the result, all in one transaction.
    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> Result<Friendship>;

    /// The non-empty records involving `user` whose other user's id sorts after `after`
    /// (from the first when `None`), ordered by the other id, at most `limit`: a caller
    /// pages through every record by passing the last other id it got.
    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Friendship>>;

    /// The friends (accepted friendships only) of several users at once, each list
    /// ordered by id and at most `limit` long, in the order of `users`. The engine
    /// coalesces the presence announcements of a connect storm into these calls. The
    /// default pages through [`friendships`](Store::friendships) for each user in turn.
    async fn friends_of_many(&self, users: &[UserId], limit: u32) -> Result<Vec<Vec<UserId>>> {
        let mut all = Vec::with_capacity(users.len());
        for user in users {
            let mut friends = Vec::new();
            let mut after: Option<UserId> = None;
            while (friends.len() as u64) < u64::from(limit) {
                let page = self.friendships(user, after.as_ref(), 1_000).await?;
                let full = page.len() == 1_000;
                after = page.last().map(|f| f.other(user).clone());
                friends.extend(
                    page.iter()
                        .filter(|f| f.is_friends())
                        .map(|f| f.other(user).clone()),
                );
                if !full {
                    break;
                }
            }
            friends.truncate(limit as usize);
            all.push(friends);
        }
        Ok(all)
    }
}
