//! Real servers on 127.0.0.1:0 (gRPC, plain or TLS; a WebSocket one on the same engine
//! when a test asks), certificates made at test time with rcgen, a tonic client and a
//! `Connect` stream helper.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::model::Limits;
use chat_core::ports::Store;
use chat_core::Engine;
use chat_transport_grpc::proto::{self, chat_service_client::ChatServiceClient};
use chat_transport_grpc::{GrpcConfig, GrpcState};
use chat_transport_ws::JwtAuthenticator;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status, Streaming};

pub(crate) const SECRET: &[u8] = b"test secret that is long enough";
pub(crate) const WAIT: Duration = Duration::from_secs(5);

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

pub(crate) fn token_with(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .expect("encode token")
}

/// Limits with no command rate, so tests may send as fast as they like.
pub(crate) fn unlimited() -> Limits {
    let mut l = Limits::default();
    l.commands_per_second = 0;
    l
}

pub(crate) async fn engine(limits: Limits) -> Engine {
    Engine::builder(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .limits(limits)
        .maintenance(None)
        .build()
        .await
        .expect("engine")
}

// ---------------------------------------------------------------------------------------
// Certificates

/// A PEM certificate with its key.
#[derive(Clone)]
pub(crate) struct Pem {
    pub cert: String,
    pub key: String,
}

/// A test PKI: a CA, a server certificate for `localhost`, client certificates, and a
/// second CA nobody trusts with a client certificate of its own.
pub(crate) struct Pki {
    pub ca: String,
    pub server: Pem,
    pub untrusted_ca: String,
    ca_issuer: CertifiedIssuer<'static, KeyPair>,
    untrusted_issuer: CertifiedIssuer<'static, KeyPair>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Pem {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, issuer).expect("signed");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let ca_issuer = ca("chat test CA");
        let untrusted_issuer = ca("someone else's CA");
        let server = leaf(
            &ca_issuer,
            "localhost",
            vec!["localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        Pki {
            ca: ca_issuer.pem(),
            untrusted_ca: untrusted_issuer.pem(),
            server,
            ca_issuer,
            untrusted_issuer,
        }
    }

    /// A client certificate whose subject CN is `user`, from the trusted CA.
    pub(crate) fn client(&self, user: &str) -> Pem {
        leaf(
            &self.ca_issuer,
            user,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// A client certificate from the CA nobody trusts.
    pub(crate) fn untrusted_client(&self, user: &str) -> Pem {
        leaf(
            &self.untrusted_issuer,
            user,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// The server's rustls configuration: client certificates from the CA are required
    /// (`required`) or optional.
    pub(crate) fn server_config(&self, required: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca.as_bytes()).expect("CA PEM"))
            .expect("root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        );
        let verifier = if required {
            verifier.build()
        } else {
            verifier.allow_unauthenticated().build()
        }
        .expect("verifier");
        let chain = vec![CertificateDer::from_pem_slice(self.server.cert.as_bytes()).expect("PEM")];
        let key = PrivateKeyDer::from_pem_slice(self.server.key.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(config)
    }
}

// ---------------------------------------------------------------------------------------
// Servers

pub(crate) struct Server {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub state: GrpcState,
    /// The WebSocket server on the same engine, when started with [`Server::with_ws`].
    pub ws_addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<chat_transport_grpc::Result<()>>>,
}

impl Server {
    pub(crate) async fn start() -> Server {
        Self::build(GrpcConfig::default(), Limits::default(), None, false).await
    }

    pub(crate) async fn tls(config: GrpcConfig, tls: Arc<rustls::ServerConfig>) -> Server {
        Self::build(config, Limits::default(), Some(tls), false).await
    }

    pub(crate) async fn with_ws(config: GrpcConfig, limits: Limits) -> Server {
        Self::build(config, limits, None, true).await
    }

    pub(crate) async fn build(
        config: GrpcConfig,
        limits: Limits,
        tls: Option<Arc<rustls::ServerConfig>>,
        ws: bool,
    ) -> Server {
        let engine = engine(limits).await;
        let auth = Arc::new(JwtAuthenticator::hs256(SECRET));
        let state = GrpcState::new(engine.clone(), auth.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(chat_transport_grpc::serve(
            listener,
            state.clone(),
            tls,
            async {
                let _ = stopped.await;
            },
        ));
        let ws_addr = if ws {
            let ws_state =
                chat_transport_ws::ChatState::new(engine.clone(), auth, Default::default());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(chat_transport_ws::serve(
                listener,
                ws_state,
                std::future::pending(),
            ));
            Some(addr)
        } else {
            None
        };
        Server {
            addr,
            engine,
            state,
            ws_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A plaintext channel to this server.
    pub(crate) async fn channel(&self) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr)).expect("endpoint");
        tokio::time::timeout(WAIT, endpoint.connect())
            .await
            .expect("connect in time")
            .expect("connect")
    }

    /// A TLS channel trusting `ca`, presenting `client` when given.
    pub(crate) async fn tls_channel(
        &self,
        ca: &str,
        client: Option<&Pem>,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        if let Some(c) = client {
            tls = tls.identity(Identity::from_pem(&c.cert, &c.key));
        }
        let endpoint = Endpoint::from_shared(format!("https://{}", self.addr))
            .expect("endpoint")
            .tls_config(tls)?
            .connect_timeout(WAIT);
        endpoint.connect().await
    }

    /// A plaintext API client for `user` (with a valid token).
    pub(crate) async fn api(&self, user: &str) -> Api {
        Api::new(self.channel().await, Some(token(user)))
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
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("server stops in time")
                .expect("join")
                .expect("serve");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Clients

/// A client with (or without) a bearer token.
#[derive(Clone)]
pub(crate) struct Api {
    pub client: ChatServiceClient<Channel>,
    pub token: Option<String>,
}

impl Api {
    pub(crate) fn new(channel: Channel, token: Option<String>) -> Api {
        Api {
            client: ChatServiceClient::new(channel),
            token,
        }
    }

    /// A request carrying this client's token.
    pub(crate) fn req<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        if let Some(t) = &self.token {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("metadata"),
            );
        }
        r.set_timeout(WAIT);
        r
    }

    pub(crate) fn c(&self) -> ChatServiceClient<Channel> {
        self.client.clone()
    }

    pub(crate) async fn create_room(&self, name: &str, private: bool) -> proto::Conversation {
        let visibility = if private {
            proto::Visibility::Private
        } else {
            proto::Visibility::Public
        };
        self.c()
            .create_room(self.req(proto::CreateRoomRequest {
                name: name.into(),
                visibility: visibility as i32,
            }))
            .await
            .expect("create room")
            .into_inner()
            .conversation
            .expect("conversation")
    }

    pub(crate) async fn join(&self, room: &str) -> proto::Conversation {
        self.c()
            .join(self.req(proto::JoinRequest {
                room: room.into(),
                create: false,
            }))
            .await
            .expect("join")
            .into_inner()
            .conversation
            .expect("conversation")
    }

    /// Makes `self` and `other` friends.
    pub(crate) async fn befriend(&self, other: &Api, other_user: &str, me: &str) {
        self.c()
            .friend_request(self.req(proto::UserRequest {
                user: other_user.into(),
            }))
            .await
            .expect("request");
        other
            .c()
            .friend_accept(other.req(proto::UserRequest { user: me.into() }))
            .await
            .expect("accept");
    }

    pub(crate) async fn send(&self, conversation: &str, body: &str) -> proto::Message {
        self.c()
            .send(self.req(proto::SendRequest {
                conversation: conversation.into(),
                body: body.into(),
                client_id: None,
                ..Default::default()
            }))
            .await
            .expect("send")
            .into_inner()
            .message
            .expect("message")
    }

    /// Opens a `Connect` stream and reads its hello.
    pub(crate) async fn connect(&self) -> Conn {
        self.try_connect().await.expect("connect")
    }

    pub(crate) async fn try_connect(&self) -> Result<Conn, Status> {
        let (tx, rx) = mpsc::channel(256);
        let response =
            tokio::time::timeout(WAIT, self.c().connect(self.req(ReceiverStream::new(rx))))
                .await
                .expect("connect in time")?;
        let mut conn = Conn {
            tx,
            rx: response.into_inner(),
            pending: VecDeque::new(),
            next_id: 0,
        };
        let hello = conn.next().await?.expect("a first frame");
        match hello.frame {
            Some(proto::server_frame::Frame::Hello(_)) => {}
            other => panic!("the first frame is hello, not {other:?}"),
        }
        conn.pending.push_front(hello);
        Ok(conn)
    }
}

use proto::client_frame::Command as Cmd;
use proto::server_frame::Frame;

/// A `Connect` stream: frames in, frames out.
pub(crate) struct Conn {
    pub tx: mpsc::Sender<proto::ClientFrame>,
    pub rx: Streaming<proto::ServerFrame>,
    /// Frames read but not yet consumed (the hello first).
    pub pending: VecDeque<proto::ServerFrame>,
    next_id: u64,
}

impl Conn {
    /// The next frame from the server: `Ok(None)` when the stream ended with `OK`,
    /// `Err` with the status that ended it.
    pub(crate) async fn next(&mut self) -> Result<Option<proto::ServerFrame>, Status> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Some(f));
        }
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a frame in time")
    }

    /// The hello frame.
    pub(crate) async fn hello(&mut self) -> proto::Hello {
        match self.next().await.expect("frame").expect("open") {
            proto::ServerFrame {
                frame: Some(Frame::Hello(h)),
                ..
            } => h,
            other => panic!("not hello: {other:?}"),
        }
    }

    pub(crate) async fn send_frame(&mut self, frame: proto::ClientFrame) {
        tokio::time::timeout(WAIT, self.tx.send(frame))
            .await
            .expect("send in time")
            .expect("stream open");
    }

    /// Sends a command with a fresh request id and returns its answer: the reply or the
    /// error frame.
    pub(crate) async fn request(&mut self, command: Cmd) -> Frame {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        self.send_frame(proto::ClientFrame {
            request_id: id.clone(),
            command: Some(command),
        })
        .await;
        let frame = self.wait_for(|f| f.request_id == id).await;
        frame.frame.expect("a frame")
    }

    /// The reply to a command, which must succeed.
    pub(crate) async fn ok(&mut self, command: Cmd) -> proto::reply::Reply {
        match self.request(command.clone()).await {
            Frame::Reply(r) => r.reply.expect("reply"),
            other => panic!("{command:?} failed: {other:?}"),
        }
    }

    /// The error code of a command, which must fail.
    pub(crate) async fn deny(&mut self, command: Cmd) -> String {
        match self.request(command.clone()).await {
            Frame::Error(e) => e.code,
            other => panic!("{command:?} should fail: {other:?}"),
        }
    }

    /// The first frame (pending or new) matching `pred`; others stay pending.
    pub(crate) async fn wait_for(
        &mut self,
        pred: impl Fn(&proto::ServerFrame) -> bool,
    ) -> proto::ServerFrame {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index");
        }
        loop {
            let f = tokio::time::timeout(WAIT, self.rx.message())
                .await
                .expect("a frame in time")
                .expect("stream open")
                .expect("stream not ended");
            if pred(&f) {
                return f;
            }
            self.pending.push_back(f);
        }
    }

    /// The next event matching `pred`.
    pub(crate) async fn event(
        &mut self,
        pred: impl Fn(&proto::event::Event) -> bool,
    ) -> proto::event::Event {
        let f = self
            .wait_for(|f| match &f.frame {
                Some(Frame::Event(proto::Event { event: Some(e) })) => pred(e),
                _ => false,
            })
            .await;
        match f.frame {
            Some(Frame::Event(proto::Event { event: Some(e) })) => e,
            _ => unreachable!("matched an event"),
        }
    }

    /// Reads until the stream ends; returns its end (skipping frames).
    pub(crate) async fn end(&mut self) -> Result<(), Status> {
        self.pending.clear();
        for _ in 0..100_000 {
            match tokio::time::timeout(WAIT, self.rx.message())
                .await
                .expect("the stream ends in time")
            {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) => return Err(status),
            }
        }
        panic!("the stream did not end");
    }
}

/// The stable code a status carries.
pub(crate) fn code_of(status: &Status) -> Option<String> {
    chat_transport_grpc::error::stable_code(status).map(str::to_owned)
}

// ---------------------------------------------------------------------------------------
// A WebSocket client (protocol v1, JSON) on the same engine

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub(crate) struct WsClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pending: VecDeque<Value>,
    next_id: u64,
}

impl WsClient {
    /// Connects `user` to the server's WebSocket and reads the hello.
    pub(crate) async fn connect(server: &Server, user: &str) -> WsClient {
        let addr = server.ws_addr.expect("a WebSocket server");
        let mut req = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", token(user)).parse().expect("header"),
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut c = WsClient {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
        };
        let hello = c.read().await;
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["user"], user);
        c
    }

    async fn read(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            match msg {
                WsMessage::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
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

    /// The reply to a command, which must succeed.
    pub(crate) async fn ok(&mut self, mut command: Value) -> Value {
        self.next_id += 1;
        let id = format!("w{}", self.next_id);
        command["id"] = json!(id);
        tokio::time::timeout(WAIT, self.ws.send(WsMessage::text(command.to_string())))
            .await
            .expect("send in time")
            .expect("send");
        let frame = self.wait_for(|f| f["id"] == json!(id)).await;
        assert_eq!(frame["type"], "reply", "{command} failed: {frame}");
        frame["reply"].clone()
    }

    /// The next event of this type matching `pred`.
    pub(crate) async fn event(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(|f| f["type"] == kind && pred(f)).await
    }
}
