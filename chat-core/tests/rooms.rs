//! Rooms: creating, joining (by id or by name), leaving, private rooms by invitation, and a
//! room deleted under its members.

mod common;

use chat_core::engine::{Command, Event, Reply};
use chat_core::model::{Role, RoomRef};
use chat_core::ports::Store;
use chat_core::ErrorCode;
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
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
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
            limit: None,
            thread: None,
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
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            })
            .await,
        ErrorCode::NotFound
    );
}
