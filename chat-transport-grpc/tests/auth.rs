//! Refusals: no valid token, someone else's `user_id`, and conversations the caller may
//! not know, which answer exactly as missing ones do.

mod common;

use chat_transport_grpc::proto;
use common::*;
use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt;

#[tokio::test]
async fn a_missing_bad_or_expired_token_is_unauthenticated() {
    let server = Server::start().await;
    let channel = server.channel().await;
    let expired = token_with(json!({"sub": "user_123", "exp": now() - 60}));
    let forged = {
        let t = token("user_123");
        let (signed, _) = t.rsplit_once('.').expect("jwt");
        format!("{signed}.c2lnbmF0dXJl")
    };
    let cases = [
        ("missing", None),
        ("garbage", Some("not a token".to_owned())),
        ("expired", Some(expired)),
        ("forged", Some(forged)),
    ];
    for (what, token) in cases {
        let api = Api::new(channel.clone(), token);
        let status = api
            .c()
            .send_message(api.req(proto::SendMessageRequest {
                room_id: "room_001".into(),
                message: "hi".into(),
                ..Default::default()
            }))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        assert_eq!(
            code_of(&status).as_deref(),
            Some("unauthenticated"),
            "{what}"
        );
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "UNAUTHENTICATED", "{what}");
        // A Connect stream is refused before it opens.
        let status = api.try_connect().await.err().expect(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}");
    }
    // A metadata value that is not `Bearer <token>` is refused the same way.
    let api = server.api("user_123").await;
    let mut request = api.req(proto::UnreadTotalRequest {});
    request.metadata_mut().insert(
        "authorization",
        "Basic dXNlcjpwYXNz".parse().expect("ascii"),
    );
    let status = api.c().unread_total(request).await.expect_err("basic");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(server.engine.stats().connections, 0, "no session opened");
}

#[tokio::test]
async fn another_users_user_id_is_permission_denied_and_sends_nothing() {
    let server = Server::start().await;
    let me = server.api("user_123").await;
    let room = me.create_room("room_001", false).await;
    let status = me
        .c()
        .send_message(me.req(proto::SendMessageRequest {
            room_id: "room_001".into(),
            user_id: "user_456".into(),
            message: "in someone else's name".into(),
            ..Default::default()
        }))
        .await
        .expect_err("not me");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(code_of(&status).as_deref(), Some("forbidden"));
    let page = me
        .c()
        .get_messages(me.req(proto::GetMessagesRequest {
            room_id: room.id,
            limit: 10,
            offset: 0,
        }))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.total_count, 0);
}

/// A status with the name or id it was asked about replaced, for comparing answers.
fn shape(status: &Status, asked: &str) -> (Code, String, Option<String>, Option<String>) {
    (
        status.code(),
        status.message().replace(asked, "<asked>"),
        code_of(status),
        status.get_details_error_info().map(|i| i.reason),
    )
}

#[tokio::test]
async fn a_hidden_conversation_answers_exactly_as_a_missing_one() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let carol = server.api("carol").await;
    let bob = server.api("bob").await;
    let private = alice.create_room("secret", true).await;
    alice.send(&private.id, "for members").await;
    alice.befriend(&carol, "carol", "alice").await;
    let direct = alice
        .c()
        .open_direct(alice.req(proto::OpenDirectRequest {
            user: "carol".into(),
        }))
        .await
        .expect("direct")
        .into_inner()
        .conversation
        .expect("conversation");
    alice.send(&direct.id, "between us").await;
    let nowhere = "0190f0c0-0000-7000-8000-00000000dead";

    let get = |room: &str| {
        let bob = bob.clone();
        let room = room.to_owned();
        async move {
            bob.c()
                .get_messages(bob.req(proto::GetMessagesRequest {
                    room_id: room,
                    limit: 10,
                    offset: 0,
                }))
                .await
                .expect_err("hidden")
        }
    };
    let send = |room: &str| {
        let bob = bob.clone();
        let room = room.to_owned();
        async move {
            bob.c()
                .send_message(bob.req(proto::SendMessageRequest {
                    room_id: room,
                    message: "let me in".into(),
                    ..Default::default()
                }))
                .await
                .expect_err("hidden")
        }
    };
    let history = |conversation: &str| {
        let bob = bob.clone();
        let conversation = conversation.to_owned();
        async move {
            bob.c()
                .history(bob.req(proto::HistoryRequest {
                    conversation,
                    ..Default::default()
                }))
                .await
                .expect_err("hidden")
        }
    };

    // By name: a private room reads as a name that names nothing.
    let missing = get("no-such-room").await;
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), "not found: room \"no-such-room\"");
    assert_eq!(
        shape(&get("secret").await, "secret"),
        shape(&missing, "no-such-room")
    );
    assert_eq!(
        shape(&send("secret").await, "secret"),
        shape(&send("no-such-room").await, "no-such-room")
    );
    // By id: a private room and someone else's direct conversation read as a missing id.
    let missing = get(nowhere).await;
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(code_of(&missing).as_deref(), Some("not_found"));
    for hidden in [&private.id, &direct.id] {
        assert_eq!(shape(&get(hidden).await, hidden), shape(&missing, nowhere));
        assert_eq!(
            shape(&send(hidden).await, hidden),
            shape(&send(nowhere).await, nowhere)
        );
        assert_eq!(
            shape(&history(hidden).await, hidden),
            shape(&history(nowhere).await, nowhere)
        );
    }
    // Over Connect, the error frames match too.
    let mut conn = bob.connect().await;
    let mut answers = Vec::new();
    for id in [private.id.as_str(), direct.id.as_str(), nowhere] {
        let command = proto::client_frame::Command::History(proto::HistoryRequest {
            conversation: id.to_owned(),
            ..Default::default()
        });
        match conn.request(command).await {
            proto::server_frame::Frame::Error(e) => {
                answers.push((e.code, e.message.replace(id, "<asked>")));
            }
            other => panic!("hidden: {other:?}"),
        }
    }
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[1], answers[2]);
    assert_eq!(answers[2].0, "not_found");
    // Members still read them.
    let page = alice
        .c()
        .get_messages(alice.req(proto::GetMessagesRequest {
            room_id: "secret".into(),
            limit: 10,
            offset: 0,
        }))
        .await
        .expect("member")
        .into_inner();
    assert_eq!(page.messages[0].message, "for members");
}
