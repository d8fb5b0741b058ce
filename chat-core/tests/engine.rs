//! The engine driven through sessions: every command, the events each session receives,
//! and every denial (which must change nothing and tell nobody).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use chat_core::engine::{Command, Event, Reply, ResumeOutcome, ResumePoint};
use chat_core::memory::{MemoryTransport, Received};
use chat_core::model::{
    FriendStatus, HistoryPage, Limits, MessageKind, MessageStatus, Presence, Role, RoomRef,
    Watermarks,
};
use chat_core::ports::{CloseReason, Encoder, Identity, JsonEncoder, Store};
use chat_core::{ErrorCode, Result};
use common::{uid, World};

#[tokio::test]
async fn room_members_see_each_others_messages() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut alice_phone = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let mut carol = w.connect("carol").await;

    let room = alice.create_room("general", false).await;
    assert_eq!(
        alice_phone.events(),
        vec![Event::ConversationAdded {
            conversation: room.clone()
        }]
    );
    bob.join(room.id).await;
    let joined = Event::MemberJoined {
        conversation: room.id,
        user: uid("bob"),
        role: Role::Member,
    };
    assert_eq!(alice.events(), vec![joined.clone()]);
    assert_eq!(alice_phone.events(), vec![joined]);
    bob.assert_quiet();

    let m = alice.send(room.id, "hello").await;
    assert_eq!(
        (m.seq, m.sender.as_str(), m.body.as_str()),
        (1, "alice", "hello")
    );
    assert_eq!(
        m.created_at,
        chat_core::ports::Clock::now(&*w.clock),
        "time comes from the injected clock"
    );
    let expect = vec![Event::Message { message: m.clone() }];
    assert_eq!(bob.events(), expect);
    assert_eq!(
        alice_phone.events(),
        expect,
        "the sender's other device gets it too"
    );
    alice.assert_quiet();
    carol.assert_quiet();

    let r = bob.send(room.id, "hi alice").await;
    assert_eq!(r.seq, 2);
    assert_eq!(alice.events(), vec![Event::Message { message: r }]);
    // Joining again changes nothing and tells nobody.
    match bob
        .run(Command::Join {
            room: RoomRef::Name("general".into()),
            create: false,
        })
        .await
    {
        Reply::Room { joined, .. } => assert!(!joined),
        other => panic!("{other:?}"),
    }
    alice.assert_quiet();
}

#[tokio::test]
async fn join_by_name_can_create_the_room() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = match alice
        .run(Command::Join {
            room: RoomRef::Name("lobby".into()),
            create: true,
        })
        .await
    {
        Reply::Room {
            conversation,
            joined,
        } => {
            assert!(joined);
            conversation
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        bob.deny(Command::Join {
            room: RoomRef::Name("nowhere".into()),
            create: false
        })
        .await,
        ErrorCode::NotFound
    );
    bob.run(Command::Join {
        room: RoomRef::Name("lobby".into()),
        create: true,
    })
    .await;
    assert_eq!(
        alice.events(),
        vec![Event::MemberJoined {
            conversation: room.id,
            user: uid("bob"),
            role: Role::Member
        }]
    );
    let m = w
        .store
        .member(room.id, &uid("alice"))
        .await
        .expect("store")
        .expect("member");
    assert_eq!(m.role, Role::Owner, "the creator owns it");
    bob.assert_quiet();
}

#[tokio::test]
async fn leaving_stops_delivery_and_tells_the_room() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice.events();
    bob.run(Command::Leave {
        conversation: room.id,
    })
    .await;
    assert_eq!(
        alice.events(),
        vec![Event::MemberLeft {
            conversation: room.id,
            user: uid("bob")
        }]
    );
    alice.send(room.id, "anyone?").await;
    bob.assert_quiet();
    assert_eq!(
        bob.deny(Command::Leave {
            conversation: room.id
        })
        .await,
        ErrorCode::Forbidden
    );
    assert_eq!(
        bob.deny(Command::Send {
            conversation: room.id,
            body: "back?".into(),
            client_id: None
        })
        .await,
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn private_rooms_are_invitation_only() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let mut carol = w.connect("carol").await;
    let room = alice.create_room("secret", true).await;
    // Not joinable, and not revealed.
    assert_eq!(
        bob.deny(Command::Join {
            room: room.id.into(),
            create: false
        })
        .await,
        ErrorCode::NotFound
    );
    assert_eq!(
        bob.deny(Command::History {
            conversation: room.id,
            before: None,
            after: None,
            limit: None
        })
        .await,
        ErrorCode::NotFound
    );
    alice
        .run(Command::Invite {
            conversation: room.id,
            user: uid("bob"),
        })
        .await;
    assert_eq!(
        bob.events(),
        vec![
            Event::ConversationAdded {
                conversation: room.clone()
            },
            Event::MemberJoined {
                conversation: room.id,
                user: uid("bob"),
                role: Role::Member
            },
        ],
        "the invitee learns of the room, then sees the membership like every member"
    );
    alice.assert_quiet();
    // A member who is not an owner cannot invite to a private room.
    assert_eq!(
        bob.deny(Command::Invite {
            conversation: room.id,
            user: uid("carol")
        })
        .await,
        ErrorCode::Forbidden
    );
    assert_eq!(
        alice
            .deny(Command::Invite {
                conversation: room.id,
                user: uid("bob")
            })
            .await,
        ErrorCode::Conflict,
        "already a member"
    );
    carol.assert_quiet();
    alice.assert_quiet();
    let members = match bob
        .run(Command::Members {
            conversation: room.id,
            after: None,
            limit: None,
        })
        .await
    {
        Reply::Members { members } => members
            .into_iter()
            .map(|m| (m.user.to_string(), m.role))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        members,
        vec![("alice".into(), Role::Owner), ("bob".into(), Role::Member)]
    );
    assert_eq!(
        carol
            .deny(Command::Members {
                conversation: room.id,
                after: None,
                limit: None
            })
            .await,
        ErrorCode::NotFound
    );
}

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
                client_id: None
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
            },
            ErrorCode::Forbidden,
        ),
        (
            Command::Send {
                conversation: id,
                body: "let me in".into(),
                client_id: None,
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
            },
            ErrorCode::TooLarge,
        ),
        (
            Command::Send {
                conversation: id,
                body: " \n ".into(),
                client_id: None,
            },
            ErrorCode::Invalid,
        ),
        (
            Command::Send {
                conversation: id,
                body: "ok".into(),
                client_id: Some("x".repeat(65)),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::History {
                conversation: id,
                before: None,
                after: None,
                limit: Some(101),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::History {
                conversation: id,
                before: None,
                after: None,
                limit: Some(0),
            },
            ErrorCode::Invalid,
        ),
        (
            Command::History {
                conversation: id,
                before: Some(3),
                after: Some(1),
                limit: None,
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
    // Stored once; the retry is fanned out again (its first fan-out may have been lost
    // with the ack), and clients de-duplicate by seq.
    let again = Event::Message {
        message: first.clone(),
    };
    assert_eq!(bob.events(), vec![again.clone(), again]);
    assert_eq!(w.engine.stats().messages_sent, 1);
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
async fn unread_counts_exclude_own_and_deleted_messages() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    let other = alice.create_room("other", false).await;
    bob.join(room.id).await;
    bob.join(other.id).await;
    bob.send(room.id, "1").await;
    let doomed = bob.send(room.id, "2").await;
    alice.send(room.id, "mine").await;
    bob.send(other.id, "3").await;
    bob.run(Command::Delete {
        conversation: room.id,
        seq: doomed.seq,
    })
    .await;
    match alice.run(Command::UnreadTotal {}).await {
        Reply::Unread { unread } => assert_eq!(unread, 2),
        other => panic!("{other:?}"),
    }
    let list = match alice.run(Command::ListConversations { limit: None }).await {
        Reply::Conversations { conversations } => conversations,
        other => panic!("{other:?}"),
    };
    let counts: Vec<(String, u64)> = list
        .iter()
        .map(|s| (s.conversation.id.to_string(), s.unread))
        .collect();
    assert_eq!(counts.len(), 2);
    assert!(
        counts.contains(&(room.id.to_string(), 1)) && counts.contains(&(other.id.to_string(), 1)),
        "{counts:?}"
    );
    alice
        .run(Command::MarkRead {
            conversation: room.id,
            seq: 3,
        })
        .await;
    match alice.run(Command::UnreadTotal {}).await {
        Reply::Unread { unread } => assert_eq!(unread, 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn typing_is_a_lease_told_once_and_ended_by_time_or_a_message() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.typing_ttl_ms = 5000;
        l
    })
    .await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice.events();
    let typing = |on| Command::Typing {
        conversation: room.id,
        typing: on,
    };
    let ev = |on| Event::Typing {
        conversation: room.id,
        user: uid("bob"),
        typing: on,
    };
    bob.run(typing(true)).await;
    assert_eq!(alice.events(), vec![ev(true)]);
    w.advance(3000);
    bob.run(typing(true)).await;
    alice.assert_quiet();
    w.advance(3000);
    w.engine.tick().await;
    alice.assert_quiet();
    w.advance(2500);
    w.engine.tick().await;
    assert_eq!(alice.events(), vec![ev(false)], "the renewed lease ran out");
    bob.assert_quiet();

    bob.run(typing(true)).await;
    assert_eq!(alice.events(), vec![ev(true)]);
    let m = bob.send(room.id, "done typing").await;
    assert_eq!(
        alice.events(),
        vec![Event::Message { message: m }],
        "the message itself ends typing"
    );
    w.advance(10_000);
    w.engine.tick().await;
    alice.assert_quiet();
    bob.run(typing(true)).await;
    bob.run(typing(false)).await;
    assert_eq!(alice.events(), vec![ev(true), ev(false)]);
    bob.run(typing(false)).await;
    alice.assert_quiet();
}

#[tokio::test]
async fn presence_follows_the_last_connection_and_reaches_friends_and_co_members() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let mut carol = w.connect("carol").await;
    let mut dave = w.connect("dave").await;
    w.befriend(&mut alice, &mut bob).await;
    let room = carol.create_room("general", false).await;
    alice.join(room.id).await;
    carol.events();
    alice.events();
    bob.events();

    match bob.run(Command::OnlineFriends {}).await {
        Reply::Online { users } => assert_eq!(users, vec![uid("alice")]),
        other => panic!("{other:?}"),
    }
    let phone = w.connect("alice").await;
    bob.assert_quiet();
    carol.assert_quiet();
    alice.session.close().await;
    bob.assert_quiet();
    carol.assert_quiet();
    w.advance(60_000);
    phone.session.close().await;
    let offline = Event::Presence {
        presence: Presence {
            user: uid("alice"),
            online: false,
            last_seen: Some(chat_core::ports::Clock::now(&*w.clock)),
        },
    };
    assert_eq!(bob.events(), vec![offline.clone()], "a friend is told");
    assert_eq!(carol.events(), vec![offline], "a co-member is told");
    dave.assert_quiet();
    let profile = w
        .store
        .user(&uid("alice"))
        .await
        .expect("store")
        .expect("profile");
    assert_eq!(
        profile.last_seen,
        Some(chat_core::ports::Clock::now(&*w.clock))
    );
    match bob.run(Command::OnlineFriends {}).await {
        Reply::Online { users } => assert!(users.is_empty()),
        other => panic!("{other:?}"),
    }
    let _back = w.connect("alice").await;
    let online = Event::Presence {
        presence: Presence {
            user: uid("alice"),
            online: true,
            last_seen: None,
        },
    };
    assert_eq!(bob.events(), vec![online.clone()]);
    assert_eq!(carol.events(), vec![online]);
    dave.assert_quiet();
}

#[tokio::test]
async fn resume_replays_exactly_what_was_missed_or_says_too_far_behind() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.max_resume_gap = 5;
        l
    })
    .await;
    let alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    let busy = alice.create_room("busy", false).await;
    bob.join(room.id).await;
    bob.join(busy.id).await;
    alice.send(room.id, "seen").await;
    bob.events();
    bob.session.close().await;

    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(alice.send(room.id, &format!("missed {i}")).await);
    }
    for i in 0..8 {
        alice.send(busy.id, &format!("flood {i}")).await;
    }
    let mut bob = w.connect("bob").await;
    let reply = bob
        .run(Command::Resume {
            conversations: vec![
                ResumePoint {
                    conversation: room.id,
                    last_seq: 1,
                },
                ResumePoint {
                    conversation: busy.id,
                    last_seq: 0,
                },
            ],
        })
        .await;
    let Reply::Resumed { conversations } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(conversations[0].outcome, ResumeOutcome::Replayed);
    assert_eq!(
        conversations[0].messages, missed,
        "exactly the missed messages, in order"
    );
    assert_eq!(conversations[0].last_seq, 4);
    assert_eq!(conversations[1].outcome, ResumeOutcome::TooFarBehind);
    assert!(
        conversations[1].messages.is_empty(),
        "never a partial replay"
    );
    assert_eq!(conversations[1].last_seq, 8);
    bob.assert_quiet();
    // Live again after the resume.
    let live = alice.send(room.id, "live").await;
    assert_eq!(bob.events(), vec![Event::Message { message: live }]);
    // Up to date: nothing to replay.
    let Reply::Resumed { conversations } = bob
        .run(Command::Resume {
            conversations: vec![ResumePoint {
                conversation: room.id,
                last_seq: 5,
            }],
        })
        .await
    else {
        panic!()
    };
    assert_eq!(
        (conversations[0].outcome, conversations[0].messages.len()),
        (ResumeOutcome::Replayed, 0)
    );
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_and_the_others_keep_receiving() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut slow = w.connect_to(&w.engine, "bob", 4).await;
    let mut carol = w.connect("carol").await;
    let room = alice.create_room("general", false).await;
    slow.join(room.id).await;
    carol.join(room.id).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(alice.send(room.id, &format!("m{i}")).await);
    }
    let got: Vec<_> = carol
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(got, sent, "the others keep receiving everything");
    assert!(slow.session.is_closed());
    assert_eq!(slow.conn.close_reason(), Some(CloseReason::SlowConsumer));
    let mut queued = 0;
    loop {
        match slow.conn.recv().await {
            Some(Received::Event(_)) => queued += 1,
            Some(Received::Closed(reason)) => {
                assert_eq!(reason, CloseReason::SlowConsumer);
                break;
            }
            None => panic!("the close reason must be reported"),
        }
    }
    assert_eq!(queued, 4, "what fit in the queue stays readable");
    let stats = w.engine.stats();
    assert_eq!(stats.slow_consumer_disconnects, 1);
    // The slow client resumes by seq and loses nothing.
    slow.session.close().await;
    let bob = w.connect("bob").await;
    let Reply::Resumed { conversations } = bob
        .run(Command::Resume {
            conversations: vec![ResumePoint {
                conversation: room.id,
                last_seq: 3,
            }],
        })
        .await
    else {
        panic!()
    };
    assert_eq!(conversations[0].messages, sent[3..].to_vec());
}

#[tokio::test]
async fn volatile_events_are_dropped_not_fatal_when_a_queue_is_full() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let mut bob = w.connect_to(&w.engine, "bob", 1).await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice
        .run(Command::Typing {
            conversation: room.id,
            typing: true,
        })
        .await;
    alice
        .run(Command::Typing {
            conversation: room.id,
            typing: false,
        })
        .await;
    assert!(!bob.session.is_closed(), "typing never cuts a client off");
    assert_eq!(w.engine.stats().volatile_dropped, 1);
    assert_eq!(bob.events().len(), 1);
}

#[tokio::test]
async fn fan_out_encodes_once_per_wire_format() {
    struct Counting(AtomicUsize);
    impl Encoder for Counting {
        fn format(&self) -> &'static str {
            "counting"
        }
        fn encode(&self, event: &Event) -> Result<Bytes> {
            self.0.fetch_add(1, Ordering::SeqCst);
            JsonEncoder.encode(event)
        }
    }
    let w = World::new().await;
    let counter = Arc::new(Counting(AtomicUsize::new(0)));
    let alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    let mut conns = Vec::new();
    for i in 0..20 {
        let (t, conn) = MemoryTransport::with_encoder(64, counter.clone());
        let s = w
            .engine
            .open_session(Identity::new(uid(&format!("u{i}"))), t)
            .await
            .expect("session");
        s.execute(Command::Join {
            room: room.id.into(),
            create: false,
        })
        .await
        .expect("join");
        conns.push((s, conn));
    }
    let json_reader = w.connect("json-reader").await;
    json_reader.join(room.id).await;
    let before = counter.0.load(Ordering::SeqCst);
    alice.send(room.id, "to everyone").await;
    assert_eq!(
        counter.0.load(Ordering::SeqCst) - before,
        1,
        "one encode for 20 recipients"
    );
    let frames: Vec<Bytes> = conns
        .iter_mut()
        .map(|(_, c)| {
            let mut last = None;
            while let Some(f) = c.try_recv_frame() {
                last = Some(f);
            }
            last.expect("a frame")
        })
        .collect();
    assert!(
        frames.windows(2).all(|p| p[0].as_ptr() == p[1].as_ptr()),
        "the bytes are shared, not copied"
    );
}

#[tokio::test]
async fn nothing_is_delivered_unless_the_store_committed() {
    let store = Arc::new(chat_core::memory::MemoryStore::new());
    let engine = chat_core::Engine::builder(store.clone())
        .maintenance(None)
        .build()
        .await
        .expect("engine");
    let (ta, _ca) = MemoryTransport::new(16);
    let (tb, mut cb) = MemoryTransport::new(16);
    let alice = engine
        .open_session(Identity::new(uid("alice")), ta)
        .await
        .expect("alice");
    let bob = engine
        .open_session(Identity::new(uid("bob")), tb)
        .await
        .expect("bob");
    let Ok(Reply::Room { conversation, .. }) = alice
        .execute(Command::CreateRoom {
            name: "r".into(),
            visibility: Default::default(),
        })
        .await
    else {
        panic!()
    };
    bob.execute(Command::Join {
        room: conversation.id.into(),
        create: false,
    })
    .await
    .expect("join");
    store.fail_appends(true);
    let err = alice
        .execute(Command::Send {
            conversation: conversation.id,
            body: "lost?".into(),
            client_id: None,
        })
        .await;
    assert_eq!(
        err.map_err(|e| e.code()).err(),
        Some(ErrorCode::Unavailable),
        "the sender is told, not acked"
    );
    assert!(
        cb.drain().is_empty(),
        "nobody receives an uncommitted message"
    );
    assert_eq!(engine.stats().messages_sent, 0);
    store.fail_appends(false);
    let ok = alice
        .execute(Command::Send {
            conversation: conversation.id,
            body: "now".into(),
            client_id: None,
        })
        .await;
    assert!(
        matches!(ok, Ok(Reply::Sent { ref message, .. }) if message.seq == 1),
        "{ok:?}"
    );
    assert_eq!(cb.drain().len(), 1);
}

#[tokio::test]
async fn two_nodes_share_a_store_and_a_bus() {
    let w = World::new().await;
    let node2 = World::node(&w.store, &w.bus, &w.clock, Limits::default()).await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect_to(&node2, "bob", 64).await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    assert_eq!(
        alice.events(),
        vec![Event::MemberJoined {
            conversation: room.id,
            user: uid("bob"),
            role: Role::Member
        }]
    );
    let m = alice.send(room.id, "across nodes").await;
    assert_eq!(bob.events(), vec![Event::Message { message: m }]);
    let r = bob.send(room.id, "back").await;
    assert_eq!(alice.events(), vec![Event::Message { message: r }]);
    // A friendship and its presence across nodes.
    w.befriend(&mut alice, &mut bob).await;
    match bob.run(Command::OnlineFriends {}).await {
        Reply::Online { users } => assert_eq!(users, vec![uid("alice")]),
        other => panic!("{other:?}"),
    }
    // Bob's second device on node 1 makes bob online on two nodes; closing one keeps him online.
    let phone = w.connect("bob").await;
    bob.session.close().await;
    alice.assert_quiet();
    phone.session.close().await;
    let got = alice.events();
    assert!(
        matches!(&got[..], [Event::Presence { presence }] if presence.user == uid("bob") && !presence.online),
        "{got:?}"
    );
    assert_eq!(node2.stats().connections, 0);
    assert_eq!(w.engine.stats().connections, 1);
}

#[tokio::test]
async fn commands_are_rate_limited_per_session() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.commands_per_second = 1;
        l.command_burst = 2;
        l
    })
    .await;
    let alice = w.connect("alice").await;
    let other = w.connect("alice").await;
    alice.run(Command::UnreadTotal {}).await;
    alice.run(Command::UnreadTotal {}).await;
    assert_eq!(
        alice.deny(Command::UnreadTotal {}).await,
        ErrorCode::RateLimited
    );
    other.run(Command::UnreadTotal {}).await;
    w.advance(1000);
    alice.run(Command::UnreadTotal {}).await;
    assert_eq!(
        alice.deny(Command::UnreadTotal {}).await,
        ErrorCode::RateLimited
    );
}

#[tokio::test]
async fn stats_count_connections_users_and_live_conversations() {
    let w = World::new().await;
    let a1 = w.connect("alice").await;
    let _a2 = w.connect("alice").await;
    let b = w.connect("bob").await;
    let room = a1.create_room("general", false).await;
    b.join(room.id).await;
    a1.send(room.id, "x").await;
    let s = w.engine.stats();
    assert_eq!(
        (
            s.connections,
            s.online_users,
            s.live_conversations,
            s.messages_sent
        ),
        (3, 2, 1, 1)
    );
    // conversation_added to alice's other device (1), member_joined to both of alice's
    // sessions (2), the message to alice's other device and bob (2).
    assert_eq!(s.deliveries, 5);
    assert_eq!(s.append_latency.count(), 1, "the append was timed");
    b.session.close().await;
    a1.session.close().await;
    let s = w.engine.stats();
    assert_eq!(
        (s.connections, s.online_users, s.live_conversations),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn shutdown_closes_every_session_with_its_reason() {
    let w = World::new().await;
    let mut a = w.connect("alice").await;
    let mut b = w.connect("bob").await;
    w.engine.shutdown().await;
    assert_eq!(
        a.conn.recv().await,
        Some(Received::Closed(CloseReason::Shutdown))
    );
    assert_eq!(
        b.conn.recv().await,
        Some(Received::Closed(CloseReason::Shutdown))
    );
    assert_eq!(w.engine.stats().connections, 0);
}

#[tokio::test]
async fn deleting_a_room_tells_its_members() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    bob.join(room.id).await;
    alice.events();
    w.engine.delete_conversation(room.id).await.expect("delete");
    assert_eq!(
        alice.events(),
        vec![Event::ConversationRemoved {
            conversation: room.id
        }]
    );
    assert_eq!(
        bob.events(),
        vec![Event::ConversationRemoved {
            conversation: room.id
        }]
    );
    assert_eq!(w.engine.stats().live_conversations, 0);
    assert_eq!(
        alice
            .deny(Command::Send {
                conversation: room.id,
                body: "x".into(),
                client_id: None
            })
            .await,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn http_style_commands_run_without_a_connection() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let room = alice.create_room("general", false).await;
    w.engine
        .execute_as(
            &uid("bob"),
            Command::Join {
                room: room.id.into(),
                create: false,
            },
        )
        .await
        .expect("join");
    let reply = w
        .engine
        .execute_as(
            &uid("bob"),
            Command::Send {
                conversation: room.id,
                body: "from http".into(),
                client_id: None,
            },
        )
        .await
        .expect("send");
    let Reply::Sent { message, .. } = reply else {
        panic!()
    };
    let got = alice.events();
    assert_eq!(got.last(), Some(&Event::Message { message }));
    let denied = w
        .engine
        .execute_as(
            &uid("eve"),
            Command::History {
                conversation: room.id,
                before: None,
                after: None,
                limit: None,
            },
        )
        .await;
    assert_eq!(
        denied.map_err(|e| e.code()).err(),
        Some(ErrorCode::Forbidden)
    );
}

#[tokio::test]
async fn sessions_opened_after_shutdown_are_refused() {
    let w = World::new().await;
    w.engine.shutdown().await;
    let (t, _conn) = MemoryTransport::new(8);
    let refused = w.engine.open_session(Identity::new(uid("late")), t).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::Unavailable)
    );
    assert_eq!(w.engine.stats().connections, 0);
}

/// A bus that yields to the scheduler around every call, as a networked bus would, so
/// that a disconnect and a reconnect of one user really interleave.
struct YieldingBus(chat_core::memory::MemoryBus);

#[async_trait::async_trait]
impl chat_core::ports::Bus for YieldingBus {
    async fn attach(
        &self,
        node: chat_core::NodeId,
        sink: Arc<dyn chat_core::ports::BusSink>,
    ) -> Result<()> {
        self.0.attach(node, sink).await
    }
    async fn detach(&self, node: chat_core::NodeId) -> Result<()> {
        self.0.detach(node).await
    }
    async fn subscribe(
        &self,
        node: chat_core::NodeId,
        topic: chat_core::ports::Topic,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let r = self.0.subscribe(node, topic).await;
        tokio::task::yield_now().await;
        r
    }
    async fn unsubscribe(
        &self,
        node: chat_core::NodeId,
        topic: chat_core::ports::Topic,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let r = self.0.unsubscribe(node, topic).await;
        tokio::task::yield_now().await;
        r
    }
    async fn publish(
        &self,
        origin: chat_core::NodeId,
        d: Arc<chat_core::engine::Delivery>,
    ) -> Result<()> {
        self.0.publish(origin, d).await
    }
    async fn renew_presence(
        &self,
        node: chat_core::NodeId,
        users: &[chat_core::UserId],
        ttl: std::time::Duration,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        self.0.renew_presence(node, users, ttl).await
    }
    async fn drop_presence(&self, node: chat_core::NodeId, user: &chat_core::UserId) -> Result<()> {
        tokio::task::yield_now().await;
        self.0.drop_presence(node, user).await
    }
    async fn online(&self, users: &[chat_core::UserId]) -> Result<Vec<chat_core::UserId>> {
        tokio::task::yield_now().await;
        self.0.online(users).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_racing_the_disconnect_leaves_the_user_online_and_reachable() {
    let w = World::new().await;
    let bus = Arc::new(YieldingBus(chat_core::memory::MemoryBus::new(
        w.clock.clone(),
    )));
    let node = |bus: Arc<YieldingBus>| {
        chat_core::Engine::builder(w.store.clone())
            .bus(bus)
            .clock(w.clock.clone())
            .maintenance(None)
            .build()
    };
    let node1 = node(bus.clone()).await.expect("node 1");
    let node2 = node(bus.clone()).await.expect("node 2");
    let mut alice = w.connect_to(&node1, "alice", 256).await;
    let mut bob = w.connect_to(&node2, "bob", 256).await;
    w.befriend(&mut alice, &mut bob).await;
    for round in 0..50 {
        w.advance(1000); // keep bob under the command rate limit
        let (t, conn) = MemoryTransport::new(256);
        let engine = node1.clone();
        let (_, reopened) = tokio::join!(
            alice.session.close(),
            engine.open_session(Identity::new(uid("alice")), t)
        );
        alice = common::Client {
            session: reopened.expect("reopen"),
            conn,
        };
        let online = chat_core::ports::Bus::online(&*bus, &[uid("alice")])
            .await
            .expect("bus");
        assert_eq!(online, vec![uid("alice")], "round {round}: alice is online");
        // A user-topic event from the other node still reaches the new session.
        bob.run(Command::FriendRemove { user: uid("alice") }).await;
        bob.run(Command::FriendRequest { user: uid("alice") }).await;
        let got = alice.events();
        assert!(
            got.iter().any(|e| matches!(e, Event::Friend { friend } if friend.status == FriendStatus::RequestReceived)),
            "round {round}: {got:?}"
        );
        alice.run(Command::FriendAccept { user: uid("bob") }).await;
        alice.events();
        bob.events();
    }
}
