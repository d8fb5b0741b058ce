//! Authorisation and validation: outsiders, bad input, edit and delete rights, and blocks
//! are refused with typed errors, change nothing and tell nobody.

mod common;

use chat_core::engine::{Command, Event, Reply, ResumeOutcome, ResumePoint};
use chat_core::model::{FriendStatus, HistoryPage};
use chat_core::ports::Store;
use chat_core::ErrorCode;
use common::{uid, World};

#[tokio::test]
async fn outsiders_are_refused_everything_and_nobody_hears_of_it() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut eve = w.connect("eve").await;
    let room = alice.create_room("general", false).await;
    let m = alice.send(room.id, "members only").await;
    let id = room.id;
    let denials = [
        (
            Command::History {
                conversation: id,
                before: None,
                after: None,
                limit: None,
                thread: None,
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Send {
                conversation: id,
                body: "let me in".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Typing {
                conversation: id,
                typing: true,
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::MarkRead {
                conversation: id,
                seq: 1,
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::MarkDelivered {
                conversation: id,
                seq: 1,
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Edit {
                conversation: id,
                seq: m.seq,
                body: "x".into(),
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Delete {
                conversation: id,
                seq: m.seq,
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Invite {
                conversation: id,
                user: uid("mallory"),
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Members {
                conversation: id,
                after: None,
                limit: None,
            },
            ErrorCode::Forbidden,
        ),
        (Command::Leave { conversation: id }, ErrorCode::Forbidden),
    ];
    for (cmd, code) in denials {
        assert_eq!(eve.deny(cmd.clone()).await, code, "{cmd:?}");
    }
    match eve
        .run(Command::Resume {
            conversations: vec![ResumePoint {
                conversation: id,
                last_seq: 0,
            }],
        })
        .await
    {
        Reply::Resumed { conversations } => {
            assert_eq!(conversations[0].outcome, ResumeOutcome::NotFound);
            assert!(
                conversations[0].messages.is_empty(),
                "no message leaks through resume"
            );
        }
        other => panic!("{other:?}"),
    }
    alice.assert_quiet();
    eve.assert_quiet();
    let history = w
        .store
        .history(id, HistoryPage::After(0), 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "members only");
    assert!(w
        .store
        .member(id, &uid("mallory"))
        .await
        .expect("store")
        .is_none());
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_changes_nothing() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    let id = room.id;
    let big = "x".repeat(4097);
    let cases = [
        (
            Command::Send {
                conversation: id,
                body: big.clone(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::TooLarge,
        ),
        (
            Command::Send {
                conversation: id,
                body: " \n ".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::Send {
                conversation: id,
                body: "ok".into(),
                client_id: Some("x".repeat(65)),
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::History {
                conversation: id,
                before: None,
                after: None,
                limit: Some(101),
                thread: None,
            },
            ErrorCode::Invalid,
        ),
        (
            Command::History {
                conversation: id,
                before: None,
                after: None,
                limit: Some(0),
                thread: None,
            },
            ErrorCode::Invalid,
        ),
        (
            Command::History {
                conversation: id,
                before: Some(3),
                after: Some(1),
                limit: None,
                thread: None,
            },
            ErrorCode::Invalid,
        ),
        (
            Command::CreateRoom {
                name: "".into(),
                visibility: Default::default(),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::CreateRoom {
                name: "bad/name".into(),
                visibility: Default::default(),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::CreateRoom {
                name: "general".into(),
                visibility: Default::default(),
            },
            ErrorCode::Conflict,
        ),
        (
            Command::ListConversations {
                limit: Some(10_000),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::Edit {
                conversation: id,
                seq: 1,
                body: big,
            },
            ErrorCode::TooLarge,
        ),
        (
            Command::Send {
                conversation: chat_core::ConversationId(uuid::Uuid::nil()),
                body: "x".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
            ErrorCode::NotFound,
        ),
    ];
    for (cmd, code) in cases {
        assert_eq!(alice.deny(cmd.clone()).await, code, "{}", cmd.kind());
    }
    assert_eq!(
        w.store
            .conversation(id)
            .await
            .expect("store")
            .expect("room")
            .last_seq,
        0,
        "nothing was appended"
    );
    alice.assert_quiet();
    // The session still works.
    assert_eq!(alice.send(id, "fine").await.seq, 1);
}

#[tokio::test]
async fn only_the_sender_edits_or_deletes() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice.events();
    let m = alice.send(room.id, "tpyo").await;
    bob.events();

    for cmd in [
        Command::Edit {
            conversation: room.id,
            seq: m.seq,
            body: "mine now".into(),
        },
        Command::Delete {
            conversation: room.id,
            seq: m.seq,
        },
    ] {
        assert_eq!(bob.deny(cmd).await, ErrorCode::Forbidden);
    }
    assert_eq!(
        alice
            .deny(Command::Edit {
                conversation: room.id,
                seq: 99,
                body: "x".into()
            })
            .await,
        ErrorCode::NotFound
    );
    alice.assert_quiet();
    bob.assert_quiet();
    assert_eq!(
        w.store
            .message(room.id, m.seq)
            .await
            .expect("store")
            .expect("message")
            .body,
        "tpyo"
    );

    w.advance(1000);
    let edited = match alice
        .run(Command::Edit {
            conversation: room.id,
            seq: m.seq,
            body: "typo".into(),
        })
        .await
    {
        Reply::Message { message } => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (edited.body.as_str(), edited.edited_at.is_some()),
        ("typo", true)
    );
    assert_eq!(bob.events(), vec![Event::MessageEdited { message: edited }]);
    let deleted = match alice
        .run(Command::Delete {
            conversation: room.id,
            seq: m.seq,
        })
        .await
    {
        Reply::Message { message } => message,
        other => panic!("{other:?}"),
    };
    assert!(deleted.is_deleted() && deleted.body.is_empty());
    assert_eq!(
        bob.events(),
        vec![Event::MessageDeleted {
            message: deleted.clone()
        }]
    );
    // Deleting again is harmless and quiet; editing a tombstone is a conflict.
    alice
        .run(Command::Delete {
            conversation: room.id,
            seq: m.seq,
        })
        .await;
    bob.assert_quiet();
    assert_eq!(
        alice
            .deny(Command::Edit {
                conversation: room.id,
                seq: m.seq,
                body: "zombie".into()
            })
            .await,
        ErrorCode::Conflict
    );
    // The seq stays taken.
    assert_eq!(alice.send(room.id, "next").await.seq, 2);
}

#[tokio::test]
async fn a_block_stops_direct_messages_and_requests() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    w.befriend(&mut alice, &mut bob).await;
    let conv = match alice.run(Command::OpenDirect { user: uid("bob") }).await {
        Reply::Direct { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    };
    bob.events();
    match bob.run(Command::Block { user: uid("alice") }).await {
        Reply::Friend { friend } => assert_eq!(friend.status, FriendStatus::Blocked),
        other => panic!("{other:?}"),
    }
    let got = alice.events();
    assert!(
        matches!(&got[..], [Event::Friend { friend }] if friend.status == FriendStatus::None),
        "alice sees the friendship end, not the block: {got:?}"
    );
    for cmd in [Command::Send {
        conversation: conv.id,
        body: "hello?".into(),
        client_id: None,
        reply_to: None,
        attachments: Vec::new(),
    }] {
        assert_eq!(alice.deny(cmd).await, ErrorCode::NotFriends);
    }
    assert_eq!(
        alice
            .deny(Command::FriendRequest { user: uid("bob") })
            .await,
        ErrorCode::Forbidden
    );
    assert_eq!(
        alice.deny(Command::OpenDirect { user: uid("bob") }).await,
        ErrorCode::NotFriends
    );
    assert_eq!(
        alice.deny(Command::Unblock { user: uid("bob") }).await,
        ErrorCode::NotFound,
        "only bob can unblock"
    );
    bob.assert_quiet();
    let friends = match bob.run(Command::ListFriends {}).await {
        Reply::Friends { friends } => friends,
        other => panic!("{other:?}"),
    };
    assert_eq!(friends.len(), 1);
    assert_eq!(friends[0].status, FriendStatus::Blocked);
    match alice.run(Command::ListFriends {}).await {
        Reply::Friends { friends } => {
            assert!(friends.is_empty(), "alice is not told she is blocked")
        }
        other => panic!("{other:?}"),
    }
    bob.run(Command::Unblock { user: uid("alice") }).await;
    alice.run(Command::FriendRequest { user: uid("bob") }).await;
}
