//! A client for chat-engine's protocol v1 (`docs/protocol.md`), on tokio.
//!
//! [`Client::connect`] opens a WebSocket and keeps it open: it reconnects with
//! exponential backoff and jitter (asking the [`TokenProvider`] for a token each time),
//! and after every reconnect it does what protocol §5 asks of a client:
//!
//! - it keeps `have` per conversation, and hands [`Event::Message`]s to the application
//!   **in seq order, each once**, whether they came live, from `resume`, from a gap it
//!   filled with `history` after [`Config::gap_wait`], or as the acknowledgement of your
//!   own send (your own messages come as events too, once acknowledged);
//! - it sends `resume` with every `have`, then `list_conversations` to find conversations
//!   added while away;
//! - it writes sends not yet acknowledged again with their `client_id` (one is generated
//!   when you give none), so each message is stored once;
//! - it acknowledges delivery (`mark_delivered`) by itself unless told not to
//!   ([`Config::auto_mark_delivered`]);
//! - it paces its frames to the limits in `hello`, and refuses a frame over
//!   `max_frame_bytes` with `too_large` instead of being closed for it.
//!
//! Close codes (§8): after `4003` (kicked) it does not reconnect and the client closes;
//! after `4029` (flood) it waits at least 5 s; after `4001` it reconnects with a fresh
//! token; after anything else (`1001`, `4008`, `4000`, `1011`, a broken connection) it
//! reconnects and resumes.
//!
//! The frames are `chat-protocol`'s, the same types the server uses; commands, replies,
//! events and errors are `chat-core`'s ([`chat_core`] is re-exported).
//!
//! ```no_run
//! use chat_client::{Client, ClientEvent};
//! use chat_client::chat_core::Event;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, mut events) = Client::connect("ws://127.0.0.1:8080/ws", String::from("eyJ...")).await?;
//! let room = client.join_or_create("lobby").await?;
//! client.send(room.id, "hello").await?;
//! while let Some(event) = events.next().await {
//!     if let ClientEvent::Event(Event::Message { message }) = event {
//!         println!("{}: {}", message.sender, message.body);
//!     }
//! }
//! # Ok(()) }
//! ```

mod config;
mod driver;
mod error;
mod order;
mod token;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use chat_core;
pub use chat_protocol as protocol;

use chat_core::engine::{MemberMarks, MessageView, ResumePoint};
use chat_core::model::{
    Attachment, Conversation, FriendView, Member, Message, RoomRef, Visibility, Watermarks,
};
use chat_core::ports::{ConversationSummary, Credential};
use chat_core::{Command, ConversationId, Event, Reply, Seq, UserId};
use chat_protocol::Hello;
use tokio::sync::{mpsc, oneshot};

pub use config::Config;
pub use error::ClientError;
pub use token::{TokenFuture, TokenProvider};

use driver::{Driver, Request, Shared};

/// What the client hands the application, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A connection opened (the first, or a reconnect): its `hello`.
    Connected {
        /// The server's hello, with the limits in force.
        hello: Hello,
    },
    /// A server event. `Message` events come in seq order per conversation, each once.
    /// `ConversationAdded` also comes for conversations found by `list_conversations`
    /// after a reconnect, and `ConversationRemoved` for ones `resume` says are gone.
    Event(Event),
    /// Messages `from + 1 ..= to` of a conversation could not be resumed (more than
    /// `max_resume_gap` were missed): load them with `history` if the user wants them.
    /// Events go on after `to`.
    Skipped {
        /// The conversation.
        conversation: ConversationId,
        /// What the client had.
        from: Seq,
        /// Where it goes on from.
        to: Seq,
    },
    /// The connection dropped; the client reconnects by itself.
    Disconnected {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The client closed for good (by [`Client::close`], a `4003` kick, or a first
    /// connection that failed). The last event.
    Closed {
        /// The close code, if there was one.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Opening the first connection.
    #[default]
    Connecting,
    /// Open.
    Open,
    /// Waiting to reconnect, or reconnecting.
    Reconnecting,
    /// Closed for good.
    Closed,
}

/// The events of a [`Client`], in order: a bounded buffer ([`Config::event_buffer`]).
/// Read it promptly; see [`Config::event_buffer`] for what happens when you do not.
/// Ends after [`ClientEvent::Closed`].
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<ClientEvent>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event was read.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.rx.recv().await
    }
}

impl futures::Stream for Events {
    type Item = ClientEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// What `send` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The stored message, with its seq.
    pub message: Message,
    /// True when an earlier attempt with this `client_id` had stored it already.
    pub duplicate: bool,
}

/// A page of `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The messages, in ascending seq, with their status for small conversations.
    pub messages: Vec<MessageView>,
    /// The conversation's newest seq.
    pub last_seq: Seq,
    /// Every member's watermarks (empty for large rooms).
    pub members: Vec<MemberMarks>,
}

/// Which page of `history`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Messages strictly before this seq.
    pub before: Option<Seq>,
    /// Messages strictly after this seq.
    pub after: Option<Seq>,
    /// At most this many (the server's default when absent).
    pub limit: Option<u32>,
}

/// A message to send with [`Client::send_with`]: its body, and optionally the message it
/// replies to, its attachments and your own `client_id`. Build it with [`Draft::new`] and
/// the methods that follow it.
///
/// ```
/// use chat_client::Draft;
/// use chat_client::chat_core::model::Attachment;
///
/// let draft = Draft::new("the plan, attached")
///     .reply_to(41)
///     .attachment(Attachment {
///         url: "https://files.example/plan.pdf".into(),
///         mime_type: "application/pdf".into(),
///         size: 48_213,
///         name: "plan.pdf".into(),
///     });
/// assert_eq!(draft.reply_to, Some(41));
/// assert_eq!(draft.attachments.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Draft {
    /// The text; may be empty when there is at least one attachment.
    pub body: String,
    /// An idempotency key (1–64 bytes); one is generated when absent.
    pub client_id: Option<String>,
    /// The seq of the message, in the same conversation, this one replies to. The server
    /// puts the reply in that message's thread (`Message::thread`).
    pub reply_to: Option<Seq>,
    /// Files attached by reference (at most `max_attachments`, 10 by default; the server
    /// answers `too_large` above it and checks each one: see `chat_core::model::Attachment`).
    pub attachments: Vec<Attachment>,
}

impl Draft {
    /// A message with this body and nothing else.
    pub fn new(body: impl Into<String>) -> Draft {
        Draft {
            body: body.into(),
            ..Draft::default()
        }
    }

    /// Replies to the message at `seq`.
    #[must_use]
    pub fn reply_to(mut self, seq: Seq) -> Draft {
        self.reply_to = Some(seq);
        self
    }

    /// Adds an attachment.
    #[must_use]
    pub fn attachment(mut self, attachment: Attachment) -> Draft {
        self.attachments.push(attachment);
        self
    }

    /// Adds attachments.
    #[must_use]
    pub fn attachments(mut self, attachments: impl IntoIterator<Item = Attachment>) -> Draft {
        self.attachments.extend(attachments);
        self
    }

    /// Uses your own `client_id` (see [`Client::send_with_id`]).
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Draft {
        self.client_id = Some(client_id.into());
        self
    }
}

impl From<&str> for Draft {
    fn from(body: &str) -> Draft {
        Draft::new(body)
    }
}

impl From<String> for Draft {
    fn from(body: String) -> Draft {
        Draft::new(body)
    }
}

/// A connection to a chat server that survives disconnects. Cheap to clone; the
/// connection closes when every clone is dropped or [`Client::close`] is called.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::UnboundedSender<Request>,
    shared: Arc<parking_lot::Mutex<Shared>>,
    config: Arc<Config>,
}

macro_rules! expect {
    ($reply:expr, $pattern:pat => $out:expr) => {
        match $reply {
            $pattern => Ok($out),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    };
}

impl Client {
    /// Connects to `config` (a URL or a [`Config`]) with tokens from `token`, and returns
    /// once the first connection is open and synced (resumed from
    /// [`Config::resume_from`], conversations listed). From then on the client
    /// reconnects by itself.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the first connection fails (a refused token, an
    /// unreachable server); the client does not retry then.
    pub async fn connect(
        config: impl Into<Config>,
        token: impl TokenProvider,
    ) -> Result<(Client, Events), ClientError> {
        let config = Arc::new(config.into());
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(config.event_buffer.max(1));
        let shared = Arc::new(parking_lot::Mutex::new(Shared::default()));
        let (first_tx, first) = oneshot::channel();
        let driver = Driver::new(
            config.clone(),
            Arc::new(token),
            requests_rx,
            events_tx,
            shared.clone(),
            first_tx,
        );
        tokio::spawn(driver.run());
        match first.await {
            Ok(Ok(_)) => Ok((
                Client {
                    requests,
                    shared,
                    config,
                },
                Events { rx: events },
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Where the connection stands.
    pub fn state(&self) -> State {
        self.shared.lock().state
    }

    /// The last `hello`: who you are and the limits in force.
    pub fn hello(&self) -> Option<Hello> {
        self.shared.lock().hello.clone()
    }

    /// Each followed conversation's `have`: save them to resume from there in a later
    /// run ([`Config::resume_from`]).
    pub async fn resume_points(&self) -> Vec<ResumePoint> {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Points(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Closes the connection (normally, `1000`) and stops reconnecting. Commands still
    /// waiting fail with [`ClientError::Closed`].
    pub fn close(&self) {
        let _ = self.requests.send(Request::Close);
    }

    /// Runs any command and returns its reply. Sends (`Command::Send`) are retried until
    /// acknowledged and are not bounded by [`Config::request_timeout`]; a send without
    /// `client_id` gets a generated one.
    ///
    /// # Errors
    /// The server's error ([`ClientError::Server`]), [`ClientError::Disconnected`],
    /// [`ClientError::Timeout`] or [`ClientError::Closed`].
    pub async fn command(&self, mut command: Command) -> Result<Reply, ClientError> {
        let is_send = match &mut command {
            Command::Send { client_id, .. } => {
                client_id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
                true
            }
            _ => false,
        };
        let (answer, rx) = oneshot::channel();
        self.requests
            .send(Request::Command { command, answer })
            .map_err(|_| ClientError::Closed)?;
        if is_send {
            return rx.await.unwrap_or(Err(ClientError::Closed));
        }
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Ok(answer) => answer.unwrap_or(Err(ClientError::Closed)),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// `send` with a generated `client_id`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn send(
        &self,
        conversation: ConversationId,
        body: impl Into<String>,
    ) -> Result<Sent, ClientError> {
        self.send_with_id(conversation, body, None).await
    }

    /// `send` with your own `client_id` (1–64 bytes), e.g. one saved with an outbox that
    /// must survive a restart of your app.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn send_with_id(
        &self,
        conversation: ConversationId,
        body: impl Into<String>,
        client_id: Option<String>,
    ) -> Result<Sent, ClientError> {
        let mut draft = Draft::new(body);
        draft.client_id = client_id;
        self.send_with(conversation, draft).await
    }

    /// `send` a [`Draft`]: a reply (`reply_to`), attachments, your own `client_id`. A
    /// plain body converts too: `send_with(room, "hi")`.
    ///
    /// # Errors
    /// As [`Client::command`]: `not_found` when `reply_to` names no message of the
    /// conversation (or a deleted one), `too_large` for too many attachments or an
    /// overlong field, `invalid` for a malformed attachment.
    pub async fn send_with(
        &self,
        conversation: ConversationId,
        draft: impl Into<Draft>,
    ) -> Result<Sent, ClientError> {
        let Draft {
            body,
            client_id,
            reply_to,
            attachments,
        } = draft.into();
        let reply = self
            .command(Command::Send {
                conversation,
                body,
                client_id,
                reply_to,
                attachments,
            })
            .await?;
        expect!(reply, Reply::Sent { message, duplicate } => Sent { message, duplicate })
    }

    /// `create_room`.
    ///
    /// # Errors
    /// As [`Client::command`] (`conflict` when the name is taken).
    pub async fn create_room(
        &self,
        name: impl Into<String>,
        visibility: Visibility,
    ) -> Result<Conversation, ClientError> {
        let reply = self
            .command(Command::CreateRoom {
                name: name.into(),
                visibility,
            })
            .await?;
        expect!(reply, Reply::Room { conversation, .. } => conversation)
    }

    /// `join` a room by id or name; true when you were not a member before.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn join(
        &self,
        room: impl Into<RoomRef>,
    ) -> Result<(Conversation, bool), ClientError> {
        let reply = self
            .command(Command::Join {
                room: room.into(),
                create: false,
            })
            .await?;
        expect!(reply, Reply::Room { conversation, joined } => (conversation, joined))
    }

    /// `join` a public room by name, creating it when it does not exist.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn join_or_create(
        &self,
        name: impl Into<String>,
    ) -> Result<Conversation, ClientError> {
        let reply = self
            .command(Command::Join {
                room: RoomRef::Name(name.into()),
                create: true,
            })
            .await?;
        expect!(reply, Reply::Room { conversation, .. } => conversation)
    }

    /// `leave` a room.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn leave(&self, conversation: ConversationId) -> Result<(), ClientError> {
        let reply = self.command(Command::Leave { conversation }).await?;
        expect!(reply, Reply::Ok => ())
    }

    /// `invite` a user into a room.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn invite(
        &self,
        conversation: ConversationId,
        user: UserId,
    ) -> Result<(), ClientError> {
        let reply = self.command(Command::Invite { conversation, user }).await?;
        expect!(reply, Reply::Ok | Reply::Room { .. } => ())
    }

    /// `open_direct` with a friend; true when it was created now.
    ///
    /// # Errors
    /// As [`Client::command`] (`not_friends` without an accepted friendship).
    pub async fn open_direct(&self, user: UserId) -> Result<(Conversation, bool), ClientError> {
        let reply = self.command(Command::OpenDirect { user }).await?;
        expect!(reply, Reply::Direct { conversation, created } => (conversation, created))
    }

    /// `edit` your own message.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn edit(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: impl Into<String>,
    ) -> Result<Message, ClientError> {
        let reply = self
            .command(Command::Edit {
                conversation,
                seq,
                body: body.into(),
            })
            .await?;
        expect!(reply, Reply::Message { message } => message)
    }

    /// `delete` your own message (it becomes a tombstone).
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn delete(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<Message, ClientError> {
        let reply = self.command(Command::Delete { conversation, seq }).await?;
        expect!(reply, Reply::Message { message } => message)
    }

    /// A page of `history`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn history(
        &self,
        conversation: ConversationId,
        page: Page,
    ) -> Result<History, ClientError> {
        self.history_of(conversation, None, page).await
    }

    /// A page of one thread: the root at `root` and every reply in its thread (replies
    /// to replies included), in ascending seq, paged by seq like [`Client::history`].
    /// Messages read this way are only returned, not handed to [`Events`].
    ///
    /// # Errors
    /// As [`Client::command`]: `not_found` when there is no message at `root`, `invalid`
    /// when it is a reply (ask for its `thread` instead).
    pub async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: Page,
    ) -> Result<History, ClientError> {
        self.history_of(conversation, Some(root), page).await
    }

    async fn history_of(
        &self,
        conversation: ConversationId,
        thread: Option<Seq>,
        page: Page,
    ) -> Result<History, ClientError> {
        let reply = self
            .command(Command::History {
                conversation,
                before: page.before,
                after: page.after,
                limit: page.limit,
                thread,
            })
            .await?;
        expect!(reply, Reply::History { messages, last_seq, members, .. } => History { messages, last_seq, members })
    }

    /// `mark_delivered`: your watermarks after it.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn mark_delivered(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<Watermarks, ClientError> {
        let reply = self
            .command(Command::MarkDelivered { conversation, seq })
            .await?;
        expect!(reply, Reply::Marks { watermarks, .. } => watermarks)
    }

    /// `mark_read`: your watermarks after it.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn mark_read(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<Watermarks, ClientError> {
        let reply = self
            .command(Command::MarkRead { conversation, seq })
            .await?;
        expect!(reply, Reply::Marks { watermarks, .. } => watermarks)
    }

    /// `typing` started (renew within `typing_ttl_ms`) or stopped.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn typing(
        &self,
        conversation: ConversationId,
        typing: bool,
    ) -> Result<(), ClientError> {
        let reply = self
            .command(Command::Typing {
                conversation,
                typing,
            })
            .await?;
        expect!(reply, Reply::Ok => ())
    }

    /// `list_conversations`, most recently active first.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn list_conversations(
        &self,
        limit: Option<u32>,
    ) -> Result<Vec<ConversationSummary>, ClientError> {
        let reply = self.command(Command::ListConversations { limit }).await?;
        expect!(reply, Reply::Conversations { conversations } => conversations)
    }

    /// A page of a conversation's `members`, after `after`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn members(
        &self,
        conversation: ConversationId,
        after: Option<UserId>,
        limit: Option<u32>,
    ) -> Result<Vec<Member>, ClientError> {
        let reply = self
            .command(Command::Members {
                conversation,
                after,
                limit,
            })
            .await?;
        expect!(reply, Reply::Members { members } => members)
    }

    /// `unread_total` across your conversations.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn unread_total(&self) -> Result<u64, ClientError> {
        let reply = self.command(Command::UnreadTotal {}).await?;
        expect!(reply, Reply::Unread { unread } => unread)
    }

    /// `online_friends`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn online_friends(&self) -> Result<Vec<UserId>, ClientError> {
        let reply = self.command(Command::OnlineFriends {}).await?;
        expect!(reply, Reply::Online { users } => users)
    }

    /// `list_friends`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn list_friends(&self) -> Result<Vec<FriendView>, ClientError> {
        let reply = self.command(Command::ListFriends {}).await?;
        expect!(reply, Reply::Friends { friends } => friends)
    }

    /// A friend command (`friend_request`, `friend_accept`, …, `block`, `unblock`): the
    /// friendship as it now stands from your side.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn friend(&self, command: Command) -> Result<FriendView, ClientError> {
        let reply = self.command(command).await?;
        expect!(reply, Reply::Friend { friend } => friend)
    }

    /// `friend_request` to `user`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn friend_request(&self, user: UserId) -> Result<FriendView, ClientError> {
        self.friend(Command::FriendRequest { user }).await
    }

    /// `friend_accept` from `user`.
    ///
    /// # Errors
    /// As [`Client::command`].
    pub async fn friend_accept(&self, user: UserId) -> Result<FriendView, ClientError> {
        self.friend(Command::FriendAccept { user }).await
    }

    /// `refresh_token`: the connection runs on `token` from now on; its expiry.
    ///
    /// # Errors
    /// As [`Client::command`] (`unauthenticated` for a token that is not valid).
    pub async fn refresh_token(
        &self,
        token: impl Into<String>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, ClientError> {
        let reply = self
            .command(Command::RefreshToken {
                token: Credential::new(token),
            })
            .await?;
        expect!(reply, Reply::TokenRefreshed { expires_at } => expires_at)
    }
}
