//! One engine, two transports: a `Connect` stream and a WebSocket client share a room and
//! a direct conversation, and each sees the other's messages, receipts and typing with
//! the same seqs.

mod common;

use chat_transport_grpc::proto::{self, client_frame::Command as Cmd, event::Event as E};
use common::*;
use serde_json::json;

fn sent_seq(reply: proto::reply::Reply) -> (u64, String) {
    match reply {
        proto::reply::Reply::Sent(s) => {
            let m = s.message.expect("message");
            (m.seq, m.id)
        }
        other => panic!("not sent: {other:?}"),
    }
}

/// Alice (gRPC) sends, Bob (WebSocket) sends back, both mark and type, in `conversation`.
async fn exchange(conn: &mut Conn, ws: &mut WsClient, conversation: &str, first_seq: u64) {
    // gRPC → WebSocket.
    let (seq, id) = sent_seq(
        conn.ok(Cmd::Send(proto::SendRequest {
            conversation: conversation.into(),
            body: "from gRPC".into(),
            client_id: Some(format!("g-{conversation}")),
            ..Default::default()
        }))
        .await,
    );
    assert_eq!(seq, first_seq);
    let event = ws
        .event("message", |f| f["message"]["conversation"] == conversation)
        .await;
    assert_eq!(event["message"]["seq"], seq);
    assert_eq!(event["message"]["id"], id.as_str());
    assert_eq!(event["message"]["body"], "from gRPC");
    assert_eq!(event["message"]["sender"], "alice");

    // WebSocket → gRPC.
    let reply = ws
        .ok(json!({"type":"send","conversation":conversation,"body":"from the WebSocket"}))
        .await;
    let ws_seq = reply["message"]["seq"].as_u64().expect("seq");
    assert_eq!(ws_seq, first_seq + 1);
    let e = conn
        .event(|e| matches!(e, E::Message(m) if m.message.as_ref().is_some_and(|m| m.conversation == conversation)))
        .await;
    let E::Message(m) = e else { unreachable!() };
    let m = m.message.expect("message");
    assert_eq!((m.seq, m.sender.as_str()), (ws_seq, "bob"));
    assert_eq!(m.id, reply["message"]["id"].as_str().expect("id"));
    assert_eq!(m.body, "from the WebSocket");

    // Receipts both ways.
    ws.ok(json!({"type":"mark_read","conversation":conversation,"seq":ws_seq}))
        .await;
    let e = conn
        .event(|e| matches!(e, E::Receipt(r) if r.conversation == conversation && r.user == "bob"))
        .await;
    let E::Receipt(r) = e else { unreachable!() };
    assert_eq!((r.delivered_seq, r.read_seq), (ws_seq, ws_seq));
    conn.ok(Cmd::MarkDelivered(proto::MarkRequest {
        conversation: conversation.into(),
        seq: ws_seq,
    }))
    .await;
    let receipt = ws
        .event("receipt", |f| {
            f["conversation"] == conversation && f["user"] == "alice"
        })
        .await;
    assert_eq!(receipt["delivered_seq"], ws_seq);
    assert_eq!(receipt["read_seq"], 0);

    // Typing both ways.
    conn.ok(Cmd::Typing(proto::TypingRequest {
        conversation: conversation.into(),
        typing: true,
    }))
    .await;
    let typing = ws
        .event("typing", |f| f["conversation"] == conversation)
        .await;
    assert_eq!(
        (typing["user"].as_str(), typing["typing"].as_bool()),
        (Some("alice"), Some(true))
    );
    ws.ok(json!({"type":"typing","conversation":conversation,"typing":true}))
        .await;
    let e = conn
        .event(|e| matches!(e, E::Typing(t) if t.conversation == conversation))
        .await;
    let E::Typing(t) = e else { unreachable!() };
    assert_eq!((t.user.as_str(), t.typing), ("bob", true));

    // Both read the same log.
    let history = ws
        .ok(json!({"type":"history","conversation":conversation}))
        .await;
    let reply = conn
        .ok(Cmd::History(proto::HistoryRequest {
            conversation: conversation.into(),
            ..Default::default()
        }))
        .await;
    let proto::reply::Reply::History(h) = reply else {
        panic!("not history: {reply:?}")
    };
    let grpc_seqs: Vec<u64> = h
        .messages
        .iter()
        .map(|m| m.message.as_ref().expect("message").seq)
        .collect();
    let ws_seqs: Vec<u64> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(grpc_seqs, ws_seqs);
    assert_eq!(h.last_seq, history["last_seq"].as_u64().expect("last_seq"));
}

#[tokio::test]
async fn a_connect_stream_and_a_websocket_share_a_room_and_a_direct_conversation() {
    let server = Server::with_ws(Default::default(), unlimited()).await;
    let alice = server.api("alice").await;
    let mut conn = alice.connect().await;
    conn.hello().await;
    let mut ws = WsClient::connect(&server, "bob").await;
    server.wait_connections(2).await;

    // A room made on gRPC, joined on the WebSocket.
    let reply = conn
        .ok(Cmd::CreateRoom(proto::CreateRoomRequest {
            name: "lobby".into(),
            visibility: 0,
        }))
        .await;
    let proto::reply::Reply::Room(room) = reply else {
        panic!("{reply:?}")
    };
    let room = room.conversation.expect("room").id;
    ws.ok(json!({"type":"join","room":"lobby"})).await;
    let e = conn
        .event(|e| matches!(e, E::MemberJoined(j) if j.user == "bob"))
        .await;
    let E::MemberJoined(joined) = e else {
        unreachable!()
    };
    assert_eq!(joined.conversation, room);
    exchange(&mut conn, &mut ws, &room, 1).await;

    // A direct conversation, once they are friends (asked on gRPC, accepted on the
    // WebSocket).
    conn.ok(Cmd::FriendRequest(proto::UserRequest {
        user: "bob".into(),
    }))
    .await;
    let asked = ws.event("friend", |_| true).await;
    assert_eq!(asked["friend"]["status"], "request_received");
    ws.ok(json!({"type":"friend_accept","user":"alice"})).await;
    let e = conn.event(|e| matches!(e, E::Friend(_))).await;
    let E::Friend(f) = e else { unreachable!() };
    assert_eq!(
        f.friend.expect("friend").status,
        proto::FriendStatus::Friends as i32
    );
    let reply = conn
        .ok(Cmd::OpenDirect(proto::OpenDirectRequest {
            user: "bob".into(),
        }))
        .await;
    let proto::reply::Reply::Direct(direct) = reply else {
        panic!("{reply:?}")
    };
    assert!(direct.created);
    let direct = direct.conversation.expect("direct").id;
    let added = ws.event("conversation_added", |_| true).await;
    assert_eq!(added["conversation"]["id"], direct.as_str());
    assert_eq!(added["conversation"]["kind"], "direct");
    exchange(&mut conn, &mut ws, &direct, 1).await;
}
