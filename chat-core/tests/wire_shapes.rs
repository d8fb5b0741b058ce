//! The JSON shapes of commands, replies and events: what transports put on the wire.

use chat_core::engine::{Command, Event};
use chat_core::model::{RoomRef, Visibility};

#[test]
fn commands_parse_from_tagged_json_and_reject_unknown_fields() {
    let c: Command = serde_json::from_str(
        r#"{"type":"send","conversation":"00000000-0000-0000-0000-000000000001","body":"hi"}"#,
    )
    .expect("send");
    assert!(matches!(c, Command::Send { ref body, client_id: None, .. } if body == "hi"));
    let c: Command = serde_json::from_str(r#"{"type":"unread_total"}"#).expect("unit variant");
    assert_eq!(c, Command::UnreadTotal {});
    let c: Command =
        serde_json::from_str(r#"{"type":"join","room":"general"}"#).expect("join by name");
    assert_eq!(
        c,
        Command::Join {
            room: RoomRef::Name("general".into()),
            create: false
        }
    );
    let c: Command =
        serde_json::from_str(r#"{"type":"create_room","name":"x"}"#).expect("defaults");
    assert_eq!(
        c,
        Command::CreateRoom {
            name: "x".into(),
            visibility: Visibility::Public
        }
    );
    assert!(serde_json::from_str::<Command>(r#"{"type":"send","conversation":"00000000-0000-0000-0000-000000000001","body":"hi","bogus":1}"#).is_err(), "unknown field");
    assert!(
        serde_json::from_str::<Command>(r#"{"type":"launch_missiles"}"#).is_err(),
        "unknown command"
    );
    assert!(
        serde_json::from_str::<Command>(r#"{"type":"send","body":"hi"}"#).is_err(),
        "missing field"
    );
    assert!(
        serde_json::from_str::<Command>(r#"{"type":"friend_request","user":""}"#).is_err(),
        "invalid user id"
    );
}

#[test]
fn events_round_trip_with_a_type_tag() {
    let e = Event::Typing {
        conversation: chat_core::ConversationId(uuid::Uuid::nil()),
        user: chat_core::UserId::new("bob").expect("id"),
        typing: true,
    };
    let json = serde_json::to_value(&e).expect("encode");
    assert_eq!(json["type"], "typing");
    assert_eq!(json["user"], "bob");
    assert_eq!(serde_json::from_value::<Event>(json).expect("decode"), e);
}
