//! Replies, threads and attachments through the client, against a real server: a reply
//! with an attachment comes back whole (as the acknowledgement and as the other member's
//! event), a thread reads back in order and pages, and the refusals keep their codes.

mod common;

use chat_client::chat_core::model::{Attachment, Message, Visibility};
use chat_client::chat_core::{ErrorCode, Event, Seq};
use chat_client::{Client, ClientError, ClientEvent, Config, Draft, Events, Page};
use common::*;

async fn connect(server: &Server, user: &str) -> (Client, Events) {
    tokio::time::timeout(
        WAIT,
        Client::connect(Config::new(server.url.clone()), token(user)),
    )
    .await
    .expect("connects in time")
    .expect("connects")
}

/// The next message event, skipping every other event.
async fn next_message(events: &mut Events) -> Message {
    loop {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("an event in time")
            .expect("the events go on");
        match event {
            ClientEvent::Event(Event::Message { message }) => return message,
            ClientEvent::Event(_) | ClientEvent::Connected { .. } => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

fn photo(n: u32) -> Attachment {
    Attachment {
        url: format!("https://files.example/photos/{n}.png"),
        mime_type: "image/png".into(),
        size: 1_000 + u64::from(n),
        name: format!("photo {n}.png"),
    }
}

fn seqs(messages: &[chat_client::chat_core::engine::MessageView]) -> Vec<Seq> {
    messages.iter().map(|v| v.message.seq).collect()
}

fn code(result: Result<impl std::fmt::Debug, ClientError>) -> Option<ErrorCode> {
    result.expect_err("refused").code()
}

#[tokio::test]
async fn a_reply_with_an_attachment_round_trips_and_its_thread_reads_back() {
    let server = Server::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, mut bob_events) = connect(&server, "bob").await;
    let room = alice
        .create_room("threads", Visibility::Public)
        .await
        .expect("room")
        .id;
    bob.join(room).await.expect("join");

    let root = alice.send(room, "who has the photos?").await.expect("root");
    assert_eq!(root.message.seq, 1);
    assert_eq!(next_message(&mut bob_events).await.seq, 1);
    alice.send(room, "meanwhile").await.expect("send"); // 2
    assert_eq!(next_message(&mut bob_events).await.seq, 2);

    // A reply with an attachment: the acknowledgement carries everything.
    let reply = bob
        .send_with(room, Draft::new("here").reply_to(1).attachment(photo(1)))
        .await
        .expect("reply");
    assert!(!reply.duplicate);
    let m = &reply.message;
    assert_eq!(
        (m.seq, m.reply_to, m.thread, m.body.as_str()),
        (3, Some(1), Some(1), "here")
    );
    assert_eq!(m.attachments, vec![photo(1)]);
    // The other member's event is the same message, field for field.
    assert_eq!(next_message(&mut alice_events).await.seq, 1);
    assert_eq!(next_message(&mut alice_events).await.seq, 2);
    assert_eq!(&next_message(&mut alice_events).await, m, "alice's event");
    assert_eq!(
        &next_message(&mut bob_events).await,
        m,
        "bob's own, once acked"
    );

    // A reply to the reply joins the root's thread; attachments alone need no text.
    let deeper = alice
        .send_with(
            room,
            Draft::new("").reply_to(3).attachments([photo(2), photo(3)]),
        )
        .await
        .expect("reply to the reply")
        .message;
    assert_eq!(
        (deeper.seq, deeper.reply_to, deeper.thread),
        (4, Some(3), Some(1))
    );
    assert_eq!(deeper.body, "");
    assert_eq!(deeper.attachments, vec![photo(2), photo(3)]);
    // Strings still send as they did.
    alice
        .send_with(room, "not in the thread")
        .await
        .expect("send"); // 5

    // The thread: the root and both replies, in order; the root counts its replies.
    let thread = bob.thread(room, 1, Page::default()).await.expect("thread");
    assert_eq!(seqs(&thread.messages), vec![1, 3, 4]);
    assert_eq!(thread.last_seq, 5, "the conversation's newest seq");
    assert_eq!(thread.messages[0].message.reply_count, 2);
    assert_eq!(&thread.messages[1].message, m);
    assert_eq!(thread.messages[2].message, deeper);
    // Paged by seq, both ways.
    let newest = Page {
        limit: Some(2),
        ..Page::default()
    };
    let page = bob.thread(room, 1, newest).await.expect("page");
    assert_eq!(seqs(&page.messages), vec![3, 4]);
    let older = Page {
        before: Some(3),
        ..newest
    };
    assert_eq!(
        seqs(&bob.thread(room, 1, older).await.expect("page").messages),
        vec![1]
    );
    let after = Page {
        after: Some(1),
        limit: Some(1),
        ..Page::default()
    };
    assert_eq!(
        seqs(&bob.thread(room, 1, after).await.expect("page").messages),
        vec![3]
    );
    // A message without replies is a thread of one.
    assert_eq!(
        seqs(
            &bob.thread(room, 2, Page::default())
                .await
                .expect("t")
                .messages
        ),
        vec![2]
    );
    // The whole log still holds everything, with the reply fields.
    let history = alice.history(room, Page::default()).await.expect("history");
    assert_eq!(seqs(&history.messages), vec![1, 2, 3, 4, 5]);
    assert_eq!(history.messages[0].message.reply_count, 2);
    assert_eq!(history.messages[3].message, deeper);

    // A deleted reply stays in the thread as a tombstone without attachments, and is no
    // longer counted.
    let gone = alice.delete(room, 4).await.expect("delete");
    assert!(gone.attachments.is_empty() && gone.body.is_empty());
    assert_eq!(gone.thread, Some(1));
    let thread = bob.thread(room, 1, Page::default()).await.expect("thread");
    assert_eq!(seqs(&thread.messages), vec![1, 3, 4]);
    assert_eq!(thread.messages[0].message.reply_count, 1);
    assert!(thread.messages[2].message.attachments.is_empty());
}

#[tokio::test]
async fn refused_replies_and_threads_keep_their_codes_and_store_nothing() {
    let server = Server::start().await;
    let (alice, _alice_events) = connect(&server, "alice").await;
    let room = alice
        .create_room("refusals", Visibility::Public)
        .await
        .expect("room")
        .id;
    alice.send(room, "root").await.expect("root"); // 1
    alice
        .send_with(room, Draft::new("reply").reply_to(1))
        .await
        .expect("reply"); // 2

    // Ten attachments are fine; eleven are too large.
    let ten = alice
        .send_with(room, Draft::new("ten").attachments((0..10).map(photo)))
        .await
        .expect("ten attachments");
    assert_eq!((ten.message.seq, ten.message.attachments.len()), (3, 10));
    let eleven = alice
        .send_with(room, Draft::new("eleven").attachments((0..11).map(photo)))
        .await;
    assert_eq!(code(eleven), Some(ErrorCode::TooLarge));
    // A malformed attachment is invalid; an empty body without attachments too.
    let mut ftp = photo(1);
    ftp.url = "ftp://files.example/x".into();
    assert_eq!(
        code(alice.send_with(room, Draft::new("x").attachment(ftp)).await),
        Some(ErrorCode::Invalid)
    );
    assert_eq!(
        code(alice.send_with(room, "").await),
        Some(ErrorCode::Invalid)
    );
    // A reply to a message that is not there.
    assert_eq!(
        code(
            alice
                .send_with(room, Draft::new("to nothing").reply_to(99))
                .await
        ),
        Some(ErrorCode::NotFound)
    );
    // Threads: a missing root is not found, a reply is no root.
    assert_eq!(
        code(alice.thread(room, 99, Page::default()).await),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        code(alice.thread(room, 2, Page::default()).await),
        Some(ErrorCode::Invalid)
    );
    // None of the refused sends stored anything, and the client goes on.
    let history = alice.history(room, Page::default()).await.expect("history");
    assert_eq!(history.last_seq, 3);
    assert_eq!(seqs(&history.messages), vec![1, 2, 3]);
    assert_eq!(history.messages[0].message.reply_count, 1);
}
