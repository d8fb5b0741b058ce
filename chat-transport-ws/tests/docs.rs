//! The docs cannot drift: every JSON example in `docs/protocol.md` and `docs/http-api.md`
//! parses into the code's types, and every command and event is shown.

use std::collections::BTreeSet;

use chat_core::error::ErrorBody;
use chat_core::Reply;
use chat_transport_ws::protocol::{ClientFrame, Control, ServerFrame};
use serde_json::Value;

fn doc(name: &str) -> String {
    let path = format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (info string, body) of every fenced block whose info starts with `json`.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match current.as_mut() {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```json") {
                    current = Some((info.trim().to_owned(), String::new()));
                }
            }
            Some((_, body)) => {
                if line.trim_start().starts_with("```") {
                    out.extend(current.take());
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    out
}

const COMMANDS: [&str; 25] = [
    "create_room",
    "join",
    "leave",
    "invite",
    "open_direct",
    "send",
    "edit",
    "delete",
    "history",
    "mark_delivered",
    "mark_read",
    "typing",
    "list_conversations",
    "members",
    "unread_total",
    "online_friends",
    "friend_request",
    "friend_accept",
    "friend_decline",
    "friend_cancel",
    "friend_remove",
    "block",
    "unblock",
    "list_friends",
    "resume",
];

const EVENTS: [&str; 11] = [
    "message",
    "message_edited",
    "message_deleted",
    "receipt",
    "typing",
    "member_joined",
    "member_left",
    "conversation_added",
    "conversation_removed",
    "presence",
    "friend",
];

#[test]
fn every_protocol_example_parses_and_every_command_and_event_is_shown() {
    let text = doc("protocol.md");
    let mut commands = BTreeSet::new();
    let mut events = BTreeSet::new();
    let mut controls = BTreeSet::new();
    let mut replies = BTreeSet::new();
    let all = blocks(&text);
    assert!(
        all.len() > 40,
        "expected many examples, found {}",
        all.len()
    );
    for (info, body) in all {
        match info.as_str() {
            "client" => {
                let frame = ClientFrame::parse(&body)
                    .unwrap_or_else(|e| panic!("client example does not parse: {e:?}\n{body}"));
                commands.insert(frame.command.kind());
            }
            "server" => {
                let doc: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("server example is not JSON: {e}\n{body}"));
                let frame: ServerFrame = serde_json::from_value(doc.clone())
                    .unwrap_or_else(|e| panic!("server example does not parse: {e}\n{body}"));
                let again = serde_json::to_value(&frame).expect("encode");
                assert_eq!(
                    again, doc,
                    "server example does not round-trip (a misnamed or extra field?)\n{body}"
                );
                match frame {
                    ServerFrame::Event(e) => {
                        events.insert(e.kind());
                    }
                    ServerFrame::Control(Control::Reply { reply, .. }) => {
                        replies.insert(
                            serde_json::to_value(&reply).expect("reply")["type"]
                                .as_str()
                                .expect("type")
                                .to_owned(),
                        );
                        controls.insert("reply");
                    }
                    ServerFrame::Control(Control::Hello(_)) => {
                        controls.insert("hello");
                    }
                    ServerFrame::Control(Control::Error { .. }) => {
                        controls.insert("error");
                    }
                }
            }
            "" => {
                serde_json::from_str::<Value>(&body)
                    .unwrap_or_else(|e| panic!("example is not JSON: {e}\n{body}"));
            }
            other => panic!("unknown example kind {other:?}; use `json client` or `json server`"),
        }
    }
    let want: BTreeSet<&str> = COMMANDS.into_iter().collect();
    assert_eq!(commands, want, "every command has a client example");
    let want: BTreeSet<&str> = EVENTS.into_iter().collect();
    assert_eq!(events, want, "every event has a server example");
    assert_eq!(controls, ["error", "hello", "reply"].into_iter().collect());
    for r in [
        "room",
        "direct",
        "sent",
        "message",
        "history",
        "marks",
        "conversations",
        "members",
        "unread",
        "online",
        "friend",
        "friends",
        "resumed",
        "ok",
    ] {
        assert!(replies.contains(r), "no example of the `{r}` reply");
    }
}

#[test]
fn every_http_example_parses() {
    let text = doc("http-api.md");
    let all = blocks(&text);
    assert!(all.len() > 10, "expected examples, found {}", all.len());
    for (info, body) in all {
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("example is not JSON: {e}\n{body}"));
        match info.as_str() {
            "reply" => {
                let r: Reply = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("reply example does not parse: {e}\n{body}"));
                assert_eq!(
                    serde_json::to_value(&r).expect("encode"),
                    v,
                    "round trip\n{body}"
                );
            }
            "error" => {
                serde_json::from_value::<ErrorBody>(v)
                    .unwrap_or_else(|e| panic!("error example does not parse: {e}\n{body}"));
            }
            "stats" => {
                serde_json::from_value::<chat_core::engine::Stats>(v)
                    .unwrap_or_else(|e| panic!("stats example does not parse: {e}\n{body}"));
            }
            "request" | "" => {}
            other => panic!("unknown example kind {other:?}"),
        }
    }
}

#[test]
fn the_status_table_in_the_docs_matches_the_code() {
    let text = doc("http-api.md");
    for code in chat_core::ErrorCode::ALL {
        let status = chat_transport_ws::status_of(code).as_u16();
        let row = format!("| `{}` | {status} |", code.as_str());
        assert!(
            text.contains(&row),
            "docs/http-api.md lacks the row {row:?}"
        );
    }
}
