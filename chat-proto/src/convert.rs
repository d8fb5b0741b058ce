//! Between the engine's types and the protobuf messages: requests into [`Command`]s,
//! [`Reply`]s and [`Event`]s into messages, and messages and attachments both ways (a
//! client reads [`proto::Message`]s back into [`Message`]s with `TryFrom`). No I/O, no
//! policy: a request that does not parse is `invalid`, as a bad frame is in protocol v1;
//! attachments and replies are checked by the engine, not here.

use std::str::FromStr;

use chat_core::engine::{MemberMarks, MessageView, ResumeOutcome, ResumePoint, ResumeResult};
use chat_core::model::{
    Attachment, Conversation, ConversationKind, FriendStatus, FriendView, Member, Message,
    MessageKind, MessageStatus, Presence, Role, RoomRef, Visibility,
};
use chat_core::ports::{ConversationSummary, Credential};
use chat_core::{Command, ConversationId, Error, Event, MessageId, Reply, Result, UserId};
use chrono::{DateTime, Utc};

use crate::proto;
use crate::proto::client_frame::Command as Cmd;

// ---------------------------------------------------------------------------------------
// Requests → commands

/// A conversation id as a request gives it.
///
/// # Errors
/// `invalid` when it is not one.
pub fn conversation_id(s: &str) -> Result<ConversationId> {
    ConversationId::from_str(s)
}

/// A user id as a request gives it.
///
/// # Errors
/// `invalid` when it is not one.
pub fn user_id(s: &str) -> Result<UserId> {
    UserId::new(s)
}

fn visibility(v: i32) -> Result<Visibility> {
    match proto::Visibility::try_from(v) {
        Ok(proto::Visibility::Unspecified | proto::Visibility::Public) => Ok(Visibility::Public),
        Ok(proto::Visibility::Private) => Ok(Visibility::Private),
        Err(_) => Err(Error::invalid(format!("unknown visibility {v}"))),
    }
}

/// A request message that is one command.
pub trait IntoCommand {
    /// The command it stands for.
    fn into_command(self) -> Result<Command>;
}

impl IntoCommand for proto::CreateRoomRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::CreateRoom {
            visibility: visibility(self.visibility)?,
            name: self.name,
        })
    }
}

impl IntoCommand for proto::JoinRequest {
    fn into_command(self) -> Result<Command> {
        if self.room.is_empty() {
            return Err(Error::invalid("`room` is a room id or name"));
        }
        Ok(Command::Join {
            room: RoomRef::from(self.room),
            create: self.create,
        })
    }
}

impl IntoCommand for proto::LeaveRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Leave {
            conversation: conversation_id(&self.conversation)?,
        })
    }
}

impl IntoCommand for proto::InviteRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Invite {
            conversation: conversation_id(&self.conversation)?,
            user: user_id(&self.user)?,
        })
    }
}

impl IntoCommand for proto::OpenDirectRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::OpenDirect {
            user: user_id(&self.user)?,
        })
    }
}

impl IntoCommand for proto::SendRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Send {
            conversation: conversation_id(&self.conversation)?,
            body: self.body,
            client_id: self.client_id,
            reply_to: self.reply_to,
            attachments: self.attachments.into_iter().map(Attachment::from).collect(),
        })
    }
}

impl IntoCommand for proto::EditRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Edit {
            conversation: conversation_id(&self.conversation)?,
            seq: self.seq,
            body: self.body,
        })
    }
}

impl IntoCommand for proto::DeleteRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Delete {
            conversation: conversation_id(&self.conversation)?,
            seq: self.seq,
        })
    }
}

impl IntoCommand for proto::HistoryRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::History {
            conversation: conversation_id(&self.conversation)?,
            before: self.before,
            after: self.after,
            limit: self.limit,
            thread: self.thread,
        })
    }
}

impl IntoCommand for proto::TypingRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Typing {
            conversation: conversation_id(&self.conversation)?,
            typing: self.typing,
        })
    }
}

impl IntoCommand for proto::ListConversationsRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::ListConversations { limit: self.limit })
    }
}

impl IntoCommand for proto::MembersRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::Members {
            conversation: conversation_id(&self.conversation)?,
            after: self.after.as_deref().map(user_id).transpose()?,
            limit: self.limit,
        })
    }
}

impl IntoCommand for proto::UnreadTotalRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::UnreadTotal {})
    }
}

impl IntoCommand for proto::OnlineFriendsRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::OnlineFriends {})
    }
}

impl IntoCommand for proto::ListFriendsRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::ListFriends {})
    }
}

impl IntoCommand for proto::ResumeRequest {
    fn into_command(self) -> Result<Command> {
        let conversations = self
            .conversations
            .into_iter()
            .map(|p| {
                Ok(ResumePoint {
                    conversation: conversation_id(&p.conversation)?,
                    last_seq: p.last_seq,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Command::Resume { conversations })
    }
}

impl IntoCommand for proto::RefreshTokenRequest {
    fn into_command(self) -> Result<Command> {
        Ok(Command::RefreshToken {
            token: Credential::new(self.token),
        })
    }
}

/// Which mark a [`proto::MarkRequest`] moves.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// `mark_delivered`.
    Delivered,
    /// `mark_read`.
    Read,
}

/// The command of a mark request.
///
/// # Errors
/// `invalid` for a conversation id that does not parse.
pub fn mark(r: proto::MarkRequest, which: Mark) -> Result<Command> {
    let conversation = conversation_id(&r.conversation)?;
    Ok(match which {
        Mark::Delivered => Command::MarkDelivered {
            conversation,
            seq: r.seq,
        },
        Mark::Read => Command::MarkRead {
            conversation,
            seq: r.seq,
        },
    })
}

/// What a [`proto::UserRequest`] asks about a friendship.
#[derive(Debug, Clone, Copy)]
pub enum Friend {
    /// `friend_request`.
    Request,
    /// `friend_accept`.
    Accept,
    /// `friend_decline`.
    Decline,
    /// `friend_cancel`.
    Cancel,
    /// `friend_remove`.
    Remove,
    /// `block`.
    Block,
    /// `unblock`.
    Unblock,
}

/// The command of a friendship request.
///
/// # Errors
/// `invalid` for a user id that does not parse.
pub fn friend(r: proto::UserRequest, action: Friend) -> Result<Command> {
    let user = user_id(&r.user)?;
    Ok(match action {
        Friend::Request => Command::FriendRequest { user },
        Friend::Accept => Command::FriendAccept { user },
        Friend::Decline => Command::FriendDecline { user },
        Friend::Cancel => Command::FriendCancel { user },
        Friend::Remove => Command::FriendRemove { user },
        Friend::Block => Command::Block { user },
        Friend::Unblock => Command::Unblock { user },
    })
}

/// The command of a client frame (a `Connect` stream's, or the WebSocket's binary
/// subprotocol's).
///
/// # Errors
/// `invalid` for an id, enum value or field that does not parse.
pub fn command(c: Cmd) -> Result<Command> {
    match c {
        Cmd::CreateRoom(r) => r.into_command(),
        Cmd::Join(r) => r.into_command(),
        Cmd::Leave(r) => r.into_command(),
        Cmd::Invite(r) => r.into_command(),
        Cmd::OpenDirect(r) => r.into_command(),
        Cmd::Send(r) => r.into_command(),
        Cmd::Edit(r) => r.into_command(),
        Cmd::Delete(r) => r.into_command(),
        Cmd::History(r) => r.into_command(),
        Cmd::MarkDelivered(r) => mark(r, Mark::Delivered),
        Cmd::MarkRead(r) => mark(r, Mark::Read),
        Cmd::Typing(r) => r.into_command(),
        Cmd::ListConversations(r) => r.into_command(),
        Cmd::Members(r) => r.into_command(),
        Cmd::UnreadTotal(r) => r.into_command(),
        Cmd::OnlineFriends(r) => r.into_command(),
        Cmd::FriendRequest(r) => friend(r, Friend::Request),
        Cmd::FriendAccept(r) => friend(r, Friend::Accept),
        Cmd::FriendDecline(r) => friend(r, Friend::Decline),
        Cmd::FriendCancel(r) => friend(r, Friend::Cancel),
        Cmd::FriendRemove(r) => friend(r, Friend::Remove),
        Cmd::Block(r) => friend(r, Friend::Block),
        Cmd::Unblock(r) => friend(r, Friend::Unblock),
        Cmd::ListFriends(r) => r.into_command(),
        Cmd::Resume(r) => r.into_command(),
        Cmd::RefreshToken(r) => r.into_command(),
    }
}

// ---------------------------------------------------------------------------------------
// The model → messages

/// A time as a `google.protobuf.Timestamp`.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        // Below 2 * 10^9 by construction (leap seconds included).
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(999_999_999),
    }
}

fn role(r: Role) -> proto::Role {
    match r {
        Role::Owner => proto::Role::Owner,
        Role::Member => proto::Role::Member,
    }
}

fn message_status(s: Option<MessageStatus>) -> proto::MessageStatus {
    match s {
        None => proto::MessageStatus::Unspecified,
        Some(MessageStatus::Sent) => proto::MessageStatus::Sent,
        Some(MessageStatus::Delivered) => proto::MessageStatus::Delivered,
        Some(MessageStatus::Read) => proto::MessageStatus::Read,
    }
}

/// The status word of the reference calls (`sent`, `delivered`, `read`; empty when not
/// derived).
pub fn status_word(s: Option<MessageStatus>) -> &'static str {
    match s {
        None => "",
        Some(MessageStatus::Sent) => "sent",
        Some(MessageStatus::Delivered) => "delivered",
        Some(MessageStatus::Read) => "read",
    }
}

/// A conversation as its message.
pub fn conversation(c: Conversation) -> proto::Conversation {
    let kind = match c.kind {
        ConversationKind::Room { name, visibility } => {
            proto::conversation::Kind::Room(proto::RoomInfo {
                name,
                visibility: match visibility {
                    Visibility::Public => proto::Visibility::Public,
                    Visibility::Private => proto::Visibility::Private,
                } as i32,
            })
        }
        ConversationKind::Direct { a, b } => proto::conversation::Kind::Direct(proto::DirectPair {
            a: a.to_string(),
            b: b.to_string(),
        }),
    };
    proto::Conversation {
        id: c.id.to_string(),
        kind: Some(kind),
        created_by: c.created_by.to_string(),
        created_at: Some(timestamp(c.created_at)),
        last_seq: c.last_seq,
    }
}

/// A message as its message.
pub fn message(m: Message) -> proto::Message {
    proto::Message {
        id: m.id.to_string(),
        conversation: m.conversation.to_string(),
        seq: m.seq,
        sender: m.sender.to_string(),
        client_id: m.client_id,
        kind: match m.kind {
            MessageKind::User => proto::MessageKind::User,
            MessageKind::System => proto::MessageKind::System,
        } as i32,
        body: m.body,
        created_at: Some(timestamp(m.created_at)),
        edited_at: m.edited_at.map(timestamp),
        deleted_at: m.deleted_at.map(timestamp),
        reply_to: m.reply_to,
        thread: m.thread,
        reply_count: m.reply_count,
        attachments: m
            .attachments
            .into_iter()
            .map(proto::Attachment::from)
            .collect(),
    }
}

impl From<Attachment> for proto::Attachment {
    fn from(a: Attachment) -> Self {
        proto::Attachment {
            url: a.url,
            mime_type: a.mime_type,
            size: a.size,
            name: a.name,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Messages → the model (what a protobuf client reads back)

impl From<proto::Attachment> for Attachment {
    /// As it came: the engine validates attachments (`validate_attachments`), not the
    /// conversion.
    fn from(a: proto::Attachment) -> Self {
        Attachment {
            url: a.url,
            mime_type: a.mime_type,
            size: a.size,
            name: a.name,
        }
    }
}

/// A `google.protobuf.Timestamp` as a time.
///
/// # Errors
/// `invalid` when it is out of chrono's range or its nanoseconds are negative.
pub fn time(t: &prost_types::Timestamp) -> Result<DateTime<Utc>> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| Error::invalid(format!("{t:?} is not a valid time")))
}

impl TryFrom<proto::Message> for Message {
    type Error = Error;

    /// The inverse of [`message`]: `message(m).try_into() == Ok(m)`.
    fn try_from(m: proto::Message) -> Result<Self> {
        let kind = match proto::MessageKind::try_from(m.kind) {
            Ok(proto::MessageKind::User) => MessageKind::User,
            Ok(proto::MessageKind::System) => MessageKind::System,
            _ => return Err(Error::invalid(format!("unknown message kind {}", m.kind))),
        };
        let created_at = m
            .created_at
            .as_ref()
            .ok_or_else(|| Error::invalid("a message has a `created_at`"))?;
        Ok(Message {
            id: MessageId::from_str(&m.id)?,
            conversation: conversation_id(&m.conversation)?,
            seq: m.seq,
            sender: user_id(&m.sender)?,
            client_id: m.client_id,
            kind,
            body: m.body,
            created_at: time(created_at)?,
            edited_at: m.edited_at.as_ref().map(time).transpose()?,
            deleted_at: m.deleted_at.as_ref().map(time).transpose()?,
            reply_to: m.reply_to,
            thread: m.thread,
            reply_count: m.reply_count,
            attachments: m.attachments.into_iter().map(Attachment::from).collect(),
        })
    }
}

fn member(m: Member) -> proto::Member {
    proto::Member {
        conversation: m.conversation.to_string(),
        user: m.user.to_string(),
        role: role(m.role) as i32,
        delivered_seq: m.watermarks.delivered_seq,
        read_seq: m.watermarks.read_seq,
        joined_at: Some(timestamp(m.joined_at)),
    }
}

fn friend_view(f: FriendView) -> proto::FriendView {
    proto::FriendView {
        user: f.user.to_string(),
        status: match f.status {
            FriendStatus::None => proto::FriendStatus::None,
            FriendStatus::Friends => proto::FriendStatus::Friends,
            FriendStatus::RequestSent => proto::FriendStatus::RequestSent,
            FriendStatus::RequestReceived => proto::FriendStatus::RequestReceived,
            FriendStatus::Blocked => proto::FriendStatus::Blocked,
        } as i32,
        since: Some(timestamp(f.since)),
    }
}

fn summary(s: ConversationSummary) -> proto::ConversationSummary {
    proto::ConversationSummary {
        conversation: Some(conversation(s.conversation)),
        role: role(s.role) as i32,
        delivered_seq: s.watermarks.delivered_seq,
        read_seq: s.watermarks.read_seq,
        last_message: s.last_message.map(message),
        unread: s.unread,
    }
}

fn history_message(v: MessageView) -> proto::HistoryMessage {
    proto::HistoryMessage {
        status: message_status(v.status) as i32,
        message: Some(message(v.message)),
    }
}

fn marks(m: MemberMarks) -> proto::MemberMarks {
    proto::MemberMarks {
        user: m.user.to_string(),
        delivered_seq: m.watermarks.delivered_seq,
        read_seq: m.watermarks.read_seq,
    }
}

fn resume_result(r: ResumeResult) -> proto::ResumeResult {
    proto::ResumeResult {
        conversation: r.conversation.to_string(),
        outcome: match r.outcome {
            ResumeOutcome::Replayed => proto::ResumeOutcome::Replayed,
            ResumeOutcome::TooFarBehind => proto::ResumeOutcome::TooFarBehind,
            ResumeOutcome::NotFound => proto::ResumeOutcome::NotFound,
        } as i32,
        messages: r.messages.into_iter().map(message).collect(),
        last_seq: r.last_seq,
    }
}

// ---------------------------------------------------------------------------------------
// Replies and events → messages

use proto::reply::Reply as R;

/// A reply as its message.
///
/// # Errors
/// `internal` for a reply kind this transport does not know (a newer engine).
pub fn reply(r: Reply) -> Result<proto::Reply> {
    let reply = match r {
        Reply::Room {
            conversation: c,
            joined,
        } => R::Room(proto::RoomReply {
            conversation: Some(conversation(c)),
            joined,
        }),
        Reply::Direct {
            conversation: c,
            created,
        } => R::Direct(proto::DirectReply {
            conversation: Some(conversation(c)),
            created,
        }),
        Reply::Sent {
            message: m,
            duplicate,
        } => R::Sent(proto::SentReply {
            message: Some(message(m)),
            duplicate,
        }),
        Reply::Message { message: m } => R::Message(proto::MessageReply {
            message: Some(message(m)),
        }),
        Reply::History {
            conversation,
            messages,
            last_seq,
            members,
        } => R::History(proto::HistoryReply {
            conversation: conversation.to_string(),
            messages: messages.into_iter().map(history_message).collect(),
            last_seq,
            members: members.into_iter().map(marks).collect(),
        }),
        Reply::Marks {
            conversation,
            watermarks,
        } => R::Marks(proto::MarksReply {
            conversation: conversation.to_string(),
            delivered_seq: watermarks.delivered_seq,
            read_seq: watermarks.read_seq,
        }),
        Reply::Conversations { conversations } => R::Conversations(proto::ConversationsReply {
            conversations: conversations.into_iter().map(summary).collect(),
        }),
        Reply::Members { members } => R::Members(proto::MembersReply {
            members: members.into_iter().map(member).collect(),
        }),
        Reply::Unread { unread } => R::Unread(proto::UnreadReply { unread }),
        Reply::Online { users } => R::Online(proto::OnlineReply {
            users: users.into_iter().map(|u| u.to_string()).collect(),
        }),
        Reply::Friend { friend } => R::Friend(proto::FriendReply {
            friend: Some(friend_view(friend)),
        }),
        Reply::Friends { friends } => R::Friends(proto::FriendsReply {
            friends: friends.into_iter().map(friend_view).collect(),
        }),
        Reply::Resumed { conversations } => R::Resumed(proto::ResumedReply {
            conversations: conversations.into_iter().map(resume_result).collect(),
        }),
        Reply::TokenRefreshed { expires_at } => R::TokenRefreshed(proto::TokenRefreshedReply {
            expires_at: expires_at.map(timestamp),
        }),
        Reply::Ok => R::Ok(proto::OkReply {}),
        other => {
            return Err(Error::internal(format!(
                "protobuf has no message for the reply `{}`",
                other.kind()
            )))
        }
    };
    Ok(proto::Reply { reply: Some(reply) })
}

/// A reply message of one kind, as a unary call answers it.
pub trait FromReply: Sized {
    /// The message when `r` is of this kind.
    fn from_reply(r: R) -> Option<Self>;
}

macro_rules! from_reply {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        $(impl FromReply for $ty {
            fn from_reply(r: R) -> Option<Self> {
                match r {
                    R::$variant(m) => Some(m),
                    _ => None,
                }
            }
        })*
    };
}

from_reply! {
    Room => proto::RoomReply,
    Direct => proto::DirectReply,
    Sent => proto::SentReply,
    Message => proto::MessageReply,
    History => proto::HistoryReply,
    Marks => proto::MarksReply,
    Conversations => proto::ConversationsReply,
    Members => proto::MembersReply,
    Unread => proto::UnreadReply,
    Online => proto::OnlineReply,
    Friend => proto::FriendReply,
    Friends => proto::FriendsReply,
    Resumed => proto::ResumedReply,
    Ok => proto::OkReply,
}

use proto::event::Event as E;

/// An event as its message.
///
/// # Errors
/// `internal` for an event kind this transport does not know (a newer engine).
pub fn event(e: &Event) -> Result<proto::Event> {
    let event = match e.clone() {
        Event::Message { message: m } => E::Message(proto::MessageEvent {
            message: Some(message(m)),
        }),
        Event::MessageEdited { message: m } => E::MessageEdited(proto::MessageEvent {
            message: Some(message(m)),
        }),
        Event::MessageDeleted { message: m } => E::MessageDeleted(proto::MessageEvent {
            message: Some(message(m)),
        }),
        Event::Receipt {
            conversation,
            user,
            delivered_seq,
            read_seq,
        } => E::Receipt(proto::ReceiptEvent {
            conversation: conversation.to_string(),
            user: user.to_string(),
            delivered_seq,
            read_seq,
        }),
        Event::Typing {
            conversation,
            user,
            typing,
        } => E::Typing(proto::TypingEvent {
            conversation: conversation.to_string(),
            user: user.to_string(),
            typing,
        }),
        Event::MemberJoined {
            conversation,
            user,
            role: r,
        } => E::MemberJoined(proto::MemberJoinedEvent {
            conversation: conversation.to_string(),
            user: user.to_string(),
            role: role(r) as i32,
        }),
        Event::MemberLeft { conversation, user } => E::MemberLeft(proto::MemberLeftEvent {
            conversation: conversation.to_string(),
            user: user.to_string(),
        }),
        Event::ConversationAdded { conversation: c } => {
            E::ConversationAdded(proto::ConversationAddedEvent {
                conversation: Some(conversation(c)),
            })
        }
        Event::ConversationRemoved { conversation } => {
            E::ConversationRemoved(proto::ConversationRemovedEvent {
                conversation: conversation.to_string(),
            })
        }
        Event::Presence {
            presence:
                Presence {
                    user,
                    online,
                    last_seen,
                },
        } => E::Presence(proto::PresenceEvent {
            user: user.to_string(),
            online,
            last_seen: last_seen.map(timestamp),
        }),
        Event::Friend { friend } => E::Friend(proto::FriendEvent {
            friend: Some(friend_view(friend)),
        }),
        Event::ResumeRequired { conversation } => E::ResumeRequired(proto::ResumeRequiredEvent {
            conversation: conversation.to_string(),
        }),
        other => {
            return Err(Error::internal(format!(
                "protobuf has no message for the event `{}`",
                other.kind()
            )))
        }
    };
    Ok(proto::Event { event: Some(event) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_id_is_invalid_and_an_empty_visibility_is_public() {
        let e = proto::LeaveRequest {
            conversation: "nope".into(),
        }
        .into_command()
        .expect_err("not an id");
        assert_eq!(e.code(), chat_core::ErrorCode::Invalid);
        let c = proto::CreateRoomRequest {
            name: "general".into(),
            visibility: 0,
        }
        .into_command()
        .expect("command");
        assert_eq!(
            c,
            Command::CreateRoom {
                name: "general".into(),
                visibility: Visibility::Public
            }
        );
        let e = proto::CreateRoomRequest {
            name: "general".into(),
            visibility: 42,
        }
        .into_command()
        .expect_err("unknown visibility");
        assert_eq!(e.code(), chat_core::ErrorCode::Invalid);
    }

    #[test]
    fn a_timestamp_keeps_its_nanoseconds() {
        let t = DateTime::from_timestamp(1_746_100_800, 123_456_789).expect("time");
        let p = timestamp(t);
        assert_eq!((p.seconds, p.nanos), (1_746_100_800, 123_456_789));
        assert_eq!(time(&p), Ok(t), "and back");
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(time(&bad).map_err(|e| e.code()), Err(ErrorCode::Invalid));
    }

    use chat_core::ports::Encoder as _;
    use chat_core::ErrorCode;
    use prost::Message as _;

    const CONV: &str = "0190a0b0-0000-7000-8000-000000000001";

    fn photo() -> Attachment {
        Attachment {
            url: "https://files.example/a/photo.png".into(),
            mime_type: "image/png".into(),
            size: 123_456,
            name: "photo.png".into(),
        }
    }

    fn pdf() -> Attachment {
        Attachment {
            url: "http://files.example/b".into(),
            mime_type: "application/pdf".into(),
            size: 0,
            name: "b.pdf".into(),
        }
    }

    /// A message with every field set, the new ones included.
    fn reply() -> Message {
        let t = |s: i64| DateTime::from_timestamp(1_746_100_800 + s, 5).expect("time");
        Message {
            id: MessageId::from_str("0190a0b0-0000-7000-8000-000000000007").expect("id"),
            conversation: conversation_id(CONV).expect("id"),
            seq: 9,
            sender: user_id("alice").expect("user"),
            client_id: Some("c-9".into()),
            kind: MessageKind::User,
            body: "see attached".into(),
            created_at: t(0),
            edited_at: Some(t(1)),
            deleted_at: None,
            reply_to: Some(5),
            thread: Some(2),
            reply_count: 0,
            attachments: vec![photo(), pdf()],
        }
    }

    /// Through the wire: encoded, decoded, read back.
    fn wire(m: &Message) -> Result<Message> {
        let bytes = message(m.clone()).encode_to_vec();
        let decoded = proto::Message::decode(bytes.as_slice()).expect("decode");
        Message::try_from(decoded)
    }

    #[test]
    fn a_send_carries_its_reply_and_attachments_through_a_frame() {
        let frame = proto::ClientFrame {
            request_id: "r-1".into(),
            command: Some(Cmd::Send(proto::SendRequest {
                conversation: CONV.into(),
                body: String::new(),
                client_id: Some("c-1".into()),
                reply_to: Some(3),
                attachments: vec![photo().into(), pdf().into()],
            })),
        };
        let (id, command) = crate::decode_client_frame(&frame.encode_to_vec()).expect("a command");
        assert_eq!(id, "r-1");
        assert_eq!(
            command,
            Command::Send {
                conversation: conversation_id(CONV).expect("id"),
                body: String::new(),
                client_id: Some("c-1".into()),
                reply_to: Some(3),
                attachments: vec![photo(), pdf()],
            }
        );
        // Without the new fields a send is what it always was.
        let plain = proto::SendRequest {
            conversation: CONV.into(),
            body: "hi".into(),
            ..Default::default()
        };
        match plain.into_command().expect("command") {
            Command::Send {
                reply_to,
                attachments,
                ..
            } => assert_eq!((reply_to, attachments), (None, Vec::new())),
            other => panic!("{other:?}"),
        }
        // Attachments are not judged here: eleven of them, or a bad URL, pass through
        // to the engine, which answers `too_large` or `invalid` like every transport.
        let many = proto::SendRequest {
            conversation: CONV.into(),
            attachments: vec![proto::Attachment::default(); 11],
            ..Default::default()
        };
        match many.into_command().expect("command") {
            Command::Send { attachments, .. } => assert_eq!(attachments.len(), 11),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_history_request_names_its_thread() {
        let frame = proto::ClientFrame {
            request_id: "r-2".into(),
            command: Some(Cmd::History(proto::HistoryRequest {
                conversation: CONV.into(),
                before: None,
                after: Some(1),
                limit: Some(20),
                thread: Some(1),
            })),
        };
        let (_, command) = crate::decode_client_frame(&frame.encode_to_vec()).expect("command");
        assert_eq!(
            command,
            Command::History {
                conversation: conversation_id(CONV).expect("id"),
                before: None,
                after: Some(1),
                limit: Some(20),
                thread: Some(1),
            }
        );
        let whole = proto::HistoryRequest {
            conversation: CONV.into(),
            ..Default::default()
        };
        match whole.into_command().expect("command") {
            Command::History { thread, .. } => assert_eq!(thread, None, "the whole log"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_message_round_trips_with_its_reply_thread_count_and_attachments() {
        let m = reply();
        let p = message(m.clone());
        assert_eq!((p.reply_to, p.thread, p.reply_count), (Some(5), Some(2), 0));
        assert_eq!(
            p.attachments,
            vec![
                proto::Attachment {
                    url: "https://files.example/a/photo.png".into(),
                    mime_type: "image/png".into(),
                    size: 123_456,
                    name: "photo.png".into(),
                },
                pdf().into()
            ]
        );
        assert_eq!(wire(&m), Ok(m.clone()), "a reply with attachments");

        // A thread root with its count; a tombstone without attachments.
        let root = Message {
            seq: 2,
            reply_to: None,
            thread: None,
            reply_count: 3,
            attachments: vec![photo()],
            ..reply()
        };
        assert_eq!(message(root.clone()).reply_count, 3);
        assert_eq!(wire(&root), Ok(root));
        let gone = Message {
            body: String::new(),
            deleted_at: Some(m.created_at),
            attachments: Vec::new(),
            kind: MessageKind::System,
            client_id: None,
            ..reply()
        };
        assert_eq!(wire(&gone), Ok(gone));

        // A message that is no reply and has no attachments costs nothing more on the
        // wire than before: the new fields are absent.
        let plain = Message {
            reply_to: None,
            thread: None,
            reply_count: 0,
            attachments: Vec::new(),
            ..reply()
        };
        let p = message(plain.clone());
        let without = proto::Message {
            reply_to: None,
            thread: None,
            reply_count: 0,
            attachments: Vec::new(),
            ..p.clone()
        };
        assert_eq!(p.encoded_len(), without.encoded_len());
        assert_eq!(wire(&plain), Ok(plain));
    }

    #[test]
    fn a_message_that_does_not_parse_is_invalid() {
        let good = message(reply());
        let cases = [
            proto::Message {
                kind: 0,
                ..good.clone()
            },
            proto::Message {
                kind: 9,
                ..good.clone()
            },
            proto::Message {
                created_at: None,
                ..good.clone()
            },
            proto::Message {
                id: "nope".into(),
                ..good.clone()
            },
            proto::Message {
                sender: String::new(),
                ..good.clone()
            },
            proto::Message {
                edited_at: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..good.clone()
            },
        ];
        for bad in cases {
            let e = Message::try_from(bad.clone()).expect_err("invalid");
            assert_eq!(e.code(), ErrorCode::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn a_message_event_carries_the_new_fields() {
        let event = Event::Message { message: reply() };
        let bytes = crate::ProtoEncoder.encode(&event).expect("encode");
        let frame = proto::ServerFrame::decode(bytes).expect("decode");
        let m = match frame.frame {
            Some(crate::proto::server_frame::Frame::Event(proto::Event {
                event: Some(E::Message(proto::MessageEvent { message: Some(m) })),
            })) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(Message::try_from(m), Ok(reply()));
    }
}
