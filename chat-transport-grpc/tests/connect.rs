//! The `Connect` stream: hello first, commands in order, request ids echoed, resume after
//! a drop, the end of a half-closed stream, and shutdown.

mod common;

use chat_transport_grpc::proto::{self, client_frame::Command as Cmd, server_frame::Frame};
use common::*;
use tonic::Code;

fn room_of(reply: proto::reply::Reply) -> proto::Conversation {
    match reply {
        proto::reply::Reply::Room(r) => r.conversation.expect("conversation"),
        other => panic!("not a room: {other:?}"),
    }
}

#[tokio::test]
async fn hello_comes_first_and_commands_answer_in_order() {
    let server = Server::start().await;
    let api = server.api("alice").await;
    let mut conn = api.connect().await;
    let hello = conn.hello().await;
    assert_eq!(hello.protocol, 1);
    assert_eq!(hello.user, "alice");
    let limits = hello.limits.expect("limits");
    assert_eq!(limits.queue_capacity, 1024);
    assert_eq!(limits.max_history_page, 100);
    let room = room_of(
        conn.ok(Cmd::CreateRoom(proto::CreateRoomRequest {
            name: "general".into(),
            visibility: 0,
        }))
        .await,
    );
    // Twenty sends at once: replies come back in the order sent, with their ids, and
    // their seqs follow that order.
    for i in 0..20 {
        conn.send_frame(proto::ClientFrame {
            request_id: format!("s{i}"),
            command: Some(Cmd::Send(proto::SendRequest {
                conversation: room.id.clone(),
                body: format!("m{i}"),
                client_id: None,
                ..Default::default()
            })),
        })
        .await;
    }
    for i in 0..20u64 {
        let f = conn.next().await.expect("frame").expect("open");
        assert_eq!(f.request_id, format!("s{i}"));
        match f.frame {
            Some(Frame::Reply(proto::Reply {
                reply: Some(proto::reply::Reply::Sent(s)),
            })) => assert_eq!(s.message.expect("message").seq, i + 1),
            other => panic!("not sent: {other:?}"),
        }
    }
    // A frame without a command, a bad id in a command, an over-long request id: error
    // frames with the request id (empty when it could not be kept); the stream stays.
    conn.send_frame(proto::ClientFrame {
        request_id: "empty".into(),
        command: None,
    })
    .await;
    let f = conn.wait_for(|f| f.request_id == "empty").await;
    assert!(
        matches!(f.frame, Some(Frame::Error(ref e)) if e.code == "invalid"),
        "{f:?}"
    );
    let code = conn
        .deny(Cmd::Leave(proto::LeaveRequest {
            conversation: "not an id".into(),
        }))
        .await;
    assert_eq!(code, "invalid");
    conn.send_frame(proto::ClientFrame {
        request_id: "x".repeat(65),
        command: Some(Cmd::UnreadTotal(proto::UnreadTotalRequest {})),
    })
    .await;
    let f = conn.wait_for(|f| f.request_id.is_empty()).await;
    assert!(
        matches!(f.frame, Some(Frame::Error(ref e)) if e.code == "invalid"),
        "{f:?}"
    );
    // Policy errors keep their code.
    let code = conn
        .deny(Cmd::OpenDirect(proto::OpenDirectRequest {
            user: "bob".into(),
        }))
        .await;
    assert_eq!(code, "not_friends");
    // `refresh_token` is answered by the stream: garbage is unauthenticated and changes
    // nothing.
    let code = conn
        .deny(Cmd::RefreshToken(proto::RefreshTokenRequest {
            token: "garbage".into(),
        }))
        .await;
    assert_eq!(code, "unauthenticated");
    match conn
        .ok(Cmd::UnreadTotal(proto::UnreadTotalRequest {}))
        .await
    {
        proto::reply::Reply::Unread(u) => assert_eq!(u.unread, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.engine.stats().connections, 1);
}

#[tokio::test]
async fn events_reach_the_stream_and_a_dropped_stream_resumes_by_seq() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let bob = server.api("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join("general").await;
    let mut conn = alice.connect().await;
    conn.hello().await;
    for i in 1..=3 {
        bob.send(&room.id, &format!("live {i}")).await;
    }
    let mut have = 0;
    for i in 1..=3u64 {
        let e = conn
            .event(|e| matches!(e, proto::event::Event::Message(_)))
            .await;
        let proto::event::Event::Message(m) = e else {
            unreachable!()
        };
        let m = m.message.expect("message");
        assert_eq!((m.seq, m.body.as_str()), (i, format!("live {i}").as_str()));
        have = m.seq;
    }
    // The stream drops; the session ends with it.
    drop(conn);
    server.wait_connections(0).await;
    for i in 4..=7 {
        bob.send(&room.id, &format!("missed {i}")).await;
    }
    let mut conn = alice.connect().await;
    conn.hello().await;
    let reply = conn
        .ok(Cmd::Resume(proto::ResumeRequest {
            conversations: vec![proto::ResumePoint {
                conversation: room.id.clone(),
                last_seq: have,
            }],
        }))
        .await;
    let proto::reply::Reply::Resumed(resumed) = reply else {
        panic!("not resumed: {reply:?}")
    };
    let r = &resumed.conversations[0];
    assert_eq!(r.outcome, proto::ResumeOutcome::Replayed as i32);
    assert_eq!(r.last_seq, 7);
    let seqs: Vec<u64> = r.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
    assert_eq!(r.messages[0].body, "missed 4");
    // Live again.
    bob.send(&room.id, "after").await;
    let e = conn
        .event(|e| matches!(e, proto::event::Event::Message(_)))
        .await;
    let proto::event::Event::Message(m) = e else {
        unreachable!()
    };
    assert_eq!(m.message.expect("message").seq, 8);
}

#[tokio::test]
async fn a_half_closed_stream_gets_its_replies_then_ends_ok() {
    let server = Server::start().await;
    let api = server.api("alice").await;
    let mut conn = api.connect().await;
    conn.hello().await;
    for i in 0..5 {
        conn.send_frame(proto::ClientFrame {
            request_id: format!("u{i}"),
            command: Some(Cmd::UnreadTotal(proto::UnreadTotalRequest {})),
        })
        .await;
    }
    // The client is done sending.
    let (closed, _) = tokio::sync::mpsc::channel(1);
    drop(std::mem::replace(&mut conn.tx, closed));
    for i in 0..5 {
        let f = conn.next().await.expect("frame").expect("open");
        assert_eq!(f.request_id, format!("u{i}"));
    }
    assert_eq!(conn.next().await.expect("OK").map(|f| f.request_id), None);
    server.wait_connections(0).await;
}

#[tokio::test]
async fn shutdown_ends_streams_with_unavailable_after_what_was_queued() {
    let mut server = Server::start().await;
    let api = server.api("alice").await;
    let mut conn = api.connect().await;
    conn.hello().await;
    conn.ok(Cmd::UnreadTotal(proto::UnreadTotalRequest {}))
        .await;
    server.stop().await;
    let end = conn.end().await.expect_err("ended by the server");
    assert_eq!(end.code(), Code::Unavailable);
    assert_eq!(code_of(&end).as_deref(), Some("shutdown"));
}
