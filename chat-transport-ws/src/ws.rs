//! The WebSocket endpoint: handshake, one reader and one writer per connection.
//!
//! The reader decodes frames and runs commands one at a time (so replies keep request
//! order); replies and events share one bounded queue that the writer drains in batches:
//! it waits for one frame, feeds what else is queued (up to `max_batch`), then flushes
//! once (invariant 8).
//!
//! Closing is graceful whatever the cause: the writer writes the close frame (after the
//! queue, or instead of it: [`close::delivers_backlog`]) and flushes, while the
//! connection goes on reading and discarding input until the client answers the close
//! (bounded by `close_linger` and [`DRAIN_MAX_BYTES`]). Only then is the socket dropped:
//! dropping it with unread input would make the kernel reset the connection, and a reset
//! discards what the client has not received yet, often the close frame itself.
//!
//! A connection lasts as long as its credential: at the identity's `expires_at` it closes
//! with 4001, unless a `refresh_token` command (answered here, never by the engine)
//! presented a newer credential for the same user first.

use std::sync::Arc;
use std::time::Duration;

use crate::outbox::{Outbox, Refused};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chat_core::model::RoomRef;
use chat_core::ports::{CloseReason, Credential, Encoder, Identity, SendError, Transport};
use chat_core::{Command, Error, ErrorCode, Reply, Session};
use closer::Closer;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::auth;
use crate::error::{ApiError, Query};
use crate::protocol::{
    self, close, ClientFrame, Hello, HelloLimits, PROTOCOL_VERSION, SUBPROTOCOL_JSON,
    SUBPROTOCOL_PROTO,
};
use crate::state::{ChatState, LiveGuard};

/// `/ws/rooms/{room}` query: `create=true` creates a public room when none has that name.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RoomQuery {
    #[serde(default)]
    create: bool,
    // Accepted here so that `?token=` next to `create` is not an unknown parameter.
    #[serde(default)]
    #[allow(dead_code)]
    token: Option<String>,
}

/// A connection's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// JSON text frames.
    Json,
    /// Protobuf binary frames.
    Proto,
}

/// A command's request id, as the connection's encoding reads it.
#[derive(Debug, Clone)]
enum RequestId {
    Json(Option<protocol::RequestId>),
    /// Empty when the client gave none.
    Proto(String),
}

impl RequestId {
    fn reply(self, reply: Reply) -> Bytes {
        match self {
            RequestId::Json(id) => protocol::reply_frame(id, reply),
            RequestId::Proto(id) => chat_proto::reply_frame(id, reply),
        }
    }

    fn error(self, e: &Error) -> Bytes {
        match self {
            RequestId::Json(id) => protocol::error_frame(id, e),
            RequestId::Proto(id) => chat_proto::error_frame(id, e),
        }
    }
}

impl Wire {
    /// No request id.
    fn no_id(self) -> RequestId {
        match self {
            Wire::Json => RequestId::Json(None),
            Wire::Proto => RequestId::Proto(String::new()),
        }
    }

    /// The request id `text`.
    fn id(self, text: &str) -> RequestId {
        match self {
            Wire::Json => RequestId::Json(Some(protocol::RequestId::Text(text.to_owned()))),
            Wire::Proto => RequestId::Proto(text.to_owned()),
        }
    }

    fn hello(self, hello: Hello) -> Bytes {
        match self {
            Wire::Json => protocol::hello_frame(hello),
            Wire::Proto => chat_proto::hello_frame(proto_hello(hello)),
        }
    }

    /// A frame as the WebSocket message that carries it.
    fn message(self, frame: Bytes) -> Option<Message> {
        match self {
            Wire::Json => text(frame),
            Wire::Proto => Some(Message::Binary(frame)),
        }
    }
}

/// The first subprotocol the client offers (in its order) that the server speaks.
fn subprotocol(headers: &axum::http::HeaderMap) -> Option<Wire> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|offer| match offer.trim() {
            SUBPROTOCOL_JSON => Some(Wire::Json),
            SUBPROTOCOL_PROTO => Some(Wire::Proto),
            _ => None,
        })
}

/// The `hello` of the binary subprotocol: the same fields.
fn proto_hello(h: Hello) -> chat_proto::proto::Hello {
    let l = h.limits;
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    chat_proto::proto::Hello {
        protocol: h.protocol,
        user: h.user.to_string(),
        display_name: h.display_name,
        limits: Some(chat_proto::proto::Limits {
            max_frame_bytes: as_u64(l.max_frame_bytes),
            max_body_bytes: as_u64(l.max_body_bytes),
            max_history_page: l.max_history_page,
            max_list_page: l.max_list_page,
            max_resume_gap: l.max_resume_gap,
            max_resume_conversations: as_u64(l.max_resume_conversations),
            status_member_limit: l.status_member_limit,
            presence_room_limit: as_u64(l.presence_room_limit),
            max_live_conversations: l.max_live_conversations,
            typing_ttl_ms: l.typing_ttl_ms,
            commands_per_second: l.commands_per_second,
            command_burst: l.command_burst,
            queue_capacity: as_u64(l.queue_capacity),
            ping_interval_ms: l.ping_interval_ms,
            write_timeout_ms: l.write_timeout_ms,
            idle_timeout_ms: l.idle_timeout_ms,
            max_frames_per_window: l.max_frames_per_window,
            flood_window_ms: l.flood_window_ms,
        }),
    }
}

/// `GET /ws`.
pub(crate) async fn ws_handler(State(state): State<ChatState>, req: Request) -> Response {
    upgrade(state, req, None).await
}

/// `GET /ws/rooms/{room}`.
pub(crate) async fn ws_room_handler(
    State(state): State<ChatState>,
    crate::error::Path(room): crate::error::Path<String>,
    Query(q): Query<RoomQuery>,
    req: Request,
) -> Response {
    upgrade(state, req, Some((RoomRef::from(room), q.create))).await
}

async fn upgrade(state: ChatState, req: Request, join: Option<(RoomRef, bool)>) -> Response {
    let (mut parts, _body) = req.into_parts();
    // Authenticate first: a refused token never reaches the engine.
    let identity = match auth::authenticate(&state, &parts).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    if state.closing() {
        return ApiError::new(ErrorCode::Unavailable, "the server is shutting down")
            .into_response();
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(r) => return ApiError::new(ErrorCode::Invalid, r.body_text()).into_response(),
    };
    let cfg = &state.inner.config;
    // The client's first offer that the server speaks, named in the answer; no offer, or
    // only unknown ones: JSON, and no subprotocol in the answer.
    let (ws, wire) = match subprotocol(&parts.headers) {
        Some(wire @ Wire::Proto) => (ws.protocols([SUBPROTOCOL_PROTO]), wire),
        Some(wire @ Wire::Json) => (ws.protocols([SUBPROTOCOL_JSON]), wire),
        None => (ws, Wire::Json),
    };
    ws.read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(cfg.write_buffer_bytes)
        .max_write_buffer_size(cfg.write_buffer_bytes + cfg.max_message_bytes.max(64 * 1024) * 4)
        .max_message_size(cfg.max_message_bytes)
        .max_frame_size(cfg.max_message_bytes)
        .on_upgrade(move |socket| async move {
            let Some(guard) = state.enter() else { return };
            run(state, socket, identity, join, wire, guard).await;
        })
}

/// The connection as the engine sees it: a bounded queue and a close signal.
struct WsTransport {
    encoder: Arc<dyn Encoder>,
    outbox: Arc<Outbox>,
    closer: Arc<Closer>,
}

impl Transport for WsTransport {
    fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    fn try_send(&self, frame: Bytes) -> Result<(), SendError> {
        if self.closer.is_set() {
            return Err(SendError::Closed);
        }
        self.outbox.try_send(frame).map_err(|e| match e {
            Refused::Full => SendError::Full,
            Refused::Closed => SendError::Closed,
        })
    }

    fn close(&self, reason: CloseReason) {
        let (code, text) = match reason {
            CloseReason::SlowConsumer => (close::SLOW_CONSUMER, "slow_consumer"),
            CloseReason::Shutdown => (close::SHUTDOWN, "shutdown"),
            CloseReason::Kicked => (close::KICKED, "kicked"),
            _ => (close::NORMAL, "closed"),
        };
        self.closer.set(code, text);
    }
}

/// A first-wins close request shared by the engine, the reader and the writer.
mod closer {
    use std::sync::Mutex;

    use tokio::sync::Notify;

    #[derive(Default)]
    pub(super) struct Closer {
        code: Mutex<Option<(u16, &'static str)>>,
        notify: Notify,
    }

    impl Closer {
        pub(super) fn set(&self, code: u16, reason: &'static str) {
            let mut slot = match self.code.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if slot.is_none() {
                *slot = Some((code, reason));
                drop(slot);
                self.notify.notify_waiters();
            }
        }

        pub(super) fn get(&self) -> Option<(u16, &'static str)> {
            match self.code.lock() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            }
        }

        pub(super) fn is_set(&self) -> bool {
            self.get().is_some()
        }

        /// Returns once a close was requested (at once when it already was).
        pub(super) async fn wait(&self) {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }

        /// Returns once a close was requested that does not wait for the backlog
        /// (never for one that does).
        pub(super) async fn wait_urgent(&self) {
            self.wait().await;
            match self.get() {
                Some((code, _)) if !crate::protocol::close::delivers_backlog(code) => {}
                _ => std::future::pending().await,
            }
        }
    }
}

fn hello(state: &ChatState, identity: &Identity) -> Hello {
    let cfg = &state.inner.config;
    let l = state.inner.engine.limits();
    Hello {
        protocol: PROTOCOL_VERSION,
        user: identity.user.clone(),
        display_name: identity.display_name.clone(),
        limits: HelloLimits {
            max_frame_bytes: cfg.max_message_bytes,
            max_body_bytes: l.max_body_bytes,
            max_history_page: l.max_history_page,
            max_list_page: l.max_list_page,
            status_member_limit: l.status_member_limit,
            presence_room_limit: l.presence_room_limit,
            max_live_conversations: l.max_live_conversations,
            max_resume_gap: l.max_resume_gap,
            max_resume_conversations: l.max_resume_conversations,
            typing_ttl_ms: l.typing_ttl_ms,
            commands_per_second: l.commands_per_second,
            command_burst: l.command_burst,
            max_frames_per_window: cfg.max_frames_per_window,
            flood_window_ms: millis(cfg.flood_window),
            queue_capacity: cfg.queue_capacity,
            ping_interval_ms: millis(cfg.ping_interval),
            idle_timeout_ms: millis(cfg.idle_timeout),
            write_timeout_ms: millis(cfg.write_timeout),
        },
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One connection, from upgrade to close.
async fn run(
    state: ChatState,
    socket: WebSocket,
    identity: Identity,
    join: Option<(RoomRef, bool)>,
    wire: Wire,
    _guard: LiveGuard,
) {
    let cfg = state.inner.config.clone();
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(cfg.queue_capacity));
    let tx = &*outbox;
    let closer = Arc::new(Closer::default());
    let encoder = match wire {
        Wire::Json => state.inner.encoder.clone(),
        Wire::Proto => state.inner.proto_encoder.clone(),
    };
    let transport = Arc::new(WsTransport {
        encoder,
        outbox: outbox.clone(),
        closer: closer.clone(),
    });
    // `hello` is queued before the session opens, so it is always the first frame.
    let _ = tx.try_send(wire.hello(hello(&state, &identity)));
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        closer.clone(),
        cfg.clone(),
        wire,
    ));

    let expires_at = identity.expires_at;
    // The one-time steps (open, the join of a room URL, closing) and each message's
    // handling run boxed: their state would otherwise sit inline in every connection's
    // task for its whole life, idle or not (the task's future: 3,312 → 2,088 bytes).
    let session = match Box::pin(state.inner.engine.open_session(identity, transport.clone())).await
    {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = tx.try_send(wire.no_id().error(&e));
            closer.set(close::INTERNAL, "session");
            None
        }
    };

    let mut input = Input::Open;
    if let Some(session) = &session {
        let mut reader = Reader {
            state: &state,
            session,
            tx,
            closer: &closer,
            cfg: &cfg,
            wire,
            window_start: Instant::now(),
            frames_in_window: 0,
            expires: expires_at.map(deadline),
        };
        if let Some((room, create)) = join {
            Box::pin(reader.execute(wire.id("join"), Command::Join { room, create })).await;
        }
        let idle = cfg.idle_timeout;
        // Armed only while the credential expires; moved by `refresh_token`.
        let expiry = tokio::time::sleep_until(reader.expires.unwrap_or_else(Instant::now));
        tokio::pin!(expiry);
        loop {
            if closer.is_set() {
                break;
            }
            if let Some(at) = reader.expires {
                if expiry.deadline() != at {
                    expiry.as_mut().reset(at);
                }
            }
            tokio::select! {
                _ = &mut writer => break,
                _ = closer.wait() => break,
                () = &mut expiry, if reader.expires.is_some() => {
                    closer.set(close::TOKEN_EXPIRED, "token_expired");
                    break;
                }
                next = tokio::time::timeout(idle, stream.next()) => match next {
                    Err(_) => {
                        closer.set(close::IDLE_TIMEOUT, "idle_timeout");
                        break;
                    }
                    Ok(None) => {
                        input = Input::Ended;
                        break;
                    }
                    Ok(Some(Err(e))) => {
                        let (code, reason) = read_error_close(e);
                        closer.set(code, reason);
                        input = Input::Failed;
                        break;
                    }
                    Ok(Some(Ok(msg))) => {
                        if !Box::pin(reader.on_message(msg)).await {
                            break;
                        }
                    }
                },
            }
        }
    }
    // The writer closes at once; leaving the fan-out (and maybe going offline, which
    // writes last-seen) runs meanwhile and need not hold up the close frame.
    closer.set(close::NORMAL, "bye");
    let leave = async {
        if let Some(session) = session {
            session.close().await;
        }
        outbox.finish();
    };
    Box::pin(async {
        tokio::join!(leave, linger(&mut stream, &mut writer, input, &cfg));
    })
    .await;
    drop(transport);
}

/// What the reader knows of the client's side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// More may arrive.
    Open,
    /// The stream ended: the client's close answered, or end of file.
    Ended,
    /// A read failed; the stream yields nothing more, though the socket may hold more.
    Failed,
    /// Closing, the client sent more than [`DRAIN_MAX_BYTES`]; it is not read further.
    TooMuch,
}

/// The most input a closing connection reads and discards before it gives up waiting for
/// the client's answer.
pub(crate) const DRAIN_MAX_BYTES: usize = 4 << 20;

/// After a read error the client's answer cannot be seen (the stream yields nothing
/// more): the close frame gets this long to reach it before the socket is dropped.
const AFTER_READ_ERROR: Duration = Duration::from_millis(250);

/// The end of a connection: reads and discards input while the writer writes what it
/// still must and the close frame, then until the client answers the close, at most
/// `close_linger` and [`DRAIN_MAX_BYTES`]. The socket is dropped after this.
async fn linger(
    stream: &mut SplitStream<WebSocket>,
    writer: &mut JoinHandle<()>,
    mut input: Input,
    cfg: &crate::Config,
) {
    let mut budget = DRAIN_MAX_BYTES;
    let writer_done = async {
        // A writer that ended while the reader ran was joined there already.
        if writer.is_finished() {
            return;
        }
        // The writer bounds its own writes; this is a backstop.
        let backstop = cfg.write_timeout * 2 + Duration::from_secs(1);
        if tokio::time::timeout(backstop, &mut *writer).await.is_err() {
            writer.abort();
        }
    };
    tokio::pin!(writer_done);
    loop {
        tokio::select! {
            () = &mut writer_done => break,
            () = discard(stream, &mut budget, &mut input), if input == Input::Open => {}
        }
    }
    match input {
        Input::Open => {
            let answered = async {
                while input == Input::Open {
                    discard(stream, &mut budget, &mut input).await;
                }
            };
            if tokio::time::timeout(cfg.close_linger, answered)
                .await
                .is_err()
            {
                tracing::debug!("no answer to the close frame in time");
            }
        }
        Input::Ended | Input::TooMuch => {}
        Input::Failed => tokio::time::sleep(cfg.close_linger.min(AFTER_READ_ERROR)).await,
    }
}

/// Reads one message and drops it, noting in `input` when nothing more is to be read.
async fn discard(stream: &mut SplitStream<WebSocket>, budget: &mut usize, input: &mut Input) {
    match stream.next().await {
        Some(Ok(msg)) => {
            *budget = budget.saturating_sub(msg.into_data().len().max(1));
            if *budget == 0 {
                *input = Input::TooMuch;
            }
        }
        None => *input = Input::Ended,
        Some(Err(_)) => *input = Input::Failed,
    }
}

/// The close code for a failed read: never `1000`, which would call it a normal close.
fn read_error_close(e: axum::Error) -> (u16, &'static str) {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => (close::TOO_BIG, "message too big"),
        Some(tungstenite::Error::Utf8(_)) => (close::INVALID_DATA, "invalid_utf8"),
        Some(tungstenite::Error::Protocol(_)) => (close::PROTOCOL_ERROR, "protocol_error"),
        _ => {
            tracing::debug!(error = %inner, "reading a WebSocket");
            (close::INTERNAL, "read_error")
        }
    }
}

/// The tokio instant of a wall-clock time (now, when it has passed).
fn deadline(at: chrono::DateTime<chrono::Utc>) -> Instant {
    let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let now = Instant::now();
    // Far beyond any real expiry: a year is as good as never.
    now.checked_add(left)
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

struct Reader<'a> {
    state: &'a ChatState,
    session: &'a Session,
    tx: &'a Outbox,
    closer: &'a Closer,
    cfg: &'a crate::Config,
    wire: Wire,
    window_start: Instant,
    frames_in_window: u32,
    /// When the credential expires, if it does.
    expires: Option<Instant>,
}

impl Reader<'_> {
    /// Handles one incoming message; false ends the connection.
    async fn on_message(&mut self, msg: Message) -> bool {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                if !self.count_frame() {
                    return false;
                }
            }
            Message::Ping(_) | Message::Pong(_) => return true,
            Message::Close(_) => return false,
        }
        match (self.wire, msg) {
            (Wire::Json, Message::Text(text)) => match ClientFrame::parse(text.as_str()) {
                Ok(frame) => self.execute(RequestId::Json(frame.id), frame.command).await,
                Err(e) => self.queue(protocol::error_frame(e.id, &e.error)),
            },
            (Wire::Proto, Message::Binary(bytes)) => {
                match chat_proto::decode_client_frame(&bytes) {
                    Ok((id, command)) => self.execute(RequestId::Proto(id), command).await,
                    Err(e) => self.queue(chat_proto::error_frame(e.request_id, &e.error)),
                }
            }
            (Wire::Json, _) => self.queue(protocol::error_frame(
                None,
                &Error::invalid(format!(
                    "binary frames are not part of protocol v1 as JSON; send text, or \
                     connect with the subprotocol {SUBPROTOCOL_PROTO}"
                )),
            )),
            (Wire::Proto, _) => self.queue(chat_proto::error_frame(
                String::new(),
                &Error::invalid(format!(
                    "text frames are not part of the subprotocol {SUBPROTOCOL_PROTO}; \
                     send chat.ClientFrame messages as binary frames"
                )),
            )),
        }
    }

    /// The hard per-connection frame cap; false when the client floods.
    fn count_frame(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= self.cfg.flood_window {
            self.window_start = now;
            self.frames_in_window = 0;
        }
        self.frames_in_window += 1;
        if self.frames_in_window > self.cfg.max_frames_per_window {
            self.closer.set(close::FLOOD, "flood");
            return false;
        }
        true
    }

    async fn execute(&mut self, id: RequestId, command: Command) -> bool {
        // The timer may not have fired yet: an expired credential runs nothing more.
        if self.expires.is_some_and(|at| at <= Instant::now()) {
            self.closer.set(close::TOKEN_EXPIRED, "token_expired");
            return false;
        }
        let result = match command {
            Command::RefreshToken { token } => self.refresh(&token).await,
            command => self.session.execute(command).await,
        };
        let frame = match result {
            Ok(reply) => id.reply(reply),
            Err(e) => id.error(&e),
        };
        self.queue(frame)
    }

    /// `refresh_token`: the same check as the handshake, for the same user; the
    /// connection then lasts until the new credential expires. A refusal changes
    /// nothing: the old expiry still holds.
    async fn refresh(&mut self, token: &Credential) -> chat_core::Result<Reply> {
        let check = self.state.inner.authenticator.authenticate(token.expose());
        // A slow check does not stretch the old credential past its expiry.
        let checked = match self.expires {
            Some(at) => tokio::time::timeout_at(at, check)
                .await
                .unwrap_or_else(|_| {
                    self.closer.set(close::TOKEN_EXPIRED, "token_expired");
                    Err(Error::unauthenticated("the token expired during the check"))
                }),
            None => check.await,
        };
        let identity = checked.map_err(|e| match e.code() {
            ErrorCode::Unavailable => e,
            _ => Error::unauthenticated(e.message().to_owned()).with_source(e),
        })?;
        if identity.user != *self.session.user() {
            return Err(Error::forbidden(
                "the token is for another user than this connection's",
            ));
        }
        self.expires = identity.expires_at.map(deadline);
        Ok(Reply::TokenRefreshed {
            expires_at: identity.expires_at,
        })
    }

    /// Queues a reply; one that does not fit cuts the client off (a reply is never
    /// dropped).
    fn queue(&self, frame: Bytes) -> bool {
        if self.session.is_closed() {
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.closer.set(close::SLOW_CONSUMER, "slow_consumer");
                false
            }
            Err(Refused::Closed) => false,
        }
    }
}

type Sink = SplitSink<WebSocket, Message>;

fn text(frame: Bytes) -> Option<Message> {
    match Utf8Bytes::try_from(frame) {
        Ok(t) => Some(Message::Text(t)),
        Err(e) => {
            tracing::error!(error = %e, "dropping a frame that is not UTF-8");
            None
        }
    }
}

/// Feeds one frame and what else is queued (up to `max_batch`), then flushes once.
async fn write_batch(
    sink: &mut Sink,
    first: Bytes,
    rx: &Outbox,
    max_batch: usize,
    wire: Wire,
) -> Result<(), axum::Error> {
    if let Some(m) = wire.message(first) {
        sink.feed(m).await?;
    }
    for _ in 1..max_batch.max(1) {
        match rx.try_recv() {
            Some(frame) => {
                if let Some(m) = wire.message(frame) {
                    sink.feed(m).await?;
                }
            }
            None => break,
        }
    }
    sink.flush().await
}

/// What the writer does next.
enum Work {
    /// Writes this frame and what else is queued.
    Frames(Bytes),
    /// Pings.
    Ping,
}

async fn write_loop(
    mut sink: Sink,
    rx: Arc<Outbox>,
    closer: Arc<Closer>,
    cfg: Arc<crate::Config>,
    wire: Wire,
) {
    let _gone = ReceiverGone(rx.clone());
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    loop {
        let work = tokio::select! {
            biased;
            _ = closer.wait() => break,
            frame = rx.recv() => match frame {
                Some(frame) => Work::Frames(frame),
                None => break,
            },
            _ = ping.tick() => Work::Ping,
        };
        let write = async {
            match work {
                Work::Frames(first) => {
                    write_batch(&mut sink, first, &rx, cfg.max_batch, wire).await
                }
                Work::Ping => sink.send(Message::Ping(Bytes::new())).await,
            }
        };
        // A close that does not deliver the backlog interrupts a write that waits on the
        // client; frames already handed to the socket still go out before the close.
        tokio::select! {
            biased;
            _ = closer.wait_urgent() => break,
            written = tokio::time::timeout(cfg.write_timeout, write) => match written {
                Ok(Ok(())) => {}
                // The connection is gone: nothing more can be written.
                Ok(Err(_)) => return,
                Err(_) => closer.set(close::SLOW_CONSUMER, "slow_consumer"),
            },
        }
    }
    send_close(&mut sink, &rx, &closer, &cfg, wire).await;
}

/// Writes the backlog when the close code keeps it (otherwise drops it), then the close
/// frame, and flushes; all within `write_timeout`.
async fn send_close(
    sink: &mut Sink,
    rx: &Outbox,
    closer: &Closer,
    cfg: &crate::Config,
    wire: Wire,
) {
    let (code, reason) = closer.get().unwrap_or((close::NORMAL, "bye"));
    let backlog = close::delivers_backlog(code);
    if !backlog {
        let dropped = rx.discard();
        tracing::debug!(code, dropped, "closing ahead of the queued frames");
    }
    let finish = async {
        if backlog {
            while let Some(frame) = rx.try_recv() {
                if write_batch(sink, frame, rx, cfg.max_batch, wire)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        // Fails when the client closed first: the WebSocket then answers with the
        // client's own code, and `close` flushes that answer.
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from(reason),
            })))
            .await;
        sink.close().await
    };
    if tokio::time::timeout(cfg.write_timeout, finish)
        .await
        .is_err()
    {
        tracing::debug!(code, "the close frame could not be written in time");
    }
}

/// Refuses later frames once the writer stops, however it stops.
struct ReceiverGone(Arc<Outbox>);

impl Drop for ReceiverGone {
    fn drop(&mut self) {
        self.0.receiver_gone();
    }
}
