//! Engine errors as gRPC statuses, from real calls: each with its table status, its
//! stable code in `chat-error-code` and `google.rpc.ErrorInfo`, and a retry hint where
//! the engine gives one.

mod common;

use chat_core::model::Limits;
use chat_core::ports::CloseReason;
use chat_core::UserId;
use chat_transport_grpc::{proto, GrpcConfig};
use common::*;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn engine_errors_keep_their_table_status_and_stable_code() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let room = alice.create_room("general", false).await;

    // conflict → ALREADY_EXISTS
    let status = alice
        .c()
        .create_room(alice.req(proto::CreateRoomRequest {
            name: "general".into(),
            visibility: 0,
        }))
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(code_of(&status).as_deref(), Some("conflict"));
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("CONFLICT", "chat")
    );

    // not_friends → FAILED_PRECONDITION
    let status = alice
        .c()
        .open_direct(alice.req(proto::OpenDirectRequest { user: "bob".into() }))
        .await
        .expect_err("not friends");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(code_of(&status).as_deref(), Some("not_friends"));

    // too_large → INVALID_ARGUMENT, told apart from invalid by its code
    let status = alice
        .c()
        .send(alice.req(proto::SendRequest {
            conversation: room.id.clone(),
            body: "x".repeat(5000),
            client_id: None,
            ..Default::default()
        }))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(code_of(&status).as_deref(), Some("too_large"));
    let status = alice
        .c()
        .send(alice.req(proto::SendRequest {
            conversation: room.id.clone(),
            body: "   ".into(),
            client_id: None,
            ..Default::default()
        }))
        .await
        .expect_err("blank");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(code_of(&status).as_deref(), Some("invalid"));

    // forbidden → PERMISSION_DENIED (a public room is discoverable)
    let bob = server.api("bob").await;
    let status = bob
        .c()
        .history(bob.req(proto::HistoryRequest {
            conversation: room.id.clone(),
            ..Default::default()
        }))
        .await
        .expect_err("not a member");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(code_of(&status).as_deref(), Some("forbidden"));

    // A message larger than the server takes is refused by gRPC itself.
    let status = alice
        .c()
        .send(alice.req(proto::SendRequest {
            conversation: room.id.clone(),
            body: "x".repeat(70 * 1024),
            client_id: None,
            ..Default::default()
        }))
        .await
        .expect_err("over max_message_bytes");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    assert_eq!(code_of(&status), None);
    // Nothing was stored by any of these.
    let page = alice
        .c()
        .get_messages(alice.req(proto::GetMessagesRequest {
            room_id: room.id,
            limit: 10,
            offset: 0,
        }))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.total_count, 0);
}

#[tokio::test]
async fn unary_calls_past_the_rate_are_resource_exhausted_with_a_retry_hint() {
    let mut limits = Limits::default();
    limits.commands_per_second = 2;
    limits.command_burst = 3;
    let server = Server::build(GrpcConfig::default(), limits, None, false).await;
    let alice = server.api("alice").await;
    let bob = server.api("bob").await;
    let call = |api: &Api| {
        let api = api.clone();
        async move {
            api.c()
                .unread_total(api.req(proto::UnreadTotalRequest {}))
                .await
        }
    };
    for _ in 0..3 {
        call(&alice).await.expect("within the burst");
    }
    let status = call(&alice).await.expect_err("past the burst");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(code_of(&status).as_deref(), Some("rate_limited"));
    assert_eq!(
        status
            .metadata()
            .get("chat-retry-after-ms")
            .and_then(|v| v.to_str().ok()),
        Some("500")
    );
    let retry = status.get_details_retry_info().expect("retry info");
    assert_eq!(
        retry.retry_delay,
        Some(std::time::Duration::from_millis(500))
    );
    // Per user: bob is not held back by alice.
    call(&bob).await.expect("another user");
}

#[tokio::test]
async fn a_kicked_stream_ends_with_permission_denied() {
    let server = Server::start().await;
    let api = server.api("alice").await;
    let mut conn = api.connect().await;
    conn.hello().await;
    server.wait_connections(1).await;
    let closed = server
        .engine
        .disconnect_user(&UserId::new("alice").expect("user"), CloseReason::Kicked)
        .await;
    assert_eq!(closed, 1);
    let end = conn.end().await.expect_err("kicked");
    assert_eq!(end.code(), Code::PermissionDenied);
    assert_eq!(code_of(&end).as_deref(), Some("kicked"));
}
