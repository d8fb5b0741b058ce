//! One simulated client: connect, handshake, join, then pump frames both ways.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::proto::{Incoming, Proto, Stamp};

/// A client's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest a connect, handshake or join may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Counters and the latency histogram shared by every client of a run.
#[allow(missing_debug_implementations)] // counters and a histogram: nothing to read in a dump
pub struct Shared {
    /// Stamps count nanoseconds from here.
    pub epoch: Instant,
    /// Messages received from other members.
    pub deliveries: AtomicU64,
    /// Messages written.
    pub sent: AtomicU64,
    /// Payload bytes of the data frames clients received while pumping.
    pub rx_bytes: AtomicU64,
    /// Our sends acknowledged.
    pub acks: AtomicU64,
    /// A client's own messages delivered back to it as `message` events (the protocol
    /// answers the sender with `sent` only).
    pub own_echoes: AtomicU64,
    /// Error frames received.
    pub errors: AtomicU64,
    /// Connections the server closed (slow consumer cut-offs, among others).
    pub server_closed: AtomicU64,
    /// Latencies are recorded only while this is set.
    pub recording: AtomicBool,
    /// Publish-to-deliver latency in microseconds.
    pub hist: Mutex<Histogram<u64>>,
    /// Per room: messages written to it.
    pub room_sent: Vec<AtomicU64>,
    /// Per room: the highest seq acknowledged to a sender (ours only).
    pub room_seq: Vec<AtomicU64>,
    /// Per room: sends the server acknowledged (ours only; the peers acknowledge none).
    pub room_acked: Vec<AtomicU64>,
    /// Per room: deliveries to its members (a sender's own echoes not counted).
    pub room_delivered: Vec<AtomicU64>,
    /// The first error frame, for the report.
    pub first_error: Mutex<Option<String>>,
    /// Several nodes: members per room and nodes, so that a delivery knows whether it
    /// crossed the bus (member `m` of a room is on node `m mod nodes`). `(1, 1)`: one.
    pub topology: (usize, usize),
    /// Several nodes: the latency of deliveries whose sender is on the receiver's node.
    pub hist_same_node: Mutex<Histogram<u64>>,
    /// Several nodes: the latency of deliveries that crossed the bus.
    pub hist_cross_node: Mutex<Histogram<u64>>,
}

impl Shared {
    /// Counters for `rooms` rooms.
    pub fn new(rooms: usize) -> Shared {
        Shared {
            epoch: Instant::now(),
            deliveries: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            own_echoes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            server_closed: AtomicU64::new(0),
            recording: AtomicBool::new(false),
            hist: Mutex::new(new_histogram()),
            room_sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            room_seq: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            room_acked: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            room_delivered: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            first_error: Mutex::new(None),
            topology: (1, 1),
            hist_same_node: Mutex::new(new_histogram()),
            hist_cross_node: Mutex::new(new_histogram()),
        }
    }

    /// Whether a delivery from client `sender` to client `receiver` crossed the bus.
    pub fn crosses_nodes(&self, sender: u32, receiver: u32) -> bool {
        let (members, nodes) = self.topology;
        let node = |id: u32| (id as usize % members.max(1)) % nodes.max(1);
        nodes > 1 && node(sender) != node(receiver)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn error(&self, text: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(text);
        }
    }
}

/// A histogram of microseconds from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Which seqs of its room a client holds: everything up to `contiguous`, plus `ahead`.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    /// Every seq up to this one was received (or sent by this client).
    pub contiguous: u64,
    /// Seqs received above a gap.
    pub ahead: BTreeSet<u64>,
    /// Seqs received twice.
    pub duplicates: u64,
}

impl Tracker {
    /// Records a seq.
    pub fn on_seq(&mut self, seq: u64) {
        if seq <= self.contiguous || !self.ahead.insert(seq) {
            self.duplicates += 1;
            return;
        }
        while self.ahead.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
    }
}

/// A connected client.
#[allow(missing_debug_implementations)] // holds a socket
pub struct Client {
    /// Its number (also its user id's suffix).
    pub id: u32,
    /// The protocol.
    pub proto: Proto,
    /// Its room's index.
    pub room: usize,
    /// Its room as the protocol names it (our conversation id, or the peers' name).
    pub handle: String,
    /// The socket.
    pub ws: Ws,
    /// Ours: the seqs held.
    pub tracker: Tracker,
    /// Messages this client wrote.
    pub written: u32,
}

impl Client {
    /// A client fresh from its connection (and join): no seq held, nothing written.
    pub fn new(id: u32, proto: Proto, room: usize, handle: String, ws: Ws) -> Self {
        Client {
            id,
            proto,
            room,
            handle,
            ws,
            tracker: Tracker::default(),
            written: 0,
        }
    }
}

/// Connects and completes the protocol's handshake.
///
/// # Errors
/// A description of what failed.
pub async fn connect(proto: Proto, addr: &str, token: &str) -> Result<Ws, String> {
    connect_with(proto, addr, token, None).await
}

/// Connects with an optional small receive buffer (a slow consumer's), and completes the
/// protocol's handshake.
///
/// # Errors
/// A description of what failed.
pub async fn connect_with(
    proto: Proto,
    addr: &str,
    token: &str,
    recv_buffer: Option<u32>,
) -> Result<Ws, String> {
    let url = proto.url(addr, token);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * 1024 * 1024);
    let request = with_subprotocol(url.clone(), proto)?;
    let sock_addr: std::net::SocketAddr =
        addr.parse().map_err(|e| format!("address {addr}: {e}"))?;
    let fut = async {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| format!("SO_RCVBUF: {e}"))?;
        }
        let tcp = socket
            .connect(sock_addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        match super::tls::ws_tls() {
            // wss:// (`--tls-ca`): rustls with the installed trust.
            Some(tls) => tokio_tungstenite::client_async_tls_with_config(
                with_subprotocol(url.replacen("ws://", "wss://", 1), proto)?,
                tcp,
                Some(config),
                Some(tokio_tungstenite::Connector::Rustls(tls)),
            )
            .await
            .map_err(|e| format!("handshake: {e}")),
            None => tokio_tungstenite::client_async_with_config(
                request,
                MaybeTlsStream::Plain(tcp),
                Some(config),
            )
            .await
            .map_err(|e| format!("handshake: {e}")),
        }
    };
    let (mut ws, _) = tokio::time::timeout(SETUP_TIMEOUT, fut)
        .await
        .map_err(|_| "connect timed out".to_owned())??;
    match proto {
        Proto::Chat | Proto::ChatProto => {
            expect(&mut ws, proto, |i| matches!(i, Incoming::Ready)).await?;
        }
        Proto::SocketIo => {
            expect(&mut ws, proto, |i| matches!(i, Incoming::Open)).await?;
            ws.send(Message::text("40"))
                .await
                .map_err(|e| format!("send 40: {e}"))?;
            expect(&mut ws, proto, |i| matches!(i, Incoming::Ready)).await?;
        }
        Proto::PyWs => {}
    }
    Ok(ws)
}

/// The handshake request for `url`, asking for the protocol's subprotocol if it has one.
fn with_subprotocol(
    url: String,
    proto: Proto,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    if let Some(p) = proto.subprotocol() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            p.parse().map_err(|e| format!("subprotocol: {e}"))?,
        );
    }
    Ok(request)
}

/// Joins a room by name; returns the protocol's handle of it.
///
/// # Errors
/// A description of what failed.
pub async fn join(ws: &mut Ws, proto: Proto, room: &str) -> Result<String, String> {
    ws.send(proto.join_message(room))
        .await
        .map_err(|e| format!("send join: {e}"))?;
    let joined = expect(ws, proto, |i| matches!(i, Incoming::Joined(_))).await?;
    match (proto, joined) {
        (Proto::Chat | Proto::ChatProto, Incoming::Joined(id)) => Ok(id),
        _ => Ok(room.to_owned()),
    }
}

/// Sends a raw frame.
///
/// # Errors
/// A description of what failed.
pub async fn send_text(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Reads until a frame matches; answers Socket.IO pings on the way.
///
/// # Errors
/// Time-out, an error frame, or a closed socket.
pub async fn expect(
    ws: &mut Ws,
    proto: Proto,
    want: impl Fn(&Incoming) -> bool,
) -> Result<Incoming, String> {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "timed out waiting for the server".to_owned())?;
        let msg = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("closed by the server".into()),
        };
        let Some(incoming) = proto.classify_message(&msg) else {
            if let Message::Close(c) = msg {
                return Err(format!("closed by the server: {c:?}"));
            }
            continue;
        };
        if want(&incoming) {
            return Ok(incoming);
        }
        match incoming {
            Incoming::Ping => send_text(ws, "3".into()).await?,
            Incoming::Error(e) => return Err(format!("error frame: {e}")),
            _ => {}
        }
    }
}

/// Why [`Client::pump`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The phase reached the client's exit point.
    Phase,
    /// The server closed the connection.
    ServerClosed,
    /// The socket failed.
    Error,
}

/// Phases a run goes through; clients pump until the phase reaches their exit.
pub mod phase {
    /// Running.
    pub const RUN: u8 = 0;
    /// Reconnect storm: the storm clients drop their connections.
    pub const DROP: u8 = 1;
    /// Stop.
    pub const STOP: u8 = 2;
}

impl Client {
    /// Handles one frame from the server; returns a frame to answer with, if any.
    pub fn on_text(&mut self, shared: &Shared, text: &str) -> Option<&'static str> {
        let incoming = self.proto.classify(text);
        self.on_incoming(shared, incoming)
    }

    /// Handles one data message from the server (text or binary); returns a frame to
    /// answer with, if any.
    pub fn on_message(&mut self, shared: &Shared, msg: &Message) -> Option<&'static str> {
        shared
            .rx_bytes
            .fetch_add(msg.len() as u64, Ordering::Relaxed);
        let incoming = self.proto.classify_message(msg)?;
        self.on_incoming(shared, incoming)
    }

    fn on_incoming(&mut self, shared: &Shared, incoming: Incoming) -> Option<&'static str> {
        match incoming {
            Incoming::Delivery { stamp, seq } if stamp.sender == self.id => {
                // Our own message as an event: the sender has it as its `sent` reply
                // already. Counted apart, neither a delivery nor a latency sample.
                shared.own_echoes.fetch_add(1, Ordering::Relaxed);
                if let Some(seq) = seq {
                    self.tracker.on_seq(seq);
                }
                None
            }
            Incoming::Delivery { stamp, seq } => {
                shared.deliveries.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = shared.room_delivered.get(self.room) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                if shared.recording.load(Ordering::Relaxed) {
                    let now = shared.now_ns();
                    let us = now.saturating_sub(stamp.sent_ns) / 1000;
                    let mut h = shared.hist.lock().unwrap_or_else(|p| p.into_inner());
                    h.saturating_record(us.max(1));
                    drop(h);
                    if shared.topology.1 > 1 {
                        let split = if shared.crosses_nodes(stamp.sender, self.id) {
                            &shared.hist_cross_node
                        } else {
                            &shared.hist_same_node
                        };
                        let mut h = split.lock().unwrap_or_else(|p| p.into_inner());
                        h.saturating_record(us.max(1));
                    }
                }
                if let Some(seq) = seq {
                    self.tracker.on_seq(seq);
                }
                None
            }
            Incoming::Sent { seq } => {
                shared.acks.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = shared.room_acked.get(self.room) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(seq) = seq {
                    self.tracker.on_seq(seq);
                    shared.room_seq[self.room].fetch_max(seq, Ordering::Relaxed);
                }
                None
            }
            Incoming::Ping => Some("3"),
            Incoming::Error(e) => {
                shared.error(e);
                None
            }
            _ => None,
        }
    }

    /// The next message frame this client sends, stamped now.
    pub fn next_message(&mut self, shared: &Shared) -> Message {
        let stamp = Stamp {
            sent_ns: shared.now_ns(),
            sender: self.id,
            n: self.written,
        };
        self.written += 1;
        self.proto.send_message(&self.handle, &stamp.body())
    }

    /// Reads and counts what arrives, and writes a message for every tick received on
    /// `sends`, until `phase` reaches `exit_at`. A slow client neither reads nor writes.
    pub async fn pump(
        &mut self,
        shared: &Shared,
        sends: &mut mpsc::Receiver<()>,
        phase: &mut watch::Receiver<u8>,
        exit_at: u8,
        slow: bool,
    ) -> Exit {
        let mut sends_open = true;
        loop {
            if *phase.borrow_and_update() >= exit_at {
                return Exit::Phase;
            }
            if slow {
                if phase.changed().await.is_err() {
                    return Exit::Phase;
                }
                continue;
            }
            tokio::select! {
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Exit::Phase;
                    }
                }
                tick = sends.recv(), if sends_open => {
                    if tick.is_some() {
                        let frame = self.next_message(shared);
                        if self.ws.send(frame).await.is_err() {
                            return Exit::Error;
                        }
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                        shared.room_sent[self.room].fetch_add(1, Ordering::Relaxed);
                    } else {
                        // No more sends: only read from now on.
                        sends_open = false;
                    }
                }
                msg = self.ws.next() => match msg {
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        if let Some(answer) = self.on_message(shared, &msg) {
                            if self.ws.send(Message::text(answer)).await.is_err() {
                                return Exit::Error;
                            }
                        }
                        // Take what else is already buffered without going back
                        // through the select.
                        for _ in 0..64 {
                            match self.ws.next().now_or_never() {
                                Some(Some(Ok(msg @ (Message::Text(_) | Message::Binary(_))))) => {
                                    if let Some(answer) = self.on_message(shared, &msg) {
                                        if self.ws.send(Message::text(answer)).await.is_err() {
                                            return Exit::Error;
                                        }
                                    }
                                }
                                Some(Some(Ok(_))) => {}
                                _ => break,
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        shared.server_closed.fetch_add(1, Ordering::Relaxed);
                        return Exit::ServerClosed;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) => {
                        shared.server_closed.fetch_add(1, Ordering::Relaxed);
                        return Exit::Error;
                    }
                },
            }
        }
    }
}
