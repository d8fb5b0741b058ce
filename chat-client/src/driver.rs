//! The task behind a [`Client`](crate::Client): it owns the connection, reconnects,
//! resumes, orders events, fills gaps and retries sends.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::engine::{ResumeOutcome, ResumePoint};
use chat_core::model::Message;
use chat_core::{Command, ConversationId, Error, Event, Reply};
use chat_protocol::{close, ClientFrame, Control, Hello, RequestId, ServerFrame};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{Backoff, Config};
use crate::order::Tracker;
use crate::{ClientError, ClientEvent, State, TokenProvider};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(crate) type Answer = oneshot::Sender<Result<Reply, ClientError>>;

/// What a [`Client`](crate::Client) handle asks of the driver.
pub(crate) enum Request {
    Command { command: Command, answer: Answer },
    Points(oneshot::Sender<Vec<ResumePoint>>),
    Close,
}

/// The state the handles can read without asking the driver.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) state: State,
    pub(crate) hello: Option<Hello>,
}

/// A send kept until acknowledged.
struct PendingSend {
    command: Command,
    answer: Option<Answer>,
    /// Written on the current connection.
    written: bool,
    /// Not before this (after `rate_limited` or `unavailable`).
    not_before: Option<Instant>,
}

/// What a request id on the current connection stands for.
enum Pending {
    Caller {
        answer: Answer,
        /// A `leave`: forget the conversation once it succeeds.
        leaving: Option<ConversationId>,
    },
    Send(u64),
    Resume,
    List {
        first: bool,
    },
    Fill(ConversationId),
    Mark,
}

/// How a connection ended.
enum Ended {
    /// The client is closed (by the caller, or the handles are gone).
    Stop,
    /// The server closed with this code (none: the connection just broke).
    Closed { code: Option<u16>, reason: String },
    /// The server refused the token at the handshake.
    Unauthenticated(String),
}

/// Paces frames to the limits announced in `hello`.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(hello: &Hello) -> Bucket {
        let l = &hello.limits;
        let mut rate = f64::INFINITY;
        let mut burst = f64::INFINITY;
        if l.commands_per_second > 0 {
            rate = f64::from(l.commands_per_second);
            burst = f64::from(l.command_burst.max(1));
        }
        if l.max_frames_per_window > 0 && l.flood_window_ms > 0 {
            // Stay well under the hard cap, which closes the connection (4029).
            let window = Duration::from_millis(l.flood_window_ms).as_secs_f64();
            rate = rate.min(f64::from(l.max_frames_per_window) * 0.8 / window);
            burst = burst.min(f64::from(l.max_frames_per_window / 2).max(1.0));
        }
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes a token, or says when one will be there.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.rate.is_infinite() {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// One open connection.
struct Conn {
    sink: SplitSink<Ws, WsMessage>,
    stream: SplitStream<Ws>,
    hello: Hello,
    next_id: i64,
    pending: HashMap<i64, Pending>,
    /// Frames waiting for the rate bucket.
    outbox: VecDeque<String>,
    bucket: Bucket,
    /// Sends written and not answered.
    in_flight: usize,
    last_frame: Instant,
    /// Conversations whose delivered watermark should be sent.
    marks: HashSet<ConversationId>,
    next_marks: Instant,
    /// Answers still missing before the sync is complete.
    syncing: usize,
    /// Set when the connection must be dropped and opened again (a failed sync).
    broken: Option<String>,
}

pub(crate) struct Driver {
    config: Arc<Config>,
    token: Arc<dyn TokenProvider>,
    requests: mpsc::UnboundedReceiver<Request>,
    events: mpsc::Sender<ClientEvent>,
    shared: Arc<parking_lot::Mutex<Shared>>,
    tracker: Tracker,
    sends: BTreeMap<u64, PendingSend>,
    next_send: u64,
    /// Commands waiting for a connection.
    queued: VecDeque<(Command, Answer)>,
    /// Told when the first connection is synced (or failed).
    first: Option<oneshot::Sender<Result<Hello, ClientError>>>,
    /// Conversations seen in a sync at least once.
    synced_once: bool,
    backoff: Backoff,
    /// Events the application has no room for yet, in order.
    backlog: VecDeque<ClientEvent>,
    /// At this backlog the socket is no longer read.
    backlog_cap: usize,
}

impl Driver {
    pub(crate) fn new(
        config: Arc<Config>,
        token: Arc<dyn TokenProvider>,
        requests: mpsc::UnboundedReceiver<Request>,
        events: mpsc::Sender<ClientEvent>,
        shared: Arc<parking_lot::Mutex<Shared>>,
        first: oneshot::Sender<Result<Hello, ClientError>>,
    ) -> Driver {
        let mut tracker = Tracker::default();
        for p in &config.resume_from {
            tracker.follow(p.conversation, p.last_seq);
        }
        let backoff = Backoff::new(&config);
        Driver {
            token,
            requests,
            events,
            shared,
            tracker,
            sends: BTreeMap::new(),
            next_send: 0,
            queued: VecDeque::new(),
            first: Some(first),
            synced_once: !config.resume_from.is_empty(),
            backoff,
            backlog: VecDeque::new(),
            backlog_cap: config.event_buffer.max(1).saturating_mul(16),
            config,
        }
    }

    fn set_state(&self, state: State) {
        self.shared.lock().state = state;
    }

    pub(crate) async fn run(mut self) {
        let (code, reason) = loop {
            self.set_state(if self.first.is_some() {
                State::Connecting
            } else {
                State::Reconnecting
            });
            let ended = self.connect_and_serve().await;
            self.tracker.disconnected();
            let (code, reason, floor) = match ended {
                Ended::Stop => break (Some(close::NORMAL), "closed by the client".to_owned()),
                Ended::Unauthenticated(why) if self.first.is_some() => {
                    break (None, format!("unauthenticated: {why}"));
                }
                Ended::Unauthenticated(why) => (None, format!("unauthenticated: {why}"), None),
                Ended::Closed { code, reason } if self.first.is_some() => {
                    break (code, format!("the first connection failed: {reason}"));
                }
                Ended::Closed {
                    code: Some(close::KICKED),
                    reason,
                } => break (Some(close::KICKED), reason),
                Ended::Closed { code, reason } => {
                    // 4029: the server saw a flood; come back no sooner than a few
                    // windows later.
                    let floor = (code == Some(close::FLOOD)).then(|| Duration::from_secs(5));
                    (code, reason, floor)
                }
            };
            self.set_state(State::Reconnecting);
            self.emit(ClientEvent::Disconnected {
                code,
                reason: reason.clone(),
            });
            let delay = self.backoff.next().max(floor.unwrap_or_default());
            if !self.wait(delay).await {
                break (Some(close::NORMAL), "closed by the client".to_owned());
            }
        };
        self.set_state(State::Closed);
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(ClientError::Connect(reason.clone())));
        }
        for (_, answer) in self.queued.drain(..) {
            let _ = answer.send(Err(ClientError::Closed));
        }
        for (_, send) in std::mem::take(&mut self.sends) {
            if let Some(answer) = send.answer {
                let _ = answer.send(Err(ClientError::Closed));
            }
        }
        self.emit(ClientEvent::Closed { code, reason });
        self.drain_backlog().await;
    }

    /// Waits out a reconnect delay, taking requests meanwhile. False: the client closed.
    async fn wait(&mut self, delay: Duration) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            let events = self.events.clone();
            tokio::select! {
                () = tokio::time::sleep_until(until) => return true,
                request = self.requests.recv() => match request {
                    None | Some(Request::Close) => return false,
                    Some(request) => self.take_offline(request),
                },
                permit = events.reserve(), if !self.backlog.is_empty() => {
                    match (permit, self.backlog.pop_front()) {
                        (Ok(permit), Some(event)) => permit.send(event),
                        (Err(_), _) => self.backlog.clear(),
                        _ => {}
                    }
                }
            }
        }
    }

    /// A request while there is no connection: sends and commands wait for one.
    fn take_offline(&mut self, request: Request) {
        match request {
            Request::Command {
                command: command @ Command::Send { .. },
                answer,
            } => self.keep_send(command, answer),
            Request::Command { command, answer } => self.queued.push_back((command, answer)),
            Request::Points(tx) => {
                let _ = tx.send(self.tracker.points());
            }
            Request::Close => {}
        }
    }

    fn keep_send(&mut self, command: Command, answer: Answer) {
        let key = self.next_send;
        self.next_send += 1;
        self.sends.insert(
            key,
            PendingSend {
                command,
                answer: Some(answer),
                written: false,
                not_before: None,
            },
        );
    }

    async fn open(&mut self) -> Result<(Ws, Hello), Ended> {
        let token = match self.token.token().await {
            Ok(t) => t,
            Err(why) => {
                return Err(Ended::Closed {
                    code: None,
                    reason: format!("no token: {why}"),
                })
            }
        };
        let broken = |reason: String| Ended::Closed { code: None, reason };
        let url = if self.config.token_in_query {
            let sep = if self.config.url.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{sep}token={token}", self.config.url)
        } else {
            self.config.url.clone()
        };
        let mut request = url
            .into_client_request()
            .map_err(|e| broken(format!("bad URL: {e}")))?;
        if !self.config.token_in_query {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| broken(format!("token: {e}")))?;
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let timeout = self.config.connect_timeout;
        #[cfg(feature = "rustls")]
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            true,
            self.config
                .tls
                .clone()
                .map(tokio_tungstenite::Connector::Rustls),
        );
        #[cfg(not(feature = "rustls"))]
        let connecting = tokio_tungstenite::connect_async(request);
        let connected = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| broken("the handshake timed out".into()))?;
        let mut ws = match connected {
            Ok((ws, _)) => ws,
            Err(tungstenite::Error::Http(response))
                if response.status() == StatusCode::UNAUTHORIZED =>
            {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                return Err(Ended::Unauthenticated(body));
            }
            Err(e) => return Err(broken(e.to_string())),
        };
        let first = tokio::time::timeout(timeout, ws.next())
            .await
            .map_err(|_| broken("no hello".into()))?;
        match first {
            Some(Ok(WsMessage::Text(text))) => match serde_json::from_str(&text) {
                Ok(ServerFrame::Control(Control::Hello(hello))) => Ok((ws, hello)),
                Ok(ServerFrame::Control(Control::Error { code, message, .. })) => {
                    Err(broken(format!("{code}: {message}")))
                }
                _ => Err(broken(format!("expected hello, got {text}"))),
            },
            Some(Ok(WsMessage::Close(frame))) => Err(Ended::Closed {
                code: frame.as_ref().map(|f| u16::from(f.code)),
                reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
            }),
            Some(Ok(other)) => Err(broken(format!("expected hello, got {other:?}"))),
            Some(Err(e)) => Err(broken(e.to_string())),
            None => Err(broken("closed before hello".into())),
        }
    }

    async fn connect_and_serve(&mut self) -> Ended {
        let (ws, hello) = match self.open().await {
            Ok(open) => open,
            Err(ended) => return ended,
        };
        let (sink, stream) = ws.split();
        let now = Instant::now();
        let mut conn = Conn {
            sink,
            stream,
            bucket: Bucket::new(&hello),
            hello: hello.clone(),
            next_id: 1,
            pending: HashMap::new(),
            outbox: VecDeque::new(),
            in_flight: 0,
            last_frame: now,
            marks: HashSet::new(),
            next_marks: now,
            syncing: 0,
            broken: None,
        };
        {
            let mut shared = self.shared.lock();
            shared.hello = Some(hello.clone());
            shared.state = State::Open;
        }
        self.emit(ClientEvent::Connected {
            hello: hello.clone(),
        });
        // Resume every followed conversation, then look for ones added while away.
        let chunk = hello.limits.max_resume_conversations.max(1);
        for points in self.tracker.points().chunks(chunk) {
            self.push(
                &mut conn,
                Command::Resume {
                    conversations: points.to_vec(),
                },
                Pending::Resume,
            );
            conn.syncing += 1;
        }
        self.push(
            &mut conn,
            Command::ListConversations {
                limit: Some(hello.limits.max_list_page),
            },
            Pending::List {
                first: !self.synced_once,
            },
        );
        conn.syncing += 1;
        for send in self.sends.values_mut() {
            send.written = false;
        }
        for (command, answer) in std::mem::take(&mut self.queued) {
            self.push_caller(&mut conn, command, answer);
        }
        let ended = self.serve(&mut conn).await;
        // Whatever was on its way has an unknown fate: callers are told; sends stay
        // and are written again on the next connection.
        for (_, pending) in conn.pending.drain() {
            if let Pending::Caller { answer, .. } = pending {
                let _ = answer.send(Err(ClientError::Disconnected));
            }
        }
        if let Ended::Stop = ended {
            let normal = tungstenite::protocol::CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                reason: "".into(),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                conn.sink.send(WsMessage::Close(Some(normal))),
            )
            .await;
        }
        ended
    }

    async fn serve(&mut self, conn: &mut Conn) -> Ended {
        let silence = Duration::from_millis(conn.hello.limits.ping_interval_ms.saturating_mul(2))
            + Duration::from_secs(5);
        loop {
            self.pump_sends(conn);
            let now = Instant::now();
            let mut wake = conn.last_frame + silence;
            match self.flush(conn, now).await {
                Ok(Some(at)) => wake = wake.min(at),
                Ok(None) => {}
                Err(ended) => return ended,
            }
            if let Some(at) = self.tracker.next_due(self.config.gap_wait) {
                wake = wake.min(at);
            }
            if !conn.marks.is_empty() {
                wake = wake.min(conn.next_marks);
            }
            if conn.in_flight < self.config.send_window.max(1) {
                // Sends held back after `rate_limited`/`unavailable` (any that were due
                // and had room were just written).
                let held = self.sends.values().filter(|s| !s.written);
                if let Some(at) = held.filter_map(|s| s.not_before).min() {
                    wake = wake.min(at);
                }
            }
            let reading = !self.backlog_full();
            let events = self.events.clone();
            tokio::select! {
                permit = events.reserve(), if !self.backlog.is_empty() => {
                    match (permit, self.backlog.pop_front()) {
                        (Ok(permit), Some(event)) => permit.send(event),
                        (Err(_), _) => self.backlog.clear(),
                        _ => {}
                    }
                    continue;
                }
                frame = conn.stream.next(), if reading => {
                    conn.last_frame = Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Text(text))) => self.on_frame(conn, &text),
                        Some(Ok(WsMessage::Close(frame))) => {
                            // Our answer to the close is queued: write it out.
                            let _ = tokio::time::timeout(Duration::from_secs(1), conn.sink.flush()).await;
                            return Ended::Closed {
                                code: frame.as_ref().map(|f| u16::from(f.code)),
                                reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                            };
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Ended::Closed { code: None, reason: e.to_string() },
                        None => return Ended::Closed { code: None, reason: "connection lost".into() },
                    }
                }
                request = self.requests.recv() => match request {
                    None | Some(Request::Close) => return Ended::Stop,
                    Some(Request::Command { command: command @ Command::Send { .. }, answer }) => {
                        self.keep_send(command, answer);
                    }
                    Some(Request::Command { command, answer }) => self.push_caller(conn, command, answer),
                    Some(Request::Points(tx)) => { let _ = tx.send(self.tracker.points()); }
                },
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            if let Some(reason) = conn.broken.take() {
                return Ended::Closed { code: None, reason };
            }
            let now = Instant::now();
            if now.saturating_duration_since(conn.last_frame) >= silence {
                return Ended::Closed {
                    code: None,
                    reason: "the server went silent".into(),
                };
            }
            for fill in self.tracker.due(
                now,
                self.config.gap_wait,
                conn.hello.limits.max_history_page,
            ) {
                self.push(
                    conn,
                    Command::History {
                        conversation: fill.conversation,
                        before: None,
                        after: Some(fill.after),
                        limit: Some(fill.limit),
                        thread: None,
                    },
                    Pending::Fill(fill.conversation),
                );
            }
            if !conn.marks.is_empty() && now >= conn.next_marks {
                for conversation in std::mem::take(&mut conn.marks) {
                    if let Some(seq) = self.tracker.have(&conversation) {
                        self.push(
                            conn,
                            Command::MarkDelivered { conversation, seq },
                            Pending::Mark,
                        );
                    }
                }
                conn.next_marks = now + Duration::from_millis(100);
            }
        }
    }

    /// Writes sends that are due, within the window.
    fn pump_sends(&mut self, conn: &mut Conn) {
        let now = Instant::now();
        let window = self.config.send_window.max(1);
        let mut due = Vec::new();
        for (key, send) in &mut self.sends {
            if conn.in_flight + due.len() >= window {
                break;
            }
            if send.written || send.not_before.is_some_and(|t| t > now) {
                continue;
            }
            send.written = true;
            send.not_before = None;
            due.push((*key, send.command.clone()));
        }
        for (key, command) in due {
            conn.in_flight += 1;
            self.push(conn, command, Pending::Send(key));
        }
    }

    fn push_caller(&mut self, conn: &mut Conn, command: Command, answer: Answer) {
        if answer.is_closed() {
            return; // the caller gave up (timed out) while it waited for a connection
        }
        let leaving = match &command {
            Command::Leave { conversation } => Some(*conversation),
            _ => None,
        };
        self.push(conn, command, Pending::Caller { answer, leaving });
    }

    /// Queues a command on the connection under a new request id.
    fn push(&mut self, conn: &mut Conn, command: Command, pending: Pending) {
        let id = conn.next_id;
        conn.next_id += 1;
        let frame = ClientFrame {
            id: Some(RequestId::Number(id)),
            command,
        }
        .encode();
        if frame.len() > conn.hello.limits.max_frame_bytes {
            // The server would close the connection (1009): refuse it here instead.
            let error = ClientError::Server(Error::too_large(
                "frame",
                frame.len(),
                conn.hello.limits.max_frame_bytes,
            ));
            match pending {
                Pending::Caller { answer, .. } => {
                    let _ = answer.send(Err(error));
                }
                Pending::Send(key) => {
                    conn.in_flight -= 1;
                    if let Some(answer) = self.sends.remove(&key).and_then(|s| s.answer) {
                        let _ = answer.send(Err(error));
                    }
                }
                _ => tracing::warn!("an internal command over the frame limit"),
            }
            return;
        }
        conn.pending.insert(id, pending);
        conn.outbox.push_back(frame);
    }

    /// Writes what the rate allows. `Some(at)`: more is waiting until then.
    async fn flush(&mut self, conn: &mut Conn, now: Instant) -> Result<Option<Instant>, Ended> {
        let write_timeout = Duration::from_millis(conn.hello.limits.write_timeout_ms.max(1000));
        let mut wrote = false;
        let mut wait = None;
        while !conn.outbox.is_empty() {
            if let Err(at) = conn.bucket.take(now) {
                wait = Some(at);
                break;
            }
            let Some(frame) = conn.outbox.pop_front() else {
                break;
            };
            let frame = WsMessage::text(frame);
            written(tokio::time::timeout(write_timeout, conn.sink.feed(frame)).await)?;
            wrote = true;
        }
        if wrote {
            written(tokio::time::timeout(write_timeout, conn.sink.flush()).await)?;
        }
        Ok(wait)
    }

    fn on_frame(&mut self, conn: &mut Conn, text: &str) {
        let frame: ServerFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "a frame the client does not understand");
                return;
            }
        };
        match frame {
            ServerFrame::Event(event) => self.on_event(conn, event),
            ServerFrame::Control(Control::Reply { id, reply }) => {
                let Some(pending) = take_pending(conn, id) else {
                    return;
                };
                self.on_reply(conn, pending, reply);
            }
            ServerFrame::Control(Control::Error {
                id,
                code,
                message,
                retry_after_ms,
            }) => {
                let mut error = Error::new(code, message);
                if let Some(ms) = retry_after_ms {
                    error = error.with_retry_after(Duration::from_millis(ms));
                }
                match take_pending(conn, id) {
                    Some(pending) => self.on_error(conn, pending, error),
                    None => tracing::warn!(%error, "an error frame for no request"),
                }
            }
            ServerFrame::Control(Control::Hello(_)) => {}
        }
    }

    fn on_event(&mut self, conn: &mut Conn, event: Event) {
        match event {
            Event::Message { message } => self.deliver(conn, message),
            Event::ConversationAdded { conversation } => {
                self.tracker.follow(conversation.id, conversation.last_seq);
                self.emit(ClientEvent::Event(Event::ConversationAdded {
                    conversation,
                }));
            }
            Event::ConversationRemoved { conversation } => {
                self.tracker.forget(&conversation);
                self.emit(ClientEvent::Event(Event::ConversationRemoved {
                    conversation,
                }));
            }
            Event::ResumeRequired { conversation } => {
                if let Some(seq) = self.tracker.have(&conversation) {
                    self.push(
                        conn,
                        Command::Resume {
                            conversations: vec![ResumePoint {
                                conversation,
                                last_seq: seq,
                            }],
                        },
                        Pending::Resume,
                    );
                }
            }
            event @ (Event::Typing { .. } | Event::Presence { .. }) => {
                self.emit_volatile(ClientEvent::Event(event));
            }
            Event::MessageEdited { message } => {
                // Held behind a gap: the held copy takes the change and comes in order.
                if let Some(message) = self.tracker.update_held(message) {
                    self.emit(ClientEvent::Event(Event::MessageEdited { message }));
                }
            }
            Event::MessageDeleted { message } => {
                if let Some(message) = self.tracker.update_held(message) {
                    self.emit(ClientEvent::Event(Event::MessageDeleted { message }));
                }
            }
            event => self.emit(ClientEvent::Event(event)),
        }
    }

    /// A message from anywhere (live, replayed, filled, acknowledged): delivered in order.
    fn deliver(&mut self, conn: &mut Conn, message: Message) {
        if self.synced_once && message.seq > 1 && !self.tracker.knows(&message.conversation) {
            // A conversation this client was not told of (joined from another device):
            // followed from this message; what came before is history.
            self.emit(ClientEvent::Skipped {
                conversation: message.conversation,
                from: 0,
                to: message.seq - 1,
            });
        }
        let released = self.tracker.offer(message, Instant::now());
        self.deliver_all(conn, released);
    }

    fn deliver_all(&mut self, conn: &mut Conn, messages: Vec<Message>) {
        let me = conn.hello.user.clone();
        for message in messages {
            if self.config.auto_mark_delivered && message.sender != me {
                conn.marks.insert(message.conversation);
            }
            self.emit(ClientEvent::Event(Event::Message { message }));
        }
    }

    fn on_reply(&mut self, conn: &mut Conn, pending: Pending, reply: Reply) {
        match pending {
            Pending::Caller { answer, leaving } => {
                match &reply {
                    Reply::Room { conversation, .. } | Reply::Direct { conversation, .. } => {
                        self.tracker.follow(conversation.id, conversation.last_seq);
                    }
                    Reply::Ok => {
                        if let Some(c) = leaving {
                            self.tracker.forget(&c);
                        }
                    }
                    _ => {}
                }
                let _ = answer.send(Ok(reply));
            }
            Pending::Send(key) => {
                conn.in_flight = conn.in_flight.saturating_sub(1);
                if let Reply::Sent { message, .. } = &reply {
                    self.deliver(conn, message.clone());
                }
                if let Some(answer) = self.sends.remove(&key).and_then(|s| s.answer) {
                    let _ = answer.send(Ok(reply));
                }
            }
            Pending::Resume => {
                if let Reply::Resumed { conversations } = reply {
                    for result in conversations {
                        match result.outcome {
                            ResumeOutcome::Replayed => {
                                for message in result.messages {
                                    self.deliver(conn, message);
                                }
                            }
                            ResumeOutcome::TooFarBehind => {
                                let from = self.tracker.have(&result.conversation).unwrap_or(0);
                                let released =
                                    self.tracker.jump(result.conversation, result.last_seq);
                                self.emit(ClientEvent::Skipped {
                                    conversation: result.conversation,
                                    from,
                                    to: result.last_seq,
                                });
                                self.deliver_all(conn, released);
                            }
                            ResumeOutcome::NotFound => {
                                self.tracker.forget(&result.conversation);
                                self.emit(ClientEvent::Event(Event::ConversationRemoved {
                                    conversation: result.conversation,
                                }));
                            }
                        }
                    }
                }
                self.synced(conn);
            }
            Pending::List { first } => {
                if let Reply::Conversations { conversations } = reply {
                    let mut added = Vec::new();
                    for summary in conversations {
                        let c = summary.conversation;
                        if self.tracker.knows(&c.id) {
                            continue;
                        }
                        if first {
                            // The first connection follows each conversation from its
                            // newest message: what came before is history.
                            self.tracker.follow(c.id, c.last_seq);
                            continue;
                        }
                        // Added while away: told as if it were live, and resumed from
                        // its start (beyond `max_resume_gap`, a `Skipped` says so).
                        self.tracker.follow(c.id, 0);
                        added.push(ResumePoint {
                            conversation: c.id,
                            last_seq: 0,
                        });
                        self.emit(ClientEvent::Event(Event::ConversationAdded {
                            conversation: c,
                        }));
                    }
                    let chunk = conn.hello.limits.max_resume_conversations.max(1);
                    for points in added.chunks(chunk) {
                        self.push(
                            conn,
                            Command::Resume {
                                conversations: points.to_vec(),
                            },
                            Pending::Resume,
                        );
                        conn.syncing += 1;
                    }
                    self.synced_once = true;
                }
                self.synced(conn);
            }
            Pending::Fill(conversation) => {
                if let Reply::History { messages, .. } = reply {
                    for view in messages {
                        self.deliver(conn, view.message);
                    }
                }
                self.tracker.filled(&conversation, Instant::now());
            }
            Pending::Mark => {}
        }
    }

    fn on_error(&mut self, conn: &mut Conn, pending: Pending, error: Error) {
        use chat_core::ErrorCode;
        match pending {
            Pending::Caller { answer, .. } => {
                let _ = answer.send(Err(ClientError::Server(error)));
            }
            Pending::Send(key) => {
                conn.in_flight = conn.in_flight.saturating_sub(1);
                let retry = matches!(
                    error.code(),
                    ErrorCode::RateLimited | ErrorCode::Unavailable
                );
                if retry {
                    if let Some(send) = self.sends.get_mut(&key) {
                        send.written = false;
                        let after = error.retry_after().unwrap_or(Duration::from_millis(500));
                        let after = after.mul_f64(1.0 + fastrand::f64() / 2.0);
                        send.not_before = Some(Instant::now() + after);
                    }
                } else if let Some(answer) = self.sends.remove(&key).and_then(|s| s.answer) {
                    let _ = answer.send(Err(ClientError::Server(error)));
                }
            }
            Pending::Fill(conversation) => {
                tracing::debug!(%error, %conversation, "filling a gap failed; retrying");
                self.tracker.filled(&conversation, Instant::now());
            }
            Pending::Resume | Pending::List { .. } => {
                // Without it messages or conversations would go missing: start over.
                tracing::warn!(%error, "resuming failed; reconnecting");
                conn.broken = Some(format!("resuming failed: {error}"));
            }
            Pending::Mark => {}
        }
    }

    /// One of the first sync's answers arrived.
    fn synced(&mut self, conn: &mut Conn) {
        if conn.syncing == 0 {
            return;
        }
        conn.syncing -= 1;
        if conn.syncing == 0 {
            // Only a connection that got as far as a full sync counts as a success: one
            // that is refused right after `hello` keeps backing off.
            self.backoff.reset();
            if let Some(first) = self.first.take() {
                let _ = first.send(Ok(conn.hello.clone()));
            }
        }
    }

    /// Hands an event to the application: into the channel when it has room, else into
    /// the backlog (kept in order; the socket is not read while the backlog is full).
    fn emit(&mut self, event: ClientEvent) {
        if self.backlog.is_empty() {
            match self.events.try_send(event) {
                // Closed: the application dropped its `Events`; nothing waits for them.
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(event)) => self.backlog.push_back(event),
            }
        } else {
            self.backlog.push_back(event);
        }
    }

    /// Volatile events (typing, presence) are dropped rather than kept when the
    /// application is behind.
    fn emit_volatile(&mut self, event: ClientEvent) {
        if self.backlog.is_empty() {
            let _ = self.events.try_send(event);
        }
    }

    /// True while the backlog is too long to read more from the socket. During the first
    /// sync it is not bounded: the application cannot read before `connect` returns.
    fn backlog_full(&self) -> bool {
        self.first.is_none() && self.backlog.len() >= self.backlog_cap
    }

    /// Moves the whole backlog into the channel, waiting for room.
    async fn drain_backlog(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            if self.events.send(event).await.is_err() {
                self.backlog.clear();
            }
        }
    }
}

/// A write's outcome: a failure or a timeout ends the connection.
fn written(
    outcome: Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>,
) -> Result<(), Ended> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Ended::Closed {
            code: None,
            reason: e.to_string(),
        }),
        Err(_) => Err(Ended::Closed {
            code: None,
            reason: "the server stopped reading".into(),
        }),
    }
}

fn take_pending(conn: &mut Conn, id: Option<RequestId>) -> Option<Pending> {
    match id {
        Some(RequestId::Number(n)) => conn.pending.remove(&n),
        _ => None,
    }
}
