//! Events the engine pushes to sessions, and how they are addressed.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, NodeId, Seq, SessionId, UserId};
use crate::model::{Conversation, FriendView, Message, Presence, Role};

/// A server-pushed event. Serialized with a `type` tag, e.g. `{"type":"message",…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A new message, after it was committed.
    Message {
        /// The message, with its conversation and seq.
        message: Message,
    },
    /// A message's body changed.
    MessageEdited {
        /// The message as it now is.
        message: Message,
    },
    /// A message became a tombstone.
    MessageDeleted {
        /// The tombstone.
        message: Message,
    },
    /// A member's watermarks moved.
    Receipt {
        /// Where.
        conversation: ConversationId,
        /// Whose watermarks.
        user: UserId,
        /// Their delivered watermark.
        delivered_seq: Seq,
        /// Their read watermark.
        read_seq: Seq,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Where.
        conversation: ConversationId,
        /// Who.
        user: UserId,
        /// Started (true) or stopped (false).
        typing: bool,
    },
    /// A user joined a room (or was invited into it).
    MemberJoined {
        /// The room.
        conversation: ConversationId,
        /// Who joined.
        user: UserId,
        /// Their role.
        role: Role,
    },
    /// A user left a room.
    MemberLeft {
        /// The room.
        conversation: ConversationId,
        /// Who left.
        user: UserId,
    },
    /// You are now a member of this conversation (invited, or a peer opened a direct one).
    ConversationAdded {
        /// The conversation.
        conversation: Conversation,
    },
    /// You are no longer a member of this conversation.
    ConversationRemoved {
        /// The conversation.
        conversation: ConversationId,
    },
    /// A friend or co-member came online or went offline.
    Presence {
        /// Their presence.
        #[serde(flatten)]
        presence: Presence,
    },
    /// Your friendship with someone changed.
    Friend {
        /// How it stands now, from your side.
        friend: FriendView,
    },
    /// Live messages of this conversation may have been lost on the way to this
    /// connection and the server could not make up for them: send `resume` for it (or
    /// page `history` from your `have`). Rare: the server fills gaps from the store by
    /// itself, and sends this only when the store could not be read at that moment.
    ResumeRequired {
        /// The conversation to resume.
        conversation: ConversationId,
    },
}

impl Event {
    /// Durable events must reach the client or the client is cut off (it resumes by seq);
    /// volatile ones (typing, presence) may be dropped under load.
    pub fn is_durable(&self) -> bool {
        !matches!(self, Event::Typing { .. } | Event::Presence { .. })
    }
}

wire_kinds!(Event {
    Message => "message",
    MessageEdited => "message_edited",
    MessageDeleted => "message_deleted",
    Receipt => "receipt",
    Typing => "typing",
    MemberJoined => "member_joined",
    MemberLeft => "member_left",
    ConversationAdded => "conversation_added",
    ConversationRemoved => "conversation_removed",
    Presence => "presence",
    Friend => "friend",
    ResumeRequired => "resume_required",
});

/// Who receives a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Audience {
    /// Every live session of every member of a conversation.
    Conversation {
        /// The conversation.
        conversation: ConversationId,
    },
    /// Every live session of one user.
    User {
        /// The user.
        user: UserId,
    },
    /// Co-members of these conversations and these users, each once, never `subject`.
    Presence {
        /// Whose presence changed (never told about themselves).
        subject: UserId,
        /// Conversations whose members are told.
        conversations: Vec<ConversationId>,
        /// Users told as well (friends).
        users: Vec<UserId>,
    },
}

/// Sessions that must not receive a delivery even though they are in the audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "skip", rename_all = "snake_case")]
pub enum Skip {
    /// Nobody is skipped.
    #[default]
    Nobody,
    /// One session (it got the reply instead).
    Session {
        /// Its node.
        node: NodeId,
        /// The session.
        session: SessionId,
    },
    /// Every session of one user (typing, receipts: the others are told).
    User {
        /// The user.
        user: UserId,
    },
}

/// An event with its audience: what nodes exchange over the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Who receives it.
    pub audience: Audience,
    /// Who does not.
    #[serde(default)]
    pub skip: Skip,
    /// What.
    pub event: Event,
}
