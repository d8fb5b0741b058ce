//! Every command and every event survives its JSON encoding: decode(encode(x)) == x, for
//! generated values of every kind, including awkward strings and extreme numbers.

use chat_core::engine::{Command, Event, ResumePoint};
use chat_core::model::{
    Conversation, ConversationKind, FriendStatus, FriendView, Message, MessageKind, Presence, Role,
    RoomRef, Visibility,
};
use chat_core::{ConversationId, MessageId, Seq, UserId};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn conversation_id() -> impl Strategy<Value = ConversationId> {
    any::<u128>().prop_map(|n| ConversationId(uuid::Uuid::from_u128(n)))
}

fn user() -> impl Strategy<Value = UserId> {
    "[a-z0-9_.-]{1,32}".prop_map(|s| UserId::new(s).unwrap_or_else(|e| panic!("{e}")))
}

fn seq() -> impl Strategy<Value = Seq> {
    prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()]
}

/// Any text, including quotes, backslashes, control characters and non-BMP characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\"\\\\\u{1}\u{7f}\u{2028}😀é a]{0,40}"]
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

fn visibility() -> impl Strategy<Value = Visibility> {
    prop_oneof![Just(Visibility::Public), Just(Visibility::Private)]
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<u128>(),
        conversation_id(),
        seq(),
        user(),
        proptest::option::of(text()),
        prop_oneof![Just(MessageKind::User), Just(MessageKind::System)],
        text(),
        time(),
        proptest::option::of(time()),
        proptest::option::of(time()),
    )
        .prop_map(
            |(
                id,
                conversation,
                seq,
                sender,
                client_id,
                kind,
                body,
                created_at,
                edited_at,
                deleted_at,
            )| {
                Message {
                    id: MessageId(uuid::Uuid::from_u128(id)),
                    conversation,
                    seq,
                    sender,
                    client_id,
                    kind,
                    body,
                    created_at,
                    edited_at,
                    deleted_at,
                    reply_to: None,
                    thread: None,
                    reply_count: 0,
                    attachments: Vec::new(),
                }
            },
        )
}

fn conversation() -> impl Strategy<Value = Conversation> {
    let kind = prop_oneof![
        (text(), visibility())
            .prop_map(|(name, visibility)| ConversationKind::Room { name, visibility }),
        (user(), user()).prop_map(|(a, b)| ConversationKind::Direct { a, b }),
    ];
    (conversation_id(), kind, user(), time(), seq()).prop_map(
        |(id, kind, created_by, created_at, last_seq)| Conversation {
            id,
            kind,
            created_by,
            created_at,
            last_seq,
        },
    )
}

fn command() -> impl Strategy<Value = Command> {
    let c = conversation_id;
    prop_oneof![
        (text(), visibility())
            .prop_map(|(name, visibility)| Command::CreateRoom { name, visibility }),
        (
            prop_oneof![
                c().prop_map(RoomRef::Id),
                "[a-z][a-z0-9-]{0,20}".prop_map(RoomRef::Name)
            ],
            any::<bool>()
        )
            .prop_map(|(room, create)| Command::Join { room, create }),
        c().prop_map(|conversation| Command::Leave { conversation }),
        (c(), user()).prop_map(|(conversation, user)| Command::Invite { conversation, user }),
        user().prop_map(|user| Command::OpenDirect { user }),
        (c(), text(), proptest::option::of(text())).prop_map(|(conversation, body, client_id)| {
            Command::Send {
                conversation,
                body,
                client_id,
                reply_to: None,
                attachments: Vec::new(),
            }
        }),
        (c(), seq(), text()).prop_map(|(conversation, seq, body)| Command::Edit {
            conversation,
            seq,
            body
        }),
        (c(), seq()).prop_map(|(conversation, seq)| Command::Delete { conversation, seq }),
        (
            c(),
            proptest::option::of(seq()),
            proptest::option::of(seq()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(conversation, before, after, limit)| Command::History {
                conversation,
                before,
                after,
                limit,
                thread: None,
            }),
        (c(), seq()).prop_map(|(conversation, seq)| Command::MarkDelivered { conversation, seq }),
        (c(), seq()).prop_map(|(conversation, seq)| Command::MarkRead { conversation, seq }),
        (c(), any::<bool>()).prop_map(|(conversation, typing)| Command::Typing {
            conversation,
            typing
        }),
        proptest::option::of(any::<u32>()).prop_map(|limit| Command::ListConversations { limit }),
        (
            c(),
            proptest::option::of(user()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(conversation, after, limit)| Command::Members {
                conversation,
                after,
                limit
            }),
        Just(Command::UnreadTotal {}),
        Just(Command::OnlineFriends {}),
        user().prop_map(|user| Command::FriendRequest { user }),
        user().prop_map(|user| Command::FriendAccept { user }),
        user().prop_map(|user| Command::FriendDecline { user }),
        user().prop_map(|user| Command::FriendCancel { user }),
        user().prop_map(|user| Command::FriendRemove { user }),
        user().prop_map(|user| Command::Block { user }),
        user().prop_map(|user| Command::Unblock { user }),
        Just(Command::ListFriends {}),
        proptest::collection::vec(
            (c(), seq()).prop_map(|(conversation, last_seq)| ResumePoint {
                conversation,
                last_seq
            }),
            0..4
        )
        .prop_map(|conversations| Command::Resume { conversations }),
        text().prop_map(|token| Command::RefreshToken {
            token: chat_core::ports::Credential::new(token)
        }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let c = conversation_id;
    prop_oneof![
        message().prop_map(|message| Event::Message { message }),
        message().prop_map(|message| Event::MessageEdited { message }),
        message().prop_map(|message| Event::MessageDeleted { message }),
        (c(), user(), seq(), seq()).prop_map(|(conversation, user, delivered_seq, read_seq)| {
            Event::Receipt {
                conversation,
                user,
                delivered_seq,
                read_seq,
            }
        }),
        (c(), user(), any::<bool>()).prop_map(|(conversation, user, typing)| Event::Typing {
            conversation,
            user,
            typing
        }),
        (
            c(),
            user(),
            prop_oneof![Just(Role::Owner), Just(Role::Member)]
        )
            .prop_map(|(conversation, user, role)| Event::MemberJoined {
                conversation,
                user,
                role
            }),
        (c(), user()).prop_map(|(conversation, user)| Event::MemberLeft { conversation, user }),
        conversation().prop_map(|conversation| Event::ConversationAdded { conversation }),
        c().prop_map(|conversation| Event::ConversationRemoved { conversation }),
        c().prop_map(|conversation| Event::ResumeRequired { conversation }),
        (user(), any::<bool>(), proptest::option::of(time())).prop_map(
            |(user, online, last_seen)| Event::Presence {
                presence: Presence {
                    user,
                    online,
                    last_seen
                }
            }
        ),
        (
            user(),
            prop_oneof![
                Just(FriendStatus::None),
                Just(FriendStatus::Friends),
                Just(FriendStatus::RequestSent),
                Just(FriendStatus::RequestReceived),
                Just(FriendStatus::Blocked),
            ],
            time()
        )
            .prop_map(|(user, status, since)| Event::Friend {
                friend: FriendView {
                    user,
                    status,
                    since
                }
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_command_survives_json(cmd in command()) {
        let json = serde_json::to_string(&cmd).unwrap_or_else(|e| panic!("encode {cmd:?}: {e}"));
        let back: Command = serde_json::from_str(&json).unwrap_or_else(|e| panic!("decode {json}: {e}"));
        prop_assert_eq!(back, cmd);
    }

    #[test]
    fn every_event_survives_json(ev in event()) {
        let json = serde_json::to_string(&ev).unwrap_or_else(|e| panic!("encode {ev:?}: {e}"));
        let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("decode {json}: {e}"));
        prop_assert_eq!(back, ev);
    }
}

/// The generators above reach every wire kind, so a new command or event without a
/// generator fails here instead of going untested.
#[test]
fn the_generators_cover_every_kind() {
    let mut runner = TestRunner::deterministic();
    let mut commands = std::collections::BTreeSet::new();
    let mut events = std::collections::BTreeSet::new();
    for _ in 0..3000 {
        let c = command()
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("{e}"));
        commands.insert(c.current().kind());
        let e = event()
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("{e}"));
        events.insert(e.current().kind());
    }
    let all_commands: std::collections::BTreeSet<_> = Command::KINDS.iter().copied().collect();
    let all_events: std::collections::BTreeSet<_> = Event::KINDS.iter().copied().collect();
    assert_eq!(commands, all_commands, "commands without a generator");
    assert_eq!(events, all_events, "events without a generator");
}
