//! Sending: a retried send is stored once, and system messages come from the embedder, not
//! from a session.

mod common;

use chat_core::engine::{Command, Event, Reply};
use chat_core::model::MessageKind;
use chat_core::ports::Store;
use chat_core::ErrorCode;
use common::{uid, World};

#[tokio::test]
async fn a_retried_send_is_stored_once_and_fanned_out_again() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    let send = Command::Send {
        conversation: room.id,
        body: "once".into(),
        client_id: Some("c-42".into()),
        reply_to: None,
        attachments: Vec::new(),
    };
    let (first, dup1) = match alice.run(send.clone()).await {
        Reply::Sent { message, duplicate } => (message, duplicate),
        other => panic!("{other:?}"),
    };
    let (again, dup2) = match alice.run(send).await {
        Reply::Sent { message, duplicate } => (message, duplicate),
        other => panic!("{other:?}"),
    };
    assert_eq!((dup1, dup2), (false, true));
    assert_eq!(again, first);
    // Stored once, and passed on once: the retry's fan-out finds this node already past
    // that seq (a node that never passed it on, e.g. one restarted after a crash between
    // commit and fan-out, passes it on).
    let once = Event::Message {
        message: first.clone(),
    };
    assert_eq!(bob.events(), vec![once]);
    assert_eq!(w.engine.stats().messages_sent, 1);
    assert_eq!(
        w.engine.stats().bus.duplicates,
        1,
        "the retry's fan-out dropped"
    );
    let stored = w
        .store
        .conversation(room.id)
        .await
        .expect("store")
        .expect("room");
    assert_eq!(stored.last_seq, 1, "stored once");
    // The same client id aimed at another conversation is a conflict, not a silent success.
    let other = alice.create_room("other", false).await;
    let reuse = Command::Send {
        conversation: other.id,
        body: "once".into(),
        client_id: Some("c-42".into()),
        reply_to: None,
        attachments: Vec::new(),
    };
    assert_eq!(alice.deny(reuse).await, ErrorCode::Conflict);
    let other = w
        .store
        .conversation(other.id)
        .await
        .expect("store")
        .expect("room");
    assert_eq!(other.last_seq, 0);
}

#[tokio::test]
async fn system_messages_come_from_the_embedder_and_cannot_be_edited() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    let m = w
        .engine
        .system_message(room.id, &uid("system"), "maintenance at noon")
        .await
        .expect("system message");
    assert_eq!(m.kind, MessageKind::System);
    assert_eq!(alice.events(), vec![Event::Message { message: m.clone() }]);
    let mut sys = w.connect("system").await;
    assert_eq!(
        sys.deny(Command::Delete {
            conversation: room.id,
            seq: m.seq
        })
        .await,
        ErrorCode::Forbidden
    );
    sys.assert_quiet();
    let missing = w
        .engine
        .system_message(
            chat_core::ConversationId(uuid::Uuid::nil()),
            &uid("system"),
            "x",
        )
        .await;
    assert_eq!(
        missing.map_err(|e| e.code()).err(),
        Some(ErrorCode::NotFound)
    );
    let empty = w.engine.system_message(room.id, &uid("system"), "  ").await;
    assert_eq!(empty.map_err(|e| e.code()).err(), Some(ErrorCode::Invalid));
}
