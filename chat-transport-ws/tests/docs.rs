//! The docs cannot drift: every JSON example in `docs/protocol.md` and `docs/http-api.md`
//! parses into the code's types, every command, event, reply and control frame kind
//! (the lists in the code, not a copy here) is shown, every reply example answers the
//! command the HTTP route table says it does, and the `hello` example is what a server
//! with the default settings sends.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chat_core::error::ErrorBody;
use chat_core::model::Limits;
use chat_core::{Command, Event, Reply};
use chat_transport_ws::protocol::{ClientFrame, Control, ServerFrame};
use chat_transport_ws::Config;
use serde_json::{json, Value};

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

/// The names in `kinds` that are not in `shown`, for a readable failure.
fn missing(kinds: &[&'static str], shown: &BTreeSet<&'static str>) -> Vec<&'static str> {
    kinds
        .iter()
        .copied()
        .filter(|k| !shown.contains(k))
        .collect()
}

/// Command → reply kind, from the route table of `docs/http-api.md` (the rows whose last
/// column names a command). Every name in it must be a kind the code knows.
fn http_reply_kinds() -> BTreeMap<&'static str, &'static str> {
    let text = doc("http-api.md");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let [route, _, answers, command] = cells[..] else {
            continue;
        };
        let code = |cell: &str| cell.split('`').nth(1).map(str::to_owned);
        let (Some(route), Some(command)) = (code(route), code(command)) else {
            continue;
        };
        let command = *Command::KINDS
            .iter()
            .find(|k| **k == command)
            .unwrap_or_else(|| {
                panic!("http-api.md: `{route}` names an unknown command `{command}`")
            });
        let answer = code(answers).unwrap_or_default();
        let reply = *Reply::KINDS
            .iter()
            .find(|k| **k == answer)
            .unwrap_or_else(|| {
                panic!("http-api.md: `{route}` answers an unknown reply `{answer}`")
            });
        if let Some(before) = out.insert(command, reply) {
            assert_eq!(
                before, reply,
                "http-api.md: `{command}` answers two reply kinds"
            );
        }
    }
    assert!(out.len() > 20, "expected the route table, found {out:?}");
    out
}

#[test]
fn every_protocol_example_parses_and_every_kind_is_shown() {
    let text = doc("protocol.md");
    let http_replies = http_reply_kinds();
    let mut commands = BTreeSet::new();
    let mut events = BTreeSet::new();
    let mut controls = BTreeSet::new();
    let mut replies = BTreeSet::new();
    // Request id → the command of the client example that used it.
    let mut requests: BTreeMap<String, &'static str> = BTreeMap::new();
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
                if let Some(id) = frame.id {
                    let id = serde_json::to_string(&id).expect("id");
                    requests.insert(id, frame.command.kind());
                }
            }
            "server" => {
                let doc: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("server example is not JSON: {e}\n{body}"));
                if doc["type"] == "reply" {
                    // Parsed on its own first, so that a reply the code does not have is
                    // named as such rather than as "no variant of ServerFrame".
                    let reply: Reply =
                        serde_json::from_value(doc["reply"].clone()).unwrap_or_else(|e| {
                            panic!("the reply in this example is not a Reply: {e}\n{body}")
                        });
                    let id = doc["id"].to_string();
                    let command = requests.get(&id).unwrap_or_else(|| {
                        panic!("reply example with id {id} follows no client example with that id\n{body}")
                    });
                    if let Some(expected) = http_replies.get(command) {
                        assert_eq!(
                            reply.kind(),
                            *expected,
                            "`{command}` answers `{expected}` (docs/http-api.md), but its example \
                             in docs/protocol.md shows `{}`\n{body}",
                            reply.kind()
                        );
                    }
                }
                let frame: ServerFrame = serde_json::from_value(doc.clone())
                    .unwrap_or_else(|e| panic!("server example does not parse: {e}\n{body}"));
                let again = serde_json::to_value(&frame).expect("encode");
                assert_eq!(
                    again, doc,
                    "server example does not round-trip (a misnamed or extra field?)\n{body}"
                );
                let kind = match &frame {
                    ServerFrame::Event(e) => {
                        events.insert(e.kind());
                        e.kind()
                    }
                    ServerFrame::Control(c) => {
                        if let Control::Reply { reply, .. } = c {
                            replies.insert(reply.kind());
                        }
                        controls.insert(c.kind());
                        c.kind()
                    }
                };
                assert_eq!(again["type"], kind, "kind() and the wire tag agree\n{body}");
            }
            "" => {
                serde_json::from_str::<Value>(&body)
                    .unwrap_or_else(|e| panic!("example is not JSON: {e}\n{body}"));
            }
            other => panic!("unknown example kind {other:?}; use `json client` or `json server`"),
        }
    }
    let gaps = [
        (
            "command (a `json client` block)",
            missing(Command::KINDS, &commands),
        ),
        (
            "event (a `json server` block)",
            missing(Event::KINDS, &events),
        ),
        (
            "reply (in a `json server` reply frame)",
            missing(Reply::KINDS, &replies),
        ),
        ("control frame", missing(Control::KINDS, &controls)),
    ];
    for (what, names) in gaps {
        assert!(
            names.is_empty(),
            "docs/protocol.md has no example of the {what}: {names:?}"
        );
    }
}

#[test]
fn every_hello_limit_is_explained() {
    let text = doc("protocol.md");
    let hello = blocks(&text)
        .into_iter()
        .find(|(info, body)| info == "server" && body.contains(r#""type":"hello""#))
        .map(|(_, body)| serde_json::from_str::<Value>(&body).expect("hello is JSON"))
        .expect("a hello example");
    let limits = hello["limits"].as_object().expect("hello.limits");
    for (name, default) in limits {
        let row = format!("| `{name}` | {default} |");
        assert!(
            text.contains(&row),
            "docs/protocol.md §7 lacks the row {row:?} explaining `{name}`"
        );
    }
}

#[tokio::test]
async fn the_hello_example_is_what_a_default_server_sends() {
    let text = doc("protocol.md");
    let example: Value = blocks(&text)
        .into_iter()
        .find(|(info, body)| info == "server" && body.contains(r#""type":"hello""#))
        .map(|(_, body)| serde_json::from_str(&body).expect("hello is JSON"))
        .expect("a hello example");
    let server = common::Server::with(Config::default(), Limits::default()).await;
    let token = common::token_with(json!({
        "sub": example["user"],
        "name": example["display_name"],
        "exp": common::now() + 3600,
    }));
    let (ws, _) = tokio_tungstenite::connect_async(server.url(&format!("/ws?token={token}")))
        .await
        .expect("connect");
    let hello = common::Client::new(ws).read().await;
    assert_eq!(
        hello, example,
        "the hello in docs/protocol.md shows the defaults a server announces"
    );
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
