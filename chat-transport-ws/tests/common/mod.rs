//! A real server on 127.0.0.1:0, and two kinds of client: [`chat_client::Client`] for
//! tests of behaviour, and a hand-driven WebSocket (tokio-tungstenite, [`Client`]) for
//! tests of the wire itself.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_client::ClientEvent;
use chat_core::memory::MemoryStore;
use chat_core::model::Limits;
use chat_core::ports::Store;
use chat_core::{Engine, Event, UserId};
use chat_tls::rustls::{ClientConfig, ServerConfig};
use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Request;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) const SECRET: &[u8] = b"test secret that is long enough";
pub(crate) const WAIT: Duration = Duration::from_secs(5);

pub(crate) fn uid(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An HS256 token for `user`, valid for an hour.
pub(crate) fn token(user: &str) -> String {
    token_with(json!({"sub": user, "exp": now() + 3600}))
}

pub(crate) fn token_with(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .expect("encode token")
}

pub(crate) async fn engine(limits: Limits) -> Engine {
    Engine::builder(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .limits(limits)
        .maintenance(None)
        .build()
        .await
        .expect("engine")
}

pub(crate) struct Server {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub state: ChatState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Over TLS: the client config its clients use (`wss://`).
    pub client_tls: Option<Arc<ClientConfig>>,
}

impl Server {
    pub(crate) async fn start() -> Server {
        Self::with(Config::default(), Limits::default()).await
    }

    pub(crate) async fn with(config: Config, limits: Limits) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::on(listener, config, limits).await
    }

    /// A server on a listener the test prepared (accepted sockets inherit its options).
    pub(crate) async fn on(
        listener: tokio::net::TcpListener,
        config: Config,
        limits: Limits,
    ) -> Server {
        let engine = engine(limits).await;
        let state = ChatState::new(
            engine.clone(),
            Arc::new(JwtAuthenticator::hs256(SECRET)),
            config,
        );
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(chat_transport_ws::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            engine,
            state,
            stop: Some(stop),
            task: Some(task),
            client_tls: None,
        }
    }

    /// A server over TLS (`serve_tls` with `tls`) on 127.0.0.1:0, whose clients connect
    /// to `wss://` with `client`.
    pub(crate) async fn tls(
        config: Config,
        tls: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let engine = engine(Limits::default()).await;
        let state = ChatState::new(
            engine.clone(),
            Arc::new(JwtAuthenticator::hs256(SECRET)),
            config,
        );
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(chat_transport_ws::serve_tls(
            listener,
            state.clone(),
            tls,
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            engine,
            state,
            stop: Some(stop),
            task: Some(task),
            client_tls: Some(client),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = if self.client_tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}{}", self.addr, path)
    }

    /// The WebSocket handshake of `req`, over TLS when this server is (the default
    /// connector otherwise).
    pub(crate) async fn handshake(
        &self,
        req: Request<()>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let connector = self
            .client_tls
            .clone()
            .map(tokio_tungstenite::Connector::Rustls);
        tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector),
        )
        .await
        .expect("handshake in time")
        .map(|(ws, _)| ws)
    }

    /// Connects `user` to `/ws` with a bearer token and reads the hello.
    pub(crate) async fn connect(&self, user: &str) -> Client {
        self.connect_path(user, "/ws").await
    }

    pub(crate) async fn connect_path(&self, user: &str, path: &str) -> Client {
        self.connect_token(user, path, &token(user)).await
    }

    /// Connects to `path` with this bearer token, which must be `user`'s, and reads the
    /// hello.
    pub(crate) async fn connect_token(&self, user: &str, path: &str, token: &str) -> Client {
        let mut req = self.url(path).into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let ws = self.handshake(req).await.expect("connect");
        let mut c = Client::new(ws);
        let hello = c.next().await;
        assert_eq!(hello["type"], "hello", "first frame is hello: {hello}");
        assert_eq!(hello["user"], user);
        c
    }

    /// Connects `user` to `/ws` with [`chat_client`] (a fixed token; delivery is not
    /// acknowledged by itself, so that the tests decide when it is).
    pub(crate) async fn client(&self, user: &str) -> (chat_client::Client, Events) {
        let mut config = chat_client::Config::new(self.url("/ws"));
        config.auto_mark_delivered = false;
        let (client, events) =
            tokio::time::timeout(WAIT, chat_client::Client::connect(config, token(user)))
                .await
                .expect("connects in time")
                .expect("connects");
        assert_eq!(client.hello().expect("hello").user, uid(user));
        (client, Events::new(events))
    }

    /// Waits (polling) until the engine counts `n` connections.
    pub(crate) async fn wait_connections(&self, n: u64) {
        let engine = self.engine.clone();
        tokio::time::timeout(WAIT, async move {
            while engine.stats().connections != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {n} connections"));
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops in time")
                .expect("join")
                .expect("serve");
        }
    }
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) struct Client {
    pub ws: Ws,
    /// Frames read but not yet consumed.
    pub pending: VecDeque<Value>,
    next_id: u64,
}

impl Client {
    pub(crate) fn new(ws: Ws) -> Client {
        Client {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
        }
    }

    pub(crate) async fn send_text(&mut self, text: impl Into<String>) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text.into())))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// Reads one text frame from the socket (skipping pings), parsed.
    pub(crate) async fn read(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("stream open")
                .expect("frame");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next frame, pending first.
    pub(crate) async fn next(&mut self) -> Value {
        match self.pending.pop_front() {
            Some(v) => v,
            None => self.read().await,
        }
    }

    /// Sends a command with a fresh id and returns its reply or error frame.
    pub(crate) async fn request(&mut self, mut command: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        command["id"] = json!(id);
        self.send_text(command.to_string()).await;
        self.wait_for(|f| f["id"] == json!(id)).await
    }

    /// The reply to a command, which must succeed.
    pub(crate) async fn ok(&mut self, command: Value) -> Value {
        let frame = self.request(command.clone()).await;
        assert_eq!(frame["type"], "reply", "{command} failed: {frame}");
        frame["reply"].clone()
    }

    /// The error code of a command, which must fail.
    pub(crate) async fn deny(&mut self, command: Value) -> String {
        let frame = self.request(command.clone()).await;
        assert_eq!(frame["type"], "error", "{command} should fail: {frame}");
        frame["code"].as_str().expect("code").to_owned()
    }

    /// The first frame (pending or new) matching `pred`; others stay pending.
    pub(crate) async fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index");
        }
        loop {
            let f = self.read().await;
            if pred(&f) {
                return f;
            }
            self.pending.push_back(f);
        }
    }

    /// The next event of this type.
    pub(crate) async fn event(&mut self, kind: &str) -> Value {
        self.wait_for(|f| f["type"] == kind).await
    }

    /// Reads until the server closes; returns the close code (skipping text frames).
    pub(crate) async fn close_code(&mut self) -> Option<u16> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("close in time");
            match msg {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f: CloseFrame| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// Reads until the server's close frame and returns its code, skipping every other frame;
/// then keeps reading until the stream ends, so that the client's answer to the close
/// goes out. `None` when the stream ended or failed (a reset) without a close frame.
pub(crate) async fn read_close<S>(stream: &mut S) -> Option<u16>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let code = loop {
        let msg = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("close in time");
        match msg {
            None | Some(Err(_)) => return None,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
        }
    };
    let _ = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    code
}

/// How a [`keep_writing`] task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// Frames sent.
    pub frames: usize,
    /// True when a send failed (the connection was closing or closed) before `max`;
    /// false when all went out, or a send stayed blocked for [`WAIT`].
    pub stopped_by_close: bool,
}

/// Sends `frame` again and again (pausing `every` between sends, or only yielding when
/// zero) until a send fails or `max` frames went out.
pub(crate) fn keep_writing<S>(
    mut sink: S,
    frame: String,
    every: Duration,
    max: usize,
) -> tokio::task::JoinHandle<Written>
where
    S: futures::Sink<Message> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        for frames in 0..max {
            match tokio::time::timeout(WAIT, sink.send(Message::text(frame.clone()))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Written {
                        frames,
                        stopped_by_close: true,
                    }
                }
                // Blocked: the server stopped reading.
                Err(_) => {
                    return Written {
                        frames,
                        stopped_by_close: false,
                    }
                }
            }
            if every.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(every).await;
            }
        }
        Written {
            frames: max,
            stopped_by_close: false,
        }
    })
}

/// Connects `user` to `/ws` on a socket with a tiny receive buffer, so that what the
/// server sends and the client does not read stays on the server. Reads nothing.
pub(crate) async fn connect_slow(server: &Server, user: &str) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(server.addr).await.expect("tcp");
    let mut req = server.url("/ws").into_client_request().expect("req");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(user)).parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
        .await
        .expect("slow client connects");
    ws
}

/// A [`chat_client::Events`] with the events read but not yet consumed.
pub(crate) struct Events {
    events: chat_client::Events,
    pending: VecDeque<ClientEvent>,
}

impl Events {
    pub(crate) fn new(events: chat_client::Events) -> Events {
        Events {
            events,
            pending: VecDeque::new(),
        }
    }

    /// The next client event, within [`WAIT`].
    pub(crate) async fn next(&mut self) -> ClientEvent {
        if let Some(e) = self.pending.pop_front() {
            return e;
        }
        tokio::time::timeout(WAIT, self.events.next())
            .await
            .expect("an event in time")
            .expect("the client is open")
    }

    /// The first server event (pending or new) that `pick` accepts; others stay pending.
    pub(crate) async fn event<T>(&mut self, pick: impl Fn(&Event) -> Option<T>) -> T {
        let found = self.pending.iter().enumerate().find_map(|(i, e)| match e {
            ClientEvent::Event(e) => pick(e).map(|t| (i, t)),
            _ => None,
        });
        if let Some((i, t)) = found {
            self.pending.remove(i);
            return t;
        }
        loop {
            let e = tokio::time::timeout(WAIT, self.events.next())
                .await
                .expect("an event in time")
                .expect("the client is open");
            if let ClientEvent::Event(event) = &e {
                if let Some(t) = pick(event) {
                    return t;
                }
            }
            self.pending.push_back(e);
        }
    }

    /// The next `message` event.
    pub(crate) async fn message(&mut self) -> chat_core::model::Message {
        self.event(|e| match e {
            Event::Message { message } => Some(message.clone()),
            _ => None,
        })
        .await
    }
}
