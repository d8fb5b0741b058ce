//! Replies, threads and attachments over gRPC, unary and on a `Connect` stream: a reply
//! with an attachment is stored, answered and pushed whole; `History` with `thread` reads
//! the root and its replies; and the refusals: too many attachments (`too_large`), a
//! reply to a missing message (`not_found`), and a thread in a conversation the caller is
//! not in, which answers exactly as one in a conversation that does not exist.

mod common;

use chat_transport_grpc::proto;
use common::*;
use proto::client_frame::Command as Cmd;
use proto::server_frame::Frame;
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn photo(n: u32) -> proto::Attachment {
    proto::Attachment {
        url: format!("https://files.example/photos/{n}.png"),
        mime_type: "image/png".into(),
        size: 1_000 + u64::from(n),
        name: format!("photo {n}.png"),
    }
}

fn seqs(reply: &proto::HistoryReply) -> Vec<u64> {
    reply
        .messages
        .iter()
        .map(|m| m.message.as_ref().expect("message").seq)
        .collect()
}

impl Api {
    async fn send_request(&self, request: proto::SendRequest) -> Result<proto::Message, Status> {
        let sent = self.c().send(self.req(request)).await?.into_inner();
        Ok(sent.message.expect("message"))
    }

    async fn reply(
        &self,
        conversation: &str,
        to: u64,
        body: &str,
        attachments: Vec<proto::Attachment>,
    ) -> Result<proto::Message, Status> {
        self.send_request(proto::SendRequest {
            conversation: conversation.into(),
            body: body.into(),
            reply_to: Some(to),
            attachments,
            ..Default::default()
        })
        .await
    }

    async fn thread(
        &self,
        conversation: &str,
        root: u64,
        page: proto::HistoryRequest,
    ) -> Result<proto::HistoryReply, Status> {
        let request = proto::HistoryRequest {
            conversation: conversation.into(),
            thread: Some(root),
            ..page
        };
        Ok(self.c().history(self.req(request)).await?.into_inner())
    }
}

/// A status with the asked-for id replaced: what a caller can tell apart.
fn shape(status: &Status, asked: &str) -> (Code, String, Option<String>, Option<String>) {
    (
        status.code(),
        status.message().replace(asked, "<asked>"),
        code_of(status),
        status.get_details_error_info().map(|i| i.reason),
    )
}

#[tokio::test]
async fn a_reply_with_an_attachment_is_stored_pushed_and_read_back_in_its_thread() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let bob = server.api("bob").await;
    let room = alice.create_room("threads", false).await.id;
    bob.join(&room).await;
    let mut bob_stream = bob.connect().await;
    bob_stream.hello().await;

    let root = alice.send(&room, "who has the photos?").await;
    assert_eq!(root.seq, 1);
    alice.send(&room, "meanwhile").await; // 2

    // Unary: the reply comes back with what it replies to, its thread and attachments.
    let reply = alice
        .reply(&room, 1, "here", vec![photo(1)])
        .await
        .expect("reply");
    assert_eq!(
        (reply.seq, reply.reply_to, reply.thread, reply.body.as_str()),
        (3, Some(1), Some(1), "here")
    );
    assert_eq!(reply.attachments, vec![photo(1)]);
    assert_eq!(reply.reply_count, 0);
    // The other member's event is that message, field for field.
    let pushed = bob_stream
        .event(|e| matches!(e, proto::event::Event::Message(m) if m.message.as_ref().is_some_and(|m| m.seq == 3)))
        .await;
    match pushed {
        proto::event::Event::Message(m) => assert_eq!(m.message.as_ref(), Some(&reply)),
        other => panic!("{other:?}"),
    }

    // On the stream: a reply to the reply, attachments only, joins the root's thread.
    let deeper = match bob_stream
        .ok(Cmd::Send(proto::SendRequest {
            conversation: room.clone(),
            body: String::new(),
            client_id: Some("b-1".into()),
            reply_to: Some(3),
            attachments: vec![photo(2), photo(3)],
        }))
        .await
    {
        proto::reply::Reply::Sent(s) => s.message.expect("message"),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (deeper.seq, deeper.reply_to, deeper.thread),
        (4, Some(3), Some(1))
    );
    assert_eq!(deeper.attachments, vec![photo(2), photo(3)]);
    alice.send(&room, "not in the thread").await; // 5

    // History with `thread`: the root and its replies, in order, the root counting them.
    let thread = alice
        .thread(&room, 1, Default::default())
        .await
        .expect("thread");
    assert_eq!(seqs(&thread), vec![1, 3, 4]);
    assert_eq!(thread.conversation, room);
    assert_eq!(thread.last_seq, 5);
    let messages: Vec<_> = thread
        .messages
        .iter()
        .map(|m| m.message.clone().expect("message"))
        .collect();
    assert_eq!(messages[0].reply_count, 2);
    assert_eq!(messages[1], reply);
    assert_eq!(messages[2], deeper);
    // Paged by seq like history.
    let page = |before, after, limit| proto::HistoryRequest {
        before,
        after,
        limit,
        ..Default::default()
    };
    let newest = alice.thread(&room, 1, page(None, None, Some(2))).await;
    assert_eq!(seqs(&newest.expect("page")), vec![3, 4]);
    let older = alice.thread(&room, 1, page(Some(3), None, Some(2))).await;
    assert_eq!(seqs(&older.expect("page")), vec![1]);
    let after = alice.thread(&room, 1, page(None, Some(1), Some(1))).await;
    assert_eq!(seqs(&after.expect("page")), vec![3]);
    // The same thread on the stream; the whole log without `thread`.
    match bob_stream
        .ok(Cmd::History(proto::HistoryRequest {
            conversation: room.clone(),
            thread: Some(1),
            ..Default::default()
        }))
        .await
    {
        proto::reply::Reply::History(h) => assert_eq!(seqs(&h), vec![1, 3, 4]),
        other => panic!("{other:?}"),
    }
    let whole = alice
        .c()
        .history(alice.req(proto::HistoryRequest {
            conversation: room.clone(),
            ..Default::default()
        }))
        .await
        .expect("history")
        .into_inner();
    assert_eq!(seqs(&whole), vec![1, 2, 3, 4, 5]);

    // A thread is asked for by its root: a reply is `invalid`, a missing seq `not_found`.
    let status = alice
        .thread(&room, 3, Default::default())
        .await
        .expect_err("a reply is no root");
    assert_eq!(
        (status.code(), code_of(&status).as_deref()),
        (Code::InvalidArgument, Some("invalid"))
    );
    let status = alice
        .thread(&room, 99, Default::default())
        .await
        .expect_err("no message 99");
    assert_eq!(
        (status.code(), code_of(&status).as_deref()),
        (Code::NotFound, Some("not_found"))
    );

    // Deleting a reply leaves a tombstone in the thread, without its attachments.
    let gone = bob
        .c()
        .delete(bob.req(proto::DeleteRequest {
            conversation: room.clone(),
            seq: 4,
        }))
        .await
        .expect("delete")
        .into_inner()
        .message
        .expect("message");
    assert!(gone.attachments.is_empty() && gone.body.is_empty());
    assert_eq!(gone.thread, Some(1));
    let thread = alice.thread(&room, 1, Default::default()).await;
    let thread = thread.expect("thread");
    assert_eq!(seqs(&thread), vec![1, 3, 4]);
    let root = thread.messages[0].message.as_ref().expect("root");
    assert_eq!(root.reply_count, 1, "a deleted reply is not counted");
}

#[tokio::test]
async fn eleven_attachments_are_too_large_and_store_nothing() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let room = alice.create_room("attachments", false).await.id;
    let with = |n: u32| proto::SendRequest {
        conversation: room.clone(),
        body: format!("{n} attachments"),
        attachments: (0..n).map(photo).collect(),
        ..Default::default()
    };

    let ten = alice.send_request(with(10)).await.expect("ten");
    assert_eq!((ten.seq, ten.attachments.len()), (1, 10));
    let status = alice.send_request(with(11)).await.expect_err("eleven");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(code_of(&status).as_deref(), Some("too_large"));
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("TOO_LARGE", "chat")
    );
    // On a stream: an error frame with the same code, and the stream goes on.
    let mut conn = alice.connect().await;
    conn.hello().await;
    assert_eq!(conn.deny(Cmd::Send(with(11))).await, "too_large");
    // A malformed attachment is `invalid`, told apart by its code.
    let mut bad = with(1);
    bad.attachments[0].mime_type = "png".into();
    let status = alice.send_request(bad).await.expect_err("no subtype");
    assert_eq!(
        (status.code(), code_of(&status).as_deref()),
        (Code::InvalidArgument, Some("invalid"))
    );
    // Nothing but the ten was stored.
    let whole = alice
        .c()
        .history(alice.req(proto::HistoryRequest {
            conversation: room.clone(),
            ..Default::default()
        }))
        .await
        .expect("history")
        .into_inner();
    assert_eq!(whole.last_seq, 1);
    assert_eq!(seqs(&whole), vec![1]);
}

#[tokio::test]
async fn a_reply_to_a_missing_or_deleted_message_is_not_found() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let room = alice.create_room("replies", false).await.id;
    alice.send(&room, "first").await; // 1
    alice.send(&room, "second").await; // 2
    alice
        .c()
        .delete(alice.req(proto::DeleteRequest {
            conversation: room.clone(),
            seq: 2,
        }))
        .await
        .expect("delete");

    let missing = alice
        .reply(&room, 99, "to nothing", Vec::new())
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(code_of(&missing).as_deref(), Some("not_found"));
    assert_eq!(
        missing
            .get_details_error_info()
            .map(|i| i.reason)
            .as_deref(),
        Some("NOT_FOUND")
    );
    // A deleted message answers as a missing one.
    let deleted = alice
        .reply(&room, 2, "to a tombstone", Vec::new())
        .await
        .expect_err("deleted");
    assert_eq!(shape(&deleted, "2"), shape(&missing, "99"));
    // On a stream, the same code.
    let mut conn = alice.connect().await;
    conn.hello().await;
    let code = conn
        .deny(Cmd::Send(proto::SendRequest {
            conversation: room.clone(),
            body: "to nothing".into(),
            reply_to: Some(99),
            ..Default::default()
        }))
        .await;
    assert_eq!(code, "not_found");
    let page = alice.thread(&room, 1, Default::default()).await;
    assert_eq!(seqs(&page.expect("thread")), vec![1], "nothing was stored");
}

#[tokio::test]
async fn a_thread_the_caller_may_not_see_answers_exactly_as_a_missing_conversation() {
    let server = Server::start().await;
    let alice = server.api("alice").await;
    let bob = server.api("bob").await;
    let private = alice.create_room("secret", true).await.id;
    alice.send(&private, "root").await; // 1
    alice
        .reply(&private, 1, "reply", vec![photo(1)])
        .await
        .expect("reply"); // 2
    let nowhere = "0190f0c0-0000-7000-8000-00000000dead";

    // Unary: the root, a reply and a seq that does not exist all answer as the same
    // thread in a conversation that does not exist.
    let missing = bob
        .thread(nowhere, 1, Default::default())
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(code_of(&missing).as_deref(), Some("not_found"));
    for root in [1, 2, 99] {
        let hidden = bob
            .thread(&private, root, Default::default())
            .await
            .expect_err("hidden");
        assert_eq!(
            shape(&hidden, &private),
            shape(&missing, nowhere),
            "thread {root}"
        );
    }
    // A reply into it, too.
    let hidden = bob
        .reply(&private, 1, "let me in", Vec::new())
        .await
        .expect_err("hidden");
    let nothing = bob
        .reply(nowhere, 1, "let me in", Vec::new())
        .await
        .expect_err("missing");
    assert_eq!(shape(&hidden, &private), shape(&nothing, nowhere));

    // On a stream, the error frames match.
    let mut conn = bob.connect().await;
    conn.hello().await;
    let mut answers = Vec::new();
    for id in [private.as_str(), nowhere] {
        let command = Cmd::History(proto::HistoryRequest {
            conversation: id.to_owned(),
            thread: Some(1),
            ..Default::default()
        });
        match conn.request(command).await {
            Frame::Error(e) => answers.push((e.code, e.message.replace(id, "<asked>"))),
            other => panic!("hidden: {other:?}"),
        }
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, "not_found");
    // A member reads it.
    let thread = alice.thread(&private, 1, Default::default()).await;
    assert_eq!(seqs(&thread.expect("member")), vec![1, 2]);
}
