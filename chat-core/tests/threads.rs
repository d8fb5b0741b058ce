//! Replies, threads and attachments through the engine: a reply names a message of its
//! conversation and joins that message's thread; `history` reads one thread; attachments
//! are validated and bounded; every denial stores and delivers nothing.

mod common;

use chat_core::engine::{Command, Event, Reply};
use chat_core::model::{Attachment, Message};
use chat_core::ports::Store;
use chat_core::{ConversationId, ErrorCode, Seq};
use common::World;

fn attachment(n: usize) -> Attachment {
    Attachment {
        url: format!("https://files.example/{n}"),
        mime_type: "image/png".into(),
        size: 1_000 + n as u64,
        name: format!("photo-{n}.png"),
    }
}

fn send(
    conversation: ConversationId,
    body: &str,
    reply_to: Option<Seq>,
    attachments: Vec<Attachment>,
) -> Command {
    Command::Send {
        conversation,
        body: body.into(),
        client_id: None,
        reply_to,
        attachments,
    }
}

fn thread(conversation: ConversationId, root: Seq, before: Option<Seq>, limit: u32) -> Command {
    Command::History {
        conversation,
        before,
        after: None,
        limit: Some(limit),
        thread: Some(root),
    }
}

fn sent(reply: Reply) -> Message {
    match reply {
        Reply::Sent { message, .. } => message,
        other => panic!("expected sent, got {other:?}"),
    }
}

fn seqs(reply: Reply) -> Vec<(Seq, u32)> {
    match reply {
        Reply::History { messages, .. } => messages
            .into_iter()
            .map(|m| (m.message.seq, m.message.reply_count))
            .collect(),
        other => panic!("expected history, got {other:?}"),
    }
}

#[tokio::test]
async fn replies_join_their_thread_and_the_thread_reads_back() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    bob.events();
    let root = alice.send(room.id, "root").await;
    alice.send(room.id, "chatter").await;
    let first = sent(
        bob.run(send(
            room.id,
            "a reply",
            Some(root.seq),
            vec![attachment(1)],
        ))
        .await,
    );
    assert_eq!((first.reply_to, first.thread), (Some(1), Some(1)));
    assert_eq!(first.attachments, vec![attachment(1)]);
    let nested = sent(
        alice
            .run(send(room.id, "re: re", Some(first.seq), vec![]))
            .await,
    );
    assert_eq!(
        (nested.reply_to, nested.thread),
        (Some(first.seq), Some(1)),
        "a reply to a reply joins the root's thread and keeps what it answered"
    );
    // Members get replies as ordinary message events, fields and all.
    let got: Vec<Message> = bob
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(
        got.last(),
        Some(&nested),
        "the reply reached the other member"
    );

    assert_eq!(
        seqs(alice.run(thread(room.id, 1, None, 50)).await),
        vec![(1, 2), (3, 0), (4, 0)],
        "the root with its count, then its replies"
    );
    assert_eq!(
        seqs(alice.run(thread(room.id, 1, Some(4), 1)).await),
        vec![(3, 0)],
        "paged by seq"
    );
    // Deleting a reply keeps its place and drops it from the count.
    alice
        .run(Command::Delete {
            conversation: room.id,
            seq: nested.seq,
        })
        .await;
    assert_eq!(
        seqs(bob.run(thread(room.id, 1, None, 50)).await),
        vec![(1, 1), (3, 0), (4, 0)]
    );
    // A reply is not a root; a deleted message cannot be replied to.
    assert_eq!(
        alice.deny(thread(room.id, first.seq, None, 50)).await,
        ErrorCode::Invalid
    );
    assert_eq!(
        alice
            .deny(send(room.id, "to a tombstone", Some(nested.seq), vec![]))
            .await,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn attachments_are_bounded_and_validated_and_a_denial_stores_nothing() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    let only = sent(
        alice
            .run(send(room.id, "", None, vec![attachment(1), attachment(2)]))
            .await,
    );
    assert_eq!(only.body, "", "with attachments the text may be empty");
    let too_many: Vec<Attachment> = (0..11).map(attachment).collect();
    assert_eq!(
        alice.deny(send(room.id, "x", None, too_many)).await,
        ErrorCode::TooLarge,
        "more than ten attachments"
    );
    let mut long = attachment(0);
    long.name = "n".repeat(256);
    assert_eq!(
        alice.deny(send(room.id, "x", None, vec![long])).await,
        ErrorCode::TooLarge
    );
    for bad in [
        Attachment {
            url: "javascript:alert(1)".into(),
            ..attachment(0)
        },
        Attachment {
            url: "/relative/path".into(),
            ..attachment(0)
        },
        Attachment {
            mime_type: "png".into(),
            ..attachment(0)
        },
        Attachment {
            name: " ".into(),
            ..attachment(0)
        },
    ] {
        assert_eq!(
            alice
                .deny(send(room.id, "x", None, vec![bad.clone()]))
                .await,
            ErrorCode::Invalid,
            "{bad:?}"
        );
    }
    assert_eq!(
        alice.deny(send(room.id, " ", None, vec![])).await,
        ErrorCode::Invalid,
        "without attachments a blank body is still refused"
    );
    assert_eq!(
        alice.deny(send(room.id, "x", Some(99), vec![])).await,
        ErrorCode::NotFound,
        "a reply to a seq that does not exist"
    );
    let stored = w.store.conversation(room.id).await.expect("store");
    assert_eq!(
        stored.expect("room").last_seq,
        1,
        "no denial stored anything"
    );
}

async fn error(client: &common::Client, cmd: Command) -> String {
    match client.session.execute(cmd).await {
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
            e.to_string()
        }
        Ok(reply) => panic!("should be refused: {reply:?}"),
    }
}

#[tokio::test]
async fn a_thread_or_reply_elsewhere_looks_like_a_missing_one() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut eve = w.connect("eve").await;
    let room = alice.create_room("secret", true).await;
    alice.send(room.id, "root").await;
    let hidden = (
        error(&eve, thread(room.id, 1, None, 50)).await,
        error(&eve, send(room.id, "hi", Some(1), vec![])).await,
    );
    w.engine
        .delete_conversation(room.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let missing = (
        error(&eve, thread(room.id, 1, None, 50)).await,
        error(&eve, send(room.id, "hi", Some(1), vec![])).await,
    );
    assert_eq!(hidden, missing, "identical answers");
    let other = alice.create_room("open", false).await;
    assert_eq!(
        alice.deny(thread(other.id, 7, None, 50)).await,
        ErrorCode::NotFound,
        "a member asking for a thread root that does not exist"
    );
    eve.assert_quiet();
}
