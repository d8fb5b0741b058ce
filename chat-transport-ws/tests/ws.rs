//! WebSocket protocol tests against a real server: behaviour through chat-client, the
//! wire itself (bad input, close codes, pings, shutdown) with hand-written frames.

mod common;

use std::time::Duration;

use chat_client::Page;
use chat_core::engine::{ResumeOutcome, ResumePoint};
use chat_core::model::{FriendStatus, Limits, MessageStatus, Visibility};
use chat_core::{Command, ErrorCode, Event, Reply};
use chat_transport_ws::Config;
use common::*;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn room(c: &mut Client, name: &str) -> String {
    let reply = c.ok(json!({"type":"create_room","name":name})).await;
    reply["conversation"]["id"]
        .as_str()
        .expect("room id")
        .to_owned()
}

#[tokio::test]
async fn room_members_see_messages_typing_and_read_receipts() {
    let server = Server::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let room_id = alice
        .create_room("lobby", Visibility::Public)
        .await
        .expect("room")
        .id;
    let (bob, mut bob_events) = server.client("bob").await;
    let (joined, new) = bob.join(String::from("lobby")).await.expect("join");
    assert_eq!((joined.id, new), (room_id, true));
    let ev = alice_events
        .event(|e| match e {
            Event::MemberJoined {
                conversation, user, ..
            } => Some((*conversation, user.clone())),
            _ => None,
        })
        .await;
    assert_eq!(ev, (room_id, uid("bob")));

    alice.typing(room_id, true).await.expect("typing");
    let typing = bob_events
        .event(|e| match e {
            Event::Typing {
                conversation,
                user,
                typing,
            } => Some((*conversation, user.clone(), *typing)),
            _ => None,
        })
        .await;
    assert_eq!(typing, (room_id, uid("alice"), true));

    let sent = alice
        .send_with_id(room_id, "hi bob", Some("m-1".into()))
        .await
        .expect("sent");
    assert_eq!(sent.message.seq, 1);
    assert_eq!(sent.message.client_id.as_deref(), Some("m-1"));
    assert!(!sent.duplicate);
    let msg = bob_events.message().await;
    assert_eq!(msg.body, "hi bob");
    assert_eq!(msg.seq, 1);
    assert_eq!(msg.conversation, room_id);

    let sent = bob.send(room_id, "hi alice").await.expect("sent");
    assert_eq!(sent.message.seq, 2);
    let msg = alice_events
        .event(|e| match e {
            Event::Message { message } if message.sender == uid("bob") => Some(message.clone()),
            _ => None,
        })
        .await;
    assert_eq!(msg.sender, uid("bob"));
    assert_eq!(msg.body, "hi alice");

    bob.mark_read(room_id, 1).await.expect("mark_read");
    let receipt = alice_events
        .event(|e| match e {
            Event::Receipt {
                conversation,
                user,
                delivered_seq,
                read_seq,
            } => Some((*conversation, user.clone(), *delivered_seq, *read_seq)),
            _ => None,
        })
        .await;
    assert_eq!(receipt, (room_id, uid("bob"), 1, 1));
}

#[tokio::test]
async fn room_on_connect_can_create_and_reports_a_missing_room() {
    let server = Server::start().await;
    let mut carol = server.connect_path("carol", "/ws/rooms/nowhere").await;
    let f = carol.wait_for(|f| f["id"] == "join").await;
    assert_eq!(f["type"], "error");
    assert_eq!(f["code"], "not_found");
    // The connection stays usable.
    assert_eq!(carol.ok(json!({"type":"unread_total"})).await["unread"], 0);

    let mut dan = server
        .connect_path("dan", "/ws/rooms/fresh?create=true")
        .await;
    let f = dan.wait_for(|f| f["id"] == "join").await;
    assert_eq!(f["reply"]["type"], "room", "{f}");
    assert_eq!(f["reply"]["conversation"]["name"], "fresh");
    assert_eq!(f["reply"]["joined"], true);
    let room_id = f["reply"]["conversation"]["id"].clone();

    // Erin joins the existing room on connect; its members see her come in.
    let mut erin = server.connect_path("erin", "/ws/rooms/fresh").await;
    let joined = erin.wait_for(|f| f["id"] == "join").await;
    assert_eq!(joined["type"], "reply", "{joined}");
    assert_eq!(joined["reply"]["conversation"]["id"], room_id);
    assert_eq!(joined["reply"]["joined"], true);
    let ev = dan.event("member_joined").await;
    assert_eq!(ev["user"], "erin");
}

#[tokio::test]
async fn direct_message_between_friends_goes_sent_delivered_read() {
    let server = Server::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, mut bob_events) = server.client("bob").await;
    alice.friend_request(uid("bob")).await.expect("request");
    let status = bob_events
        .event(|e| match e {
            Event::Friend { friend } => Some(friend.status),
            _ => None,
        })
        .await;
    assert_eq!(status, FriendStatus::RequestReceived);
    bob.friend_accept(uid("alice")).await.expect("accept");

    let (direct, _) = alice.open_direct(uid("bob")).await.expect("open_direct");
    let conv = direct.id;
    let added = bob_events
        .event(|e| match e {
            Event::ConversationAdded { conversation } => Some(conversation.id),
            _ => None,
        })
        .await;
    assert_eq!(added, conv);

    alice.send(conv, "psst").await.expect("sent");
    let status = || async {
        let h = alice.history(conv, Page::default()).await.expect("history");
        h.messages[0].status
    };
    assert_eq!(status().await, Some(MessageStatus::Sent));

    let msg = bob_events.message().await;
    let seq = msg.seq;
    bob.mark_delivered(conv, seq).await.expect("mark_delivered");
    let (delivered, _) = receipt(&mut alice_events).await;
    assert_eq!(delivered, seq);
    assert_eq!(status().await, Some(MessageStatus::Delivered));

    bob.mark_read(conv, seq).await.expect("mark_read");
    let (_, read) = receipt(&mut alice_events).await;
    assert_eq!(read, seq);
    assert_eq!(status().await, Some(MessageStatus::Read));
}

/// The next receipt's (delivered, read) watermarks.
async fn receipt(events: &mut Events) -> (u64, u64) {
    events
        .event(|e| match e {
            Event::Receipt {
                delivered_seq,
                read_seq,
                ..
            } => Some((*delivered_seq, *read_seq)),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn direct_message_to_a_non_friend_is_refused() {
    let server = Server::start().await;
    let (alice, _alice_events) = server.client("alice").await;
    let _bob = server.client("bob").await;
    let refused = alice.open_direct(uid("bob")).await.expect_err("refused");
    assert_eq!(refused.code(), Some(ErrorCode::NotFriends), "{refused:?}");
}

#[tokio::test]
async fn resume_after_a_disconnect_delivers_exactly_what_was_missed_in_order() {
    let server = Server::start().await;
    let (alice, _alice_events) = server.client("alice").await;
    let room_id = alice
        .create_room("r", Visibility::Public)
        .await
        .expect("room")
        .id;
    let (bob, mut bob_events) = server.client("bob").await;
    bob.join(room_id).await.expect("join");
    alice.send(room_id, "before").await.expect("sent");
    let m = bob_events.message().await;
    assert_eq!(m.seq, 1);
    bob.close();
    drop((bob, bob_events));
    server.wait_connections(1).await;

    for body in ["one", "two", "three"] {
        alice.send(room_id, body).await.expect("sent");
    }
    let (bob, _bob_events) = server.client("bob").await;
    let reply = bob
        .command(Command::Resume {
            conversations: vec![ResumePoint {
                conversation: room_id,
                last_seq: 1,
            }],
        })
        .await
        .expect("resume");
    let Reply::Resumed { conversations } = reply else {
        panic!("expected resumed: {reply:?}");
    };
    let result = &conversations[0];
    assert_eq!(result.outcome, ResumeOutcome::Replayed);
    assert_eq!(result.last_seq, 4);
    let got: Vec<(u64, &str)> = result
        .messages
        .iter()
        .map(|m| (m.seq, m.body.as_str()))
        .collect();
    assert_eq!(got, vec![(2, "one"), (3, "two"), (4, "three")]);
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_others_keep_receiving() {
    let config = Config::default().queue_capacity(8);
    let server = Server::with(config, Limits::default()).await;
    let engine = server.engine.clone();
    let room = match engine
        .execute_as(
            &uid("alice"),
            Command::CreateRoom {
                name: "busy".into(),
                visibility: Default::default(),
            },
        )
        .await
        .expect("room")
    {
        chat_core::Reply::Room { conversation, .. } => conversation.id,
        other => panic!("{other:?}"),
    };
    for u in ["slow", "fast"] {
        let join = Command::Join {
            room: room.into(),
            create: false,
        };
        engine.execute_as(&uid(u), join).await.expect("join");
    }
    // The slow client has a tiny receive buffer and never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(server.addr).await.expect("tcp");
    let mut req = server.url("/ws").into_client_request().expect("req");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("slow")).parse().expect("header"),
    );
    let (slow_ws, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("slow connects");
    let mut slow = Client::new(slow_ws);
    let mut fast = server.connect("fast").await;
    server.wait_connections(2).await;

    let body = "x".repeat(4000);
    let sender = uid("alice");
    let mut sent = 0u64;
    while engine.stats().slow_consumer_disconnects == 0 {
        assert!(sent < 5000, "the slow client was never cut off");
        let m = engine
            .system_message(room, &sender, &body)
            .await
            .expect("system message");
        sent += 1;
        // The fast client gets every message, in order.
        let ev = fast.event("message").await;
        assert_eq!(ev["message"]["seq"], m.seq);
    }
    // The engine cut the slow one off; the fast one keeps receiving.
    let m = engine
        .system_message(room, &sender, "after")
        .await
        .expect("system message");
    let ev = fast.event("message").await;
    assert_eq!(ev["message"]["seq"], m.seq);
    assert_eq!(slow.close_code().await, Some(4008));
}

#[tokio::test]
async fn bad_inputs_get_an_invalid_error_and_the_connection_stays_open() {
    let server = Server::start().await;
    let mut c = server.connect("alice").await;

    c.send_text("{not json").await;
    let f = c.next().await;
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str()),
        (Some("error"), Some("invalid"))
    );
    assert_eq!(f["id"], Value::Null);

    c.send_text(r#"{"id":"u1","type":"launch_missiles"}"#).await;
    let f = c.next().await;
    assert_eq!(
        (f["id"].as_str(), f["code"].as_str()),
        (Some("u1"), Some("invalid"))
    );

    c.send_text(r#"{"id":"m1","type":"send","body":"no conversation"}"#)
        .await;
    let f = c.next().await;
    assert_eq!(
        (f["id"].as_str(), f["code"].as_str()),
        (Some("m1"), Some("invalid"))
    );

    c.send_text(r#"{"id":7,"type":"join","room":"x","extra":true}"#)
        .await;
    let f = c.next().await;
    assert_eq!(
        (f["id"].as_i64(), f["code"].as_str()),
        (Some(7), Some("invalid"))
    );

    c.send_text(r#"[1,2]"#).await;
    assert_eq!(c.next().await["code"], "invalid");

    c.ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("binary");
    let f = c.next().await;
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str()),
        (Some("error"), Some("invalid"))
    );

    // Still usable; a numeric id is echoed as a number.
    c.send_text(r#"{"id":42,"type":"unread_total"}"#).await;
    let f = c.next().await;
    assert_eq!(f["type"], "reply");
    assert_eq!(f["id"], 42);
    assert_eq!(f["reply"], json!({"type":"unread","unread":0}));
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let server = Server::with(Config::default().max_message_bytes(1024), Limits::default()).await;
    let mut c = server.connect("alice").await;
    c.send_text(format!(
        r#"{{"type":"create_room","name":"{}"}}"#,
        "a".repeat(2000)
    ))
    .await;
    assert_eq!(c.close_code().await, Some(1009));
    server.wait_connections(0).await;
}

#[tokio::test]
async fn the_core_rate_limits_and_a_flood_closes_with_4029() {
    let mut limits = Limits::default();
    limits.commands_per_second = 1;
    limits.command_burst = 3;
    let config = Config::default().flood_limit(20, Duration::from_secs(30));
    let server = Server::with(config, limits).await;
    let mut c = server.connect("alice").await;
    for _ in 0..3 {
        c.ok(json!({"type":"unread_total"})).await;
    }
    assert_eq!(c.deny(json!({"type":"unread_total"})).await, "rate_limited");
    for _ in 0..30 {
        if c.ws
            .send(Message::text(r#"{"type":"unread_total"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(c.close_code().await, Some(4029));
}

#[tokio::test]
async fn an_idle_client_is_closed_with_4000() {
    let config = Config::default().keepalive(Duration::from_secs(30), Duration::from_millis(200));
    let server = Server::with(config, Limits::default()).await;
    let mut c = server.connect("alice").await;
    assert_eq!(c.close_code().await, Some(4000));
}

#[tokio::test]
async fn the_server_pings() {
    let config = Config::default().keepalive(Duration::from_millis(50), Duration::from_secs(30));
    let server = Server::with(config, Limits::default()).await;
    let mut c = server.connect("alice").await;
    let msg = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut c.ws))
        .await
        .expect("in time")
        .expect("open")
        .expect("frame");
    assert!(matches!(msg, Message::Ping(_)), "{msg:?}");
}

#[tokio::test]
async fn graceful_shutdown_flushes_and_closes_with_1001() {
    let mut server = Server::start().await;
    let mut alice = server.connect("alice").await;
    let room_id = room(&mut alice, "bye").await;
    let mut bob = server
        .connect_path("bob", &format!("/ws/rooms/{room_id}"))
        .await;
    bob.wait_for(|f| f["id"] == "join").await;
    alice
        .ok(json!({"type":"send","conversation":room_id,"body":"last words"}))
        .await;
    server.stop().await;
    assert_eq!(server.engine.stats().connections, 0);
    // Bob still gets what was queued, then the close frame.
    let m = bob.event("message").await;
    assert_eq!(m["message"]["body"], "last words");
    assert_eq!(bob.close_code().await, Some(1001));
    assert_eq!(alice.close_code().await, Some(1001));
}

#[tokio::test]
async fn replies_and_attachments_over_the_socket_with_denials_keeping_the_connection() {
    let server = Server::start().await;
    let mut alice = server.connect("alice").await;
    let mut bob = server.connect("bob").await;
    let room = alice
        .ok(json!({"type":"create_room","name":"threads"}))
        .await;
    let id = room["conversation"]["id"].clone();
    bob.ok(json!({"type":"join","room":"threads"})).await;
    let root = alice
        .ok(json!({"type":"send","conversation":id,"body":"root"}))
        .await;
    assert_eq!(root["message"]["seq"], 1);
    let file = json!({"url":"https://cdn.example/a.png","mime_type":"image/png",
        "size":10,"name":"a.png"});
    let sent = bob
        .ok(
            json!({"type":"send","conversation":id,"body":"nice","reply_to":1,
            "attachments":[file]}),
        )
        .await;
    assert_eq!(sent["message"]["thread"], 1, "{sent}");
    let event = alice
        .wait_for(|f| f["type"] == "message" && f["message"]["seq"] == 2)
        .await;
    assert_eq!(
        (
            &event["message"]["reply_to"],
            &event["message"]["attachments"]
        ),
        (&json!(1), &json!([file])),
        "the event carries the reply and the attachment: {event}"
    );
    let page = alice
        .ok(json!({"type":"history","conversation":id,"thread":1}))
        .await;
    assert_eq!(page["messages"][0]["reply_count"], 1, "{page}");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(2));

    let eleven: Vec<Value> = (0..11).map(|_| file.clone()).collect();
    let long_name = json!([{"url":"https://a/b","mime_type":"a/b","size":1,
        "name":"n".repeat(256)}]);
    for (command, code) in [
        (
            json!({"type":"send","conversation":id,"body":"x","attachments":eleven}),
            "too_large",
        ),
        (
            json!({"type":"send","conversation":id,"body":"x","attachments":long_name}),
            "too_large",
        ),
        (
            json!({"type":"send","conversation":id,"body":"x","reply_to":42}),
            "not_found",
        ),
        (
            json!({"type":"send","conversation":id,"body":"x","attachments":[{"url":"x"}]}),
            "invalid",
        ),
        (
            json!({"type":"history","conversation":id,"thread":2}),
            "invalid",
        ),
    ] {
        assert_eq!(bob.deny(command.clone()).await, code, "{command}");
    }
    // The connection is intact and nothing was stored.
    let all = bob.ok(json!({"type":"history","conversation":id})).await;
    assert_eq!(all["last_seq"], 2, "{all}");
}
