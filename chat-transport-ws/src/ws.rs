//! The WebSocket endpoint: handshake, one reader and one writer per connection.
//!
//! The reader decodes frames and runs commands one at a time (so replies keep request
//! order); replies and events share one bounded queue that the writer drains in batches:
//! it waits for one frame, feeds what else is queued (up to `max_batch`), then flushes
//! once (invariant 8).

use std::sync::Arc;
use std::time::Duration;

use crate::outbox::{Outbox, Refused};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chat_core::model::RoomRef;
use chat_core::ports::{CloseReason, Encoder, Identity, SendError, Transport};
use chat_core::{Command, Error, ErrorCode, Session};
use closer::Closer;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::Instant;

use crate::auth;
use crate::error::{ApiError, Query};
use crate::protocol::{self, close, ClientFrame, Hello, HelloLimits, PROTOCOL_VERSION};
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
    ws.read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(cfg.write_buffer_bytes)
        .max_write_buffer_size(cfg.write_buffer_bytes + cfg.max_message_bytes.max(64 * 1024) * 4)
        .max_message_size(cfg.max_message_bytes)
        .max_frame_size(cfg.max_message_bytes)
        .on_upgrade(move |socket| async move {
            let Some(guard) = state.enter() else { return };
            run(state, socket, identity, join, guard).await;
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
    _guard: LiveGuard,
) {
    let cfg = state.inner.config.clone();
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(cfg.queue_capacity));
    let tx = &*outbox;
    let closer = Arc::new(Closer::default());
    let transport = Arc::new(WsTransport {
        encoder: state.inner.encoder.clone(),
        outbox: outbox.clone(),
        closer: closer.clone(),
    });
    // `hello` is queued before the session opens, so it is always the first frame.
    let _ = tx.try_send(protocol::hello_frame(hello(&state, &identity)));
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        closer.clone(),
        cfg.clone(),
    ));

    let session = match state
        .inner
        .engine
        .open_session(identity, transport.clone())
        .await
    {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = tx.try_send(protocol::error_frame(None, &e));
            closer.set(close::INTERNAL, "session");
            None
        }
    };

    if let Some(session) = session {
        let mut reader = Reader {
            session: &session,
            tx,
            closer: &closer,
            cfg: &cfg,
            window_start: Instant::now(),
            frames_in_window: 0,
        };
        if let Some((room, create)) = join {
            reader
                .execute(
                    Some(protocol::RequestId::Text("join".into())),
                    Command::Join { room, create },
                )
                .await;
        }
        let idle = cfg.idle_timeout;
        loop {
            if closer.is_set() {
                break;
            }
            tokio::select! {
                _ = &mut writer => break,
                _ = closer.wait() => break,
                next = tokio::time::timeout(idle, stream.next()) => match next {
                    Err(_) => {
                        closer.set(close::IDLE_TIMEOUT, "idle_timeout");
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        let (code, reason) = read_error_close(e);
                        closer.set(code, reason);
                        break;
                    }
                    Ok(Some(Ok(msg))) => {
                        if !reader.on_message(msg).await {
                            break;
                        }
                    }
                },
            }
        }
        // Answer the client's close first; leaving the fan-out (and maybe going
        // offline, which writes last-seen) need not hold up its close frame.
        closer.set(close::NORMAL, "bye");
        session.close().await;
    }
    closer.set(close::NORMAL, "bye");
    outbox.finish();
    drop(transport);
    if !writer.is_finished() {
        let grace = cfg.write_timeout + Duration::from_secs(1);
        if tokio::time::timeout(grace, &mut writer).await.is_err() {
            writer.abort();
        }
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

struct Reader<'a> {
    session: &'a Session,
    tx: &'a Outbox,
    closer: &'a Closer,
    cfg: &'a crate::Config,
    window_start: Instant,
    frames_in_window: u32,
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
        match msg {
            Message::Text(text) => match ClientFrame::parse(text.as_str()) {
                Ok(frame) => self.execute(frame.id, frame.command).await,
                Err(e) => self.queue(protocol::error_frame(e.id, &e.error)),
            },
            _ => self.queue(protocol::error_frame(
                None,
                &Error::invalid("binary frames are not part of protocol v1; send text"),
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

    async fn execute(&mut self, id: Option<protocol::RequestId>, command: Command) -> bool {
        let frame = match self.session.execute(command).await {
            Ok(reply) => protocol::reply_frame(id, reply),
            Err(e) => protocol::error_frame(id, &e),
        };
        self.queue(frame)
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
) -> Result<(), axum::Error> {
    if let Some(m) = text(first) {
        sink.feed(m).await?;
    }
    for _ in 1..max_batch.max(1) {
        match rx.try_recv() {
            Some(frame) => {
                if let Some(m) = text(frame) {
                    sink.feed(m).await?;
                }
            }
            None => break,
        }
    }
    sink.flush().await
}

async fn write_loop(mut sink: Sink, rx: Arc<Outbox>, closer: Arc<Closer>, cfg: Arc<crate::Config>) {
    let _gone = ReceiverGone(rx.clone());
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    loop {
        if closer.is_set() {
            break;
        }
        tokio::select! {
            biased;
            _ = closer.wait() => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                let batch = write_batch(&mut sink, frame, &rx, cfg.max_batch);
                match tokio::time::timeout(cfg.write_timeout, batch).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            _ = ping.tick() => {
                let sent = tokio::time::timeout(cfg.write_timeout, sink.send(Message::Ping(Bytes::new()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
    // Closing: flush what is queued, then the close frame.
    let (code, reason) = closer.get().unwrap_or((close::NORMAL, "bye"));
    let finish = async {
        while let Some(frame) = rx.try_recv() {
            write_batch(&mut sink, frame, &rx, cfg.max_batch).await?;
        }
        sink.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await?;
        sink.close().await
    };
    let _ = tokio::time::timeout(cfg.write_timeout, finish).await;
}

/// Refuses later frames once the writer stops, however it stops.
struct ReceiverGone(Arc<Outbox>);

impl Drop for ReceiverGone {
    fn drop(&mut self) {
        self.0.receiver_gone();
    }
}
