//! The reference chat service's three scenarios, as written: `SendMessage`, `GetMessages`
//! with limit, offset and total_count, and a send over mutual TLS answering
//! `sent_encrypted`.

mod common;

use chat_transport_grpc::proto;
use common::*;
use tonic::Code;

#[tokio::test]
async fn send_message_answers_the_reference_shape() {
    let server = Server::start().await;
    let api = server.api("user_123").await;
    let room = api.create_room("room_001", false).await;
    let response = api
        .c()
        .send_message(api.req(proto::SendMessageRequest {
            room_id: "room_001".into(),
            user_id: "user_123".into(),
            message: "Hello, world!".into(),
            timestamp: "2024-01-01T12:00:00Z".into(),
            ..Default::default()
        }))
        .await
        .expect("sent")
        .into_inner();
    // The reference's asserts.
    assert!(!response.message_id.is_empty());
    assert_eq!(response.room_id, "room_001");
    assert_eq!(response.user_id, "user_123");
    assert_eq!(response.status, "sent");
    // And the rest of its shape.
    assert_eq!(response.message, "Hello, world!");
    assert!(!response.encrypted, "plaintext");
    assert_eq!(response.seq, 1);
    assert_eq!(response.conversation_id, room.id);
    chrono::DateTime::parse_from_rfc3339(&response.timestamp).expect("an RFC 3339 timestamp");
    // It is really in the log, under that id.
    let history = api
        .c()
        .history(api.req(proto::HistoryRequest {
            conversation: room.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("history")
        .into_inner();
    let stored = history.messages[0].message.as_ref().expect("message");
    assert_eq!(stored.id, response.message_id);
    assert_eq!(stored.body, "Hello, world!");
    // By id as well as by name; an empty user_id is the caller.
    let by_id = api
        .c()
        .send_message(api.req(proto::SendMessageRequest {
            room_id: room.id.clone(),
            message: "again".into(),
            ..Default::default()
        }))
        .await
        .expect("sent by id")
        .into_inner();
    assert_eq!((by_id.seq, by_id.user_id.as_str()), (2, "user_123"));
}

#[tokio::test]
async fn get_messages_pages_by_offset_with_the_total_count() {
    let server = Server::start().await;
    let first = server.api("user_123").await;
    let second = server.api("user_456").await;
    first.create_room("room_001", false).await;
    second.join("room_001").await;
    let say = |api: &Api, text: &str| {
        let api = api.clone();
        let text = text.to_owned();
        async move {
            api.c()
                .send_message(api.req(proto::SendMessageRequest {
                    room_id: "room_001".into(),
                    message: text,
                    ..Default::default()
                }))
                .await
                .expect("sent")
                .into_inner()
        }
    };
    let hello = say(&first, "Hello!").await;
    let hi = say(&second, "Hi there!").await;
    let get = |limit: i32, offset: i32| {
        let api = first.clone();
        async move {
            api.c()
                .get_messages(api.req(proto::GetMessagesRequest {
                    room_id: "room_001".into(),
                    limit,
                    offset,
                }))
                .await
        }
    };
    // The reference's request and asserts.
    let page = get(10, 0).await.expect("page").into_inner();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[0].user_id, "user_123");
    assert_eq!(page.messages[1].user_id, "user_456");
    assert_eq!(page.total_count, 2);
    assert_eq!(page.messages[0].id, hello.message_id);
    assert_eq!(page.messages[0].message, "Hello!");
    assert_eq!(page.messages[1].id, hi.message_id);
    assert_eq!(page.messages[1].message, "Hi there!");
    assert_eq!(page.messages[0].timestamp, hello.timestamp);

    // Offsets are seqs: offset N starts at seq N + 1, pages line up without gaps.
    for i in 3..=7 {
        say(&first, &format!("m{i}")).await;
    }
    let mut seen = Vec::new();
    for offset in [0, 3, 6] {
        let page = get(3, offset).await.expect("page").into_inner();
        assert_eq!(page.total_count, 7);
        for (i, m) in page.messages.iter().enumerate() {
            assert_eq!(m.seq, u64::try_from(offset).expect("offset") + 1 + i as u64);
        }
        seen.extend(page.messages.into_iter().map(|m| m.seq));
    }
    assert_eq!(seen, (1..=7).collect::<Vec<u64>>());
    // Past the end: nothing, and still the count.
    let past = get(10, 7).await.expect("page").into_inner();
    assert!(past.messages.is_empty());
    assert_eq!(past.total_count, 7);
    // A deleted message keeps its place.
    first
        .c()
        .delete(first.req(proto::DeleteRequest {
            conversation: hello.conversation_id.clone(),
            seq: 1,
        }))
        .await
        .expect("delete");
    let page = get(2, 0).await.expect("page").into_inner();
    assert_eq!(page.messages[0].seq, 1);
    assert!(page.messages[0].deleted);
    assert_eq!(page.messages[0].message, "");
    assert_eq!(page.messages[1].seq, 2);
    // Bad paging is INVALID_ARGUMENT with our code.
    for (limit, offset) in [(-1, 0), (0, -1), (1000, 0)] {
        let e = get(limit, offset).await.expect_err("bad paging");
        assert_eq!(e.code(), Code::InvalidArgument, "{limit} {offset}");
        assert_eq!(code_of(&e).as_deref(), Some("invalid"));
    }
}

#[tokio::test]
async fn a_send_over_mutual_tls_answers_sent_encrypted() {
    let pki = Pki::new();
    let server = Server::tls(Default::default(), pki.server_config(true)).await;
    let me = pki.client("user_789");
    let channel = server
        .tls_channel(&pki.ca, Some(&me))
        .await
        .expect("mutual TLS");
    let api = Api::new(channel, Some(token("user_789")));
    api.create_room("secure_room", false).await;
    let response = api
        .c()
        .send_message(api.req(proto::SendMessageRequest {
            room_id: "secure_room".into(),
            user_id: "user_789".into(),
            message: "Secret message".into(),
            encrypted: true,
            ..Default::default()
        }))
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(response.status, "sent_encrypted");
    assert!(response.encrypted);
    assert_eq!(response.room_id, "secure_room");
    assert_eq!(response.user_id, "user_789");
    assert_eq!(response.message, "Secret message");
}

#[tokio::test]
async fn asking_for_encryption_over_plaintext_is_refused_and_stores_nothing() {
    let server = Server::start().await;
    let api = server.api("user_789").await;
    let room = api.create_room("secure_room", false).await;
    let e = api
        .c()
        .send_message(api.req(proto::SendMessageRequest {
            room_id: "secure_room".into(),
            message: "Secret message".into(),
            encrypted: true,
            ..Default::default()
        }))
        .await
        .expect_err("plaintext");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(code_of(&e).as_deref(), Some("invalid"));
    let page = api
        .c()
        .get_messages(api.req(proto::GetMessagesRequest {
            room_id: room.id,
            limit: 10,
            offset: 0,
        }))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.total_count, 0, "nothing was stored");
    // A malformed timestamp is refused too.
    let e = api
        .c()
        .send_message(api.req(proto::SendMessageRequest {
            room_id: "secure_room".into(),
            message: "hi".into(),
            timestamp: "yesterday".into(),
            ..Default::default()
        }))
        .await
        .expect_err("bad timestamp");
    assert_eq!(e.code(), Code::InvalidArgument);
}
