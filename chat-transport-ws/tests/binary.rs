//! The binary subprotocol `chat.v1.proto`: protocol v1 as protobuf frames
//! (`proto/chat.proto`'s `ClientFrame` and `ServerFrame`), chosen by the client's
//! `Sec-WebSocket-Protocol`, next to JSON on the same endpoint and in the same fan-out.

mod common;

use chat_proto::proto::{self, client_frame::Command as Cmd, server_frame::Frame};
use chat_transport_ws::{SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO};
use common::*;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A hand-driven WebSocket that speaks protobuf.
struct ProtoClient {
    ws: Ws,
    next_id: u64,
}

/// Connects `user` to `path` offering `protocols`, and returns the socket and the
/// subprotocol the server chose (if any).
async fn open(server: &Server, user: &str, path: &str, protocols: &str) -> (Ws, Option<String>) {
    let mut req = server.url(path).into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(user)).parse().expect("header"),
    );
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().expect("header"));
    let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (ws, chosen)
}

impl ProtoClient {
    /// Connects `user` with the binary subprotocol and reads the `hello`.
    async fn connect(server: &Server, user: &str) -> (ProtoClient, proto::Hello) {
        Self::connect_path(server, user, "/ws").await
    }

    async fn connect_path(server: &Server, user: &str, path: &str) -> (ProtoClient, proto::Hello) {
        let (ws, chosen) = open(server, user, path, SUBPROTOCOL_PROTO).await;
        assert_eq!(chosen.as_deref(), Some(SUBPROTOCOL_PROTO));
        let mut c = ProtoClient { ws, next_id: 0 };
        let hello = match c.read().await {
            proto::ServerFrame {
                frame: Some(Frame::Hello(h)),
                request_id,
            } => {
                assert_eq!(request_id, "");
                h
            }
            other => panic!("the first frame is hello: {other:?}"),
        };
        (c, hello)
    }

    async fn send_bytes(&mut self, bytes: Vec<u8>) {
        tokio::time::timeout(WAIT, self.ws.send(Message::binary(bytes)))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// Reads one binary frame (skipping pings), decoded.
    async fn read(&mut self) -> proto::ServerFrame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("stream open")
                .expect("frame");
            match msg {
                Message::Binary(b) => return proto::ServerFrame::decode(b).expect("a ServerFrame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("a binary frame, not {other:?}"),
            }
        }
    }

    /// Reads until a frame with this request id: its reply or error.
    async fn answer(&mut self, id: &str) -> Frame {
        loop {
            let f = self.read().await;
            if f.request_id == id {
                return f.frame.expect("a frame");
            }
        }
    }

    /// Sends a command with a fresh request id and returns its answer.
    async fn request(&mut self, command: Cmd) -> Frame {
        self.next_id += 1;
        let id = format!("p{}", self.next_id);
        let frame = proto::ClientFrame {
            request_id: id.clone(),
            command: Some(command),
        };
        self.send_bytes(frame.encode_to_vec()).await;
        self.answer(&id).await
    }

    /// The reply to a command, which must succeed.
    async fn ok(&mut self, command: Cmd) -> proto::reply::Reply {
        match self.request(command).await {
            Frame::Reply(proto::Reply { reply: Some(r) }) => r,
            other => panic!("a reply, not {other:?}"),
        }
    }

    /// The error of a command, which must fail.
    async fn deny(&mut self, command: Cmd) -> proto::ErrorFrame {
        match self.request(command).await {
            Frame::Error(e) => e,
            other => panic!("an error, not {other:?}"),
        }
    }

    /// Reads until an event.
    async fn event(&mut self) -> proto::event::Event {
        loop {
            if let proto::ServerFrame {
                frame: Some(Frame::Event(proto::Event { event: Some(e) })),
                ..
            } = self.read().await
            {
                return e;
            }
        }
    }
}

fn join(room: &str, create: bool) -> Cmd {
    Cmd::Join(proto::JoinRequest {
        room: room.into(),
        create,
    })
}

fn send(conversation: &str, body: &str) -> Cmd {
    Cmd::Send(proto::SendRequest {
        conversation: conversation.into(),
        body: body.into(),
        client_id: Some("c-1".into()),
        reply_to: None,
        attachments: Vec::new(),
    })
}

fn room_id(reply: proto::reply::Reply) -> String {
    match reply {
        proto::reply::Reply::Room(r) => r.conversation.expect("conversation").id,
        other => panic!("a room reply, not {other:?}"),
    }
}

#[tokio::test]
async fn protobuf_and_json_clients_share_a_room_and_each_reads_its_own_encoding() {
    let server = Server::start().await;
    let (mut alice, hello) = ProtoClient::connect(&server, "alice").await;
    assert_eq!(hello.protocol, 1);
    assert_eq!(hello.user, "alice");
    let limits = hello.limits.expect("limits");
    let cfg = server.state.config();
    assert_eq!(limits.max_frame_bytes, cfg.max_message_bytes as u64);
    assert_eq!(limits.idle_timeout_ms, cfg.idle_timeout.as_millis() as u64);
    assert_eq!(limits.max_frames_per_window, cfg.max_frames_per_window);
    assert!(limits.max_body_bytes > 0 && limits.queue_capacity > 0);

    let (mut bob, _) = ProtoClient::connect(&server, "bob").await;
    let mut carol = server.connect("carol").await;

    let room = room_id(alice.ok(join("general", true)).await);
    room_id(bob.ok(join("general", false)).await);
    carol.ok(json!({"type": "join", "room": "general"})).await;

    let sent = match alice.ok(send(&room, "hi, in protobuf")).await {
        proto::reply::Reply::Sent(s) => s,
        other => panic!("{other:?}"),
    };
    let message = sent.message.expect("message");
    assert_eq!((message.seq, message.body.as_str()), (1, "hi, in protobuf"));
    assert!(!sent.duplicate);

    // Bob (protobuf) gets the event as a binary frame, Carol (JSON) as text: one
    // fan-out, each connection in its own encoding.
    let got = loop {
        if let proto::event::Event::Message(m) = bob.event().await {
            break m.message.expect("message");
        }
    };
    assert_eq!(got.conversation, room);
    assert_eq!((got.seq, got.sender.as_str()), (1, "alice"));
    assert_eq!(got.body, "hi, in protobuf");
    assert_eq!(got.client_id.as_deref(), Some("c-1"));
    assert!(got.created_at.is_some());
    let json_event = carol.event("message").await;
    assert_eq!(json_event["message"]["body"], "hi, in protobuf");
    assert_eq!(json_event["message"]["seq"], 1);

    // The same client id is a duplicate, answered with the original.
    match alice.ok(send(&room, "again")).await {
        proto::reply::Reply::Sent(s) => {
            assert!(s.duplicate);
            assert_eq!(s.message.expect("message").body, "hi, in protobuf");
        }
        other => panic!("{other:?}"),
    }

    // History and marks answer in protobuf too.
    match bob
        .ok(Cmd::History(proto::HistoryRequest {
            conversation: room.clone(),
            before: None,
            after: None,
            limit: Some(10),
            thread: None,
        }))
        .await
    {
        proto::reply::Reply::History(h) => {
            assert_eq!(h.last_seq, 1);
            assert_eq!(h.messages.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    match bob
        .ok(Cmd::MarkRead(proto::MarkRequest {
            conversation: room.clone(),
            seq: 1,
        }))
        .await
    {
        proto::reply::Reply::Marks(m) => assert_eq!(m.read_seq, 1),
        other => panic!("{other:?}"),
    }
    let receipt = loop {
        if let proto::event::Event::Receipt(r) = alice.event().await {
            if r.user == "bob" && r.read_seq == 1 {
                break r;
            }
        }
    };
    assert_eq!(receipt.conversation, room);
}

#[tokio::test]
async fn bad_binary_frames_get_invalid_and_the_connection_goes_on() {
    let server = Server::start().await;
    let (mut alice, _) = ProtoClient::connect(&server, "alice").await;

    // Bytes that are not a ClientFrame: `invalid`, no request id.
    alice.send_bytes(vec![0xff, 0xff, 0xff, 0x01]).await;
    match alice.read().await {
        proto::ServerFrame {
            request_id,
            frame: Some(Frame::Error(e)),
        } => {
            assert_eq!(request_id, "");
            assert_eq!(e.code, "invalid");
            assert!(e.message.contains("ClientFrame"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }

    // A frame without a command, and a command with a bad id: `invalid`, with the id.
    let empty = proto::ClientFrame {
        request_id: "e1".into(),
        command: None,
    };
    alice.send_bytes(empty.encode_to_vec()).await;
    match alice.answer("e1").await {
        Frame::Error(e) => assert_eq!(e.code, "invalid"),
        other => panic!("{other:?}"),
    }
    let bad = alice.deny(send("not-an-id", "x")).await;
    assert_eq!(bad.code, "invalid");

    // A request id longer than 64 bytes: `invalid`, echoed without it.
    let long = proto::ClientFrame {
        request_id: "x".repeat(65),
        command: Some(join("general", true)),
    };
    alice.send_bytes(long.encode_to_vec()).await;
    match alice.read().await {
        proto::ServerFrame {
            request_id,
            frame: Some(Frame::Error(e)),
        } => {
            assert_eq!(request_id, "");
            assert_eq!(e.code, "invalid");
        }
        other => panic!("{other:?}"),
    }

    // A text frame on the binary subprotocol: `invalid`, as a binary frame.
    tokio::time::timeout(WAIT, alice.ws.send(Message::text(r#"{"type":"join"}"#)))
        .await
        .expect("in time")
        .expect("send");
    match alice.read().await {
        proto::ServerFrame {
            frame: Some(Frame::Error(e)),
            ..
        } => {
            assert_eq!(e.code, "invalid");
            assert!(e.message.contains(SUBPROTOCOL_PROTO), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }

    // A room kept from alice and a room that does not exist get the same answer.
    let (mut bob, _) = ProtoClient::connect(&server, "bob").await;
    let private = match bob
        .ok(Cmd::CreateRoom(proto::CreateRoomRequest {
            name: "secret".into(),
            visibility: proto::Visibility::Private as i32,
        }))
        .await
    {
        proto::reply::Reply::Room(r) => r.conversation.expect("conversation").id,
        other => panic!("{other:?}"),
    };
    let hidden = alice.deny(send(&private, "let me in")).await;
    let missing = alice
        .deny(send("0190f0c0-0000-7000-8000-00000000abcd", "anyone?"))
        .await;
    assert_eq!(hidden.code, missing.code);
    assert_eq!(
        hidden.message.replace(&private, "ID"),
        missing
            .message
            .replace("0190f0c0-0000-7000-8000-00000000abcd", "ID")
    );
    assert_eq!(hidden.code, "not_found");

    // After all that, the connection still works.
    let room = room_id(alice.ok(join("general", true)).await);
    match alice.ok(send(&room, "still here")).await {
        proto::reply::Reply::Sent(s) => assert_eq!(s.message.expect("message").seq, 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_subprotocol_is_the_clients_first_known_offer_and_json_otherwise() {
    let server = Server::start().await;

    // The client's first known offer, named in the answer: both offered, in either order;
    // an unknown offer first, then protobuf.
    for (user, offer, expected) in [
        (
            "alice",
            format!("{SUBPROTOCOL_JSON}, {SUBPROTOCOL_PROTO}"),
            SUBPROTOCOL_JSON,
        ),
        (
            "dave",
            format!("{SUBPROTOCOL_PROTO}, {SUBPROTOCOL_JSON}"),
            SUBPROTOCOL_PROTO,
        ),
        (
            "bob",
            format!("x-unknown, {SUBPROTOCOL_PROTO}"),
            SUBPROTOCOL_PROTO,
        ),
    ] {
        let (ws, chosen) = open(&server, user, "/ws", &offer).await;
        assert_eq!(chosen.as_deref(), Some(expected), "{offer}");
        if expected == SUBPROTOCOL_JSON {
            assert_eq!(Client::new(ws).next().await["type"], "hello");
        } else {
            let mut p = ProtoClient { ws, next_id: 0 };
            assert!(matches!(p.read().await.frame, Some(Frame::Hello(_))));
        }
    }

    // Only unknown offers: the upgrade goes ahead with no subprotocol in the answer
    // (which tungstenite's client refuses, so the handshake is written by hand here).
    let mut raw = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: x-unknown\r\nAuthorization: Bearer {}\r\n\r\n",
        server.addr,
        token("carol")
    );
    tokio::io::AsyncWriteExt::write_all(&mut raw, request.as_bytes())
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(
            WAIT,
            tokio::io::AsyncReadExt::read_exact(&mut raw, &mut byte),
        )
        .await
        .expect("in time")
        .expect("read");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("ascii").to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    drop(raw);

    // With no offer at all: JSON, as always.
    let mut j = server.connect("carol").await;

    // A binary frame on JSON is refused with a pointer to the subprotocol.
    j.ws.send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    let err = j.next().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "invalid");
    let text = err["message"].as_str().expect("message");
    assert!(text.contains(SUBPROTOCOL_PROTO), "{text}");
    j.ok(json!({"type": "join", "room": "general", "create": true}))
        .await;
}

#[tokio::test]
async fn a_room_url_joins_and_answers_in_protobuf() {
    let server = Server::start().await;
    let (mut alice, _) =
        ProtoClient::connect_path(&server, "alice", "/ws/rooms/lobby?create=true").await;
    let reply = match alice.answer("join").await {
        Frame::Reply(proto::Reply { reply: Some(r) }) => r,
        other => panic!("{other:?}"),
    };
    match reply {
        proto::reply::Reply::Room(r) => {
            assert!(r.joined);
            let c = r.conversation.expect("conversation");
            match c.kind {
                Some(proto::conversation::Kind::Room(info)) => assert_eq!(info.name, "lobby"),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}
