//! Direct conversations: friendship first, then one conversation per pair, message status
//! from the peer's watermarks, and a closed door after unfriending.

mod common;

use chat_core::engine::{Command, Event, Reply};
use chat_core::model::{FriendStatus, HistoryPage, MessageStatus, Presence, Watermarks};
use chat_core::ports::Store;
use chat_core::ErrorCode;
use common::{uid, World};

#[tokio::test]
async fn direct_messages_need_friendship() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    assert_eq!(
        alice.deny(Command::OpenDirect { user: uid("bob") }).await,
        ErrorCode::NotFriends
    );
    assert_eq!(
        alice.deny(Command::OpenDirect { user: uid("alice") }).await,
        ErrorCode::Invalid
    );
    bob.assert_quiet();

    alice.run(Command::FriendRequest { user: uid("bob") }).await;
    let got = bob.events();
    assert!(
        matches!(&got[..], [Event::Friend { friend }] if friend.user == uid("alice") && friend.status == FriendStatus::RequestReceived),
        "{got:?}"
    );
    assert_eq!(
        alice.deny(Command::OpenDirect { user: uid("bob") }).await,
        ErrorCode::NotFriends,
        "a request is not a friendship"
    );
    bob.run(Command::FriendAccept { user: uid("alice") }).await;
    let got = alice.events();
    assert!(
        matches!(&got[0], Event::Friend { friend } if friend.status == FriendStatus::Friends),
        "{got:?}"
    );
    assert!(
        got.contains(&Event::Presence {
            presence: Presence {
                user: uid("bob"),
                online: true,
                last_seen: None
            }
        }),
        "new friends learn the other is online: {got:?}"
    );
    bob.events();

    let conv = match alice.run(Command::OpenDirect { user: uid("bob") }).await {
        Reply::Direct {
            conversation,
            created,
        } => {
            assert!(created);
            conversation
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        bob.events(),
        vec![Event::ConversationAdded {
            conversation: conv.clone()
        }]
    );
    match bob.run(Command::OpenDirect { user: uid("alice") }).await {
        Reply::Direct {
            conversation,
            created,
        } => assert_eq!((conversation.id, created), (conv.id, false)),
        other => panic!("{other:?}"),
    }
    let m = alice.send(conv.id, "hey").await;
    assert_eq!(bob.events(), vec![Event::Message { message: m.clone() }]);

    // sent → delivered → read, from bob's watermarks.
    let status = |reply: Reply| match reply {
        Reply::History { messages, .. } => messages[0].status,
        other => panic!("{other:?}"),
    };
    let history = Command::History {
        conversation: conv.id,
        before: None,
        after: None,
        limit: Some(10),
        thread: None,
    };
    assert_eq!(
        status(alice.run(history.clone()).await),
        Some(MessageStatus::Sent)
    );
    bob.run(Command::MarkDelivered {
        conversation: conv.id,
        seq: m.seq,
    })
    .await;
    assert_eq!(
        alice.events(),
        vec![Event::Receipt {
            conversation: conv.id,
            user: uid("bob"),
            delivered_seq: 1,
            read_seq: 0
        }]
    );
    assert_eq!(
        status(alice.run(history.clone()).await),
        Some(MessageStatus::Delivered)
    );
    match bob
        .run(Command::MarkRead {
            conversation: conv.id,
            seq: m.seq,
        })
        .await
    {
        Reply::Marks { watermarks, .. } => assert_eq!(
            watermarks,
            Watermarks {
                delivered_seq: 1,
                read_seq: 1
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        alice.events(),
        vec![Event::Receipt {
            conversation: conv.id,
            user: uid("bob"),
            delivered_seq: 1,
            read_seq: 1
        }]
    );
    assert_eq!(status(alice.run(history).await), Some(MessageStatus::Read));
    // Marking again moves nothing and tells nobody.
    bob.run(Command::MarkRead {
        conversation: conv.id,
        seq: 1,
    })
    .await;
    alice.assert_quiet();
    bob.assert_quiet();

    // Unfriending closes the door; the history stays.
    bob.run(Command::FriendRemove { user: uid("alice") }).await;
    alice.events();
    assert_eq!(
        alice
            .deny(Command::Send {
                conversation: conv.id,
                body: "still there?".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            })
            .await,
        ErrorCode::NotFriends
    );
    bob.assert_quiet();
    assert_eq!(
        w.store
            .history(conv.id, HistoryPage::After(0), 10)
            .await
            .expect("history")
            .len(),
        1
    );
}
