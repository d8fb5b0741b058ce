//! Commands and their replies, one handler file per command.
//!
//! Handlers take typed input (no parsing here) and a [`Ctx`]: who is acting and from
//! which session. Rules about who may do what live in these handlers and the
//! [`Policy`](crate::ports::Policy) (invariant 9).

mod context;
mod conversations;
mod create_room;
mod delete;
mod edit;
mod friend;
mod friends;
mod history;
mod invite;
mod join;
mod leave;
mod mark;
mod members;
mod online_friends;
mod open_direct;
mod resume;
mod send;
mod typing;
mod unread;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{Audience, Event, Skip};
use crate::ids::{ConversationId, Seq, UserId};
use crate::model::{
    Attachment, Conversation, FriendAction, FriendView, Member, Message, MessageStatus, RoomRef,
    Visibility, Watermarks,
};
use crate::ports::{ConversationSummary, Credential};

pub(crate) use context::{not_member, Ctx};

pub use resume::{ResumeOutcome, ResumePoint, ResumeResult};

/// A command from a client. Serialized with a `type` tag, e.g.
/// `{"type":"send","conversation":"…","body":"hi"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Command {
    /// Create a room; the creator becomes its owner.
    CreateRoom {
        /// Unique name.
        name: String,
        /// Public (default) or private.
        #[serde(default)]
        visibility: Visibility,
    },
    /// Join a room by id or name.
    Join {
        /// The room.
        room: RoomRef,
        /// Create a public room of that name when none exists.
        #[serde(default)]
        create: bool,
    },
    /// Leave a room.
    Leave {
        /// The room.
        conversation: ConversationId,
    },
    /// Add a user to a room (owners only for private rooms).
    Invite {
        /// The room.
        conversation: ConversationId,
        /// Who to add.
        user: UserId,
    },
    /// Open (or get) the direct conversation with a user.
    OpenDirect {
        /// The other user.
        user: UserId,
    },
    /// Send a message.
    Send {
        /// Where.
        conversation: ConversationId,
        /// The text.
        body: String,
        /// An idempotency key: a retry with the same key returns the original message.
        #[serde(default)]
        client_id: Option<String>,
        /// The seq of the message this one replies to, in the same conversation.
        #[serde(default)]
        reply_to: Option<Seq>,
        /// Files attached by reference (at most `Limits::max_attachments`). With at least
        /// one, the body may be empty.
        #[serde(default)]
        attachments: Vec<Attachment>,
    },
    /// Edit one of your messages.
    Edit {
        /// Where.
        conversation: ConversationId,
        /// Which message.
        seq: Seq,
        /// The new text.
        body: String,
    },
    /// Delete one of your messages (it becomes a tombstone).
    Delete {
        /// Where.
        conversation: ConversationId,
        /// Which message.
        seq: Seq,
    },
    /// Read a page of history.
    History {
        /// Where.
        conversation: ConversationId,
        /// Messages before this seq (the newest when neither bound is given).
        #[serde(default)]
        before: Option<Seq>,
        /// Messages after this seq.
        #[serde(default)]
        after: Option<Seq>,
        /// Page size (default 50, at most the configured maximum, 100 by default).
        #[serde(default)]
        limit: Option<u32>,
        /// Read one thread instead of the whole log: the root at this seq and its replies.
        #[serde(default)]
        thread: Option<Seq>,
    },
    /// Everything up to `seq` reached this device.
    MarkDelivered {
        /// Where.
        conversation: ConversationId,
        /// Up to which seq.
        seq: Seq,
    },
    /// Everything up to `seq` was read.
    MarkRead {
        /// Where.
        conversation: ConversationId,
        /// Up to which seq.
        seq: Seq,
    },
    /// Started or stopped typing.
    Typing {
        /// Where.
        conversation: ConversationId,
        /// True while typing (renew before the lease ends), false to stop.
        typing: bool,
    },
    /// List my conversations, most recently active first.
    ListConversations {
        /// At most this many (default 50).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Members of a conversation I belong to.
    Members {
        /// Where.
        conversation: ConversationId,
        /// Members after this user id (paging).
        #[serde(default)]
        after: Option<UserId>,
        /// At most this many (default 100).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// My unread count over all conversations.
    UnreadTotal {},
    /// Which of my friends are online.
    OnlineFriends {},
    /// Ask a user to be friends.
    FriendRequest {
        /// Whom.
        user: UserId,
    },
    /// Accept a user's friend request.
    FriendAccept {
        /// Whose.
        user: UserId,
    },
    /// Decline a user's friend request.
    FriendDecline {
        /// Whose.
        user: UserId,
    },
    /// Withdraw my friend request.
    FriendCancel {
        /// To whom.
        user: UserId,
    },
    /// End a friendship.
    FriendRemove {
        /// With whom.
        user: UserId,
    },
    /// Block a user.
    Block {
        /// Whom.
        user: UserId,
    },
    /// Lift my block.
    Unblock {
        /// Whom.
        user: UserId,
    },
    /// My friends, requests and blocks.
    ListFriends {},
    /// After a reconnect: per conversation, the highest seq up to which I hold every
    /// message. The reply holds what I missed, or says I am too far behind.
    Resume {
        /// Where I stand.
        conversations: Vec<ResumePoint>,
    },
    /// A newer credential for this connection, before the one it opened with expires.
    ///
    /// Handled by the transport that holds the connection (it authenticated it and ends
    /// it when the credential expires), never by the engine: one that reaches the engine
    /// is `invalid`.
    RefreshToken {
        /// The new credential; it must be for the same user.
        token: Credential,
    },
}

wire_kinds!(Command {
    CreateRoom => "create_room",
    Join => "join",
    Leave => "leave",
    Invite => "invite",
    OpenDirect => "open_direct",
    Send => "send",
    Edit => "edit",
    Delete => "delete",
    History => "history",
    MarkDelivered => "mark_delivered",
    MarkRead => "mark_read",
    Typing => "typing",
    ListConversations => "list_conversations",
    Members => "members",
    UnreadTotal => "unread_total",
    OnlineFriends => "online_friends",
    FriendRequest => "friend_request",
    FriendAccept => "friend_accept",
    FriendDecline => "friend_decline",
    FriendCancel => "friend_cancel",
    FriendRemove => "friend_remove",
    Block => "block",
    Unblock => "unblock",
    ListFriends => "list_friends",
    Resume => "resume",
    RefreshToken => "refresh_token",
});

/// A message with its status as seen by its sender (when the engine derived it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    /// The message.
    #[serde(flatten)]
    pub message: Message,
    /// Sent, delivered or read by every other member; absent for rooms too large to
    /// derive it cheaply (clients derive it from receipts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MessageStatus>,
}

/// One member's watermarks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberMarks {
    /// Whose.
    pub user: UserId,
    /// Their watermarks.
    #[serde(flatten)]
    pub watermarks: Watermarks,
}

/// The answer to a command. Serialized with a `type` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// A room (created, joined).
    Room {
        /// The room.
        conversation: Conversation,
        /// True when this command made me a member (false when I already was).
        joined: bool,
    },
    /// A direct conversation.
    Direct {
        /// The conversation.
        conversation: Conversation,
        /// True when it was created by this command.
        created: bool,
    },
    /// A message was stored (or a retry found the original).
    Sent {
        /// The message, with its seq.
        message: Message,
        /// True when this was a retry of an earlier send.
        duplicate: bool,
    },
    /// A message as it now is (edited or deleted).
    Message {
        /// The message.
        message: Message,
    },
    /// A page of history.
    History {
        /// Where.
        conversation: ConversationId,
        /// Ascending by seq.
        messages: Vec<MessageView>,
        /// The conversation's newest seq.
        last_seq: Seq,
        /// Every member's watermarks, for rooms small enough (otherwise empty).
        members: Vec<MemberMarks>,
    },
    /// My watermarks after a mark.
    Marks {
        /// Where.
        conversation: ConversationId,
        /// Mine.
        #[serde(flatten)]
        watermarks: Watermarks,
    },
    /// My conversations.
    Conversations {
        /// Most recently active first.
        conversations: Vec<ConversationSummary>,
    },
    /// Members of a conversation.
    Members {
        /// Ordered by user id.
        members: Vec<Member>,
    },
    /// My unread total.
    Unread {
        /// Messages.
        unread: u64,
    },
    /// Users who are online.
    Online {
        /// Who.
        users: Vec<UserId>,
    },
    /// A friendship as it now stands.
    Friend {
        /// From my side.
        friend: FriendView,
    },
    /// My friends, requests and blocks.
    Friends {
        /// Ordered by user id.
        friends: Vec<FriendView>,
    },
    /// What I missed.
    Resumed {
        /// One entry per conversation asked about.
        conversations: Vec<ResumeResult>,
    },
    /// The connection now runs on the new credential.
    TokenRefreshed {
        /// When the new credential expires (and the connection with it, unless refreshed
        /// again); absent when it does not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
    },
    /// Done; nothing to report.
    Ok,
}

wire_kinds!(Reply {
    Room => "room",
    Direct => "direct",
    Sent => "sent",
    Message => "message",
    History => "history",
    Marks => "marks",
    Conversations => "conversations",
    Members => "members",
    Unread => "unread",
    Online => "online",
    Friend => "friend",
    Friends => "friends",
    Resumed => "resumed",
    TokenRefreshed => "token_refreshed",
    Ok => "ok",
});

/// Runs one command.
pub(crate) async fn run(ctx: &Ctx<'_>, command: Command) -> Result<Reply> {
    match command {
        Command::CreateRoom { name, visibility } => create_room::run(ctx, name, visibility).await,
        Command::Join { room, create } => join::run(ctx, room, create).await,
        Command::Leave { conversation } => leave::run(ctx, conversation).await,
        Command::Invite { conversation, user } => invite::run(ctx, conversation, user).await,
        Command::OpenDirect { user } => open_direct::run(ctx, user).await,
        Command::Send {
            conversation,
            body,
            client_id,
            reply_to,
            attachments,
        } => {
            send::run(
                ctx,
                send::Input {
                    conversation,
                    body,
                    client_id,
                    reply_to,
                    attachments,
                },
            )
            .await
        }
        Command::Edit {
            conversation,
            seq,
            body,
        } => edit::run(ctx, conversation, seq, body).await,
        Command::Delete { conversation, seq } => delete::run(ctx, conversation, seq).await,
        Command::History {
            conversation,
            before,
            after,
            limit,
            thread,
        } => history::run(ctx, conversation, before, after, limit, thread).await,
        Command::MarkDelivered { conversation, seq } => {
            mark::run(ctx, conversation, Some(seq), None).await
        }
        Command::MarkRead { conversation, seq } => {
            mark::run(ctx, conversation, None, Some(seq)).await
        }
        Command::Typing {
            conversation,
            typing,
        } => typing::run(ctx, conversation, typing).await,
        Command::ListConversations { limit } => conversations::run(ctx, limit).await,
        Command::Members {
            conversation,
            after,
            limit,
        } => members::run(ctx, conversation, after, limit).await,
        Command::UnreadTotal {} => unread::run(ctx).await,
        Command::OnlineFriends {} => online_friends::run(ctx).await,
        Command::FriendRequest { user } => friend::run(ctx, user, FriendAction::Request).await,
        Command::FriendAccept { user } => friend::run(ctx, user, FriendAction::Accept).await,
        Command::FriendDecline { user } => friend::run(ctx, user, FriendAction::Decline).await,
        Command::FriendCancel { user } => friend::run(ctx, user, FriendAction::Cancel).await,
        Command::FriendRemove { user } => friend::run(ctx, user, FriendAction::Remove).await,
        Command::Block { user } => friend::run(ctx, user, FriendAction::Block).await,
        Command::Unblock { user } => friend::run(ctx, user, FriendAction::Unblock).await,
        Command::ListFriends {} => friends::run(ctx).await,
        Command::Resume { conversations } => resume::run(ctx, conversations).await,
        Command::RefreshToken { .. } => Err(Error::invalid(
            "`refresh_token` is answered by the transport that holds the connection",
        )),
    }
}
