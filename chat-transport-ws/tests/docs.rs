//! The docs cannot drift: every JSON example in `docs/protocol.md` and `docs/http-api.md`
//! parses into the code's types, every command, event, reply and control frame kind
//! (the lists in the code, not a copy here) is shown, every reply example answers the
//! command the HTTP route table says it does, and the `hello` example is what a server
//! with the default settings sends. `docs/asyncapi.yaml` has a channel per WebSocket path,
//! exactly the code's client and server message kinds, every reply kind and error code,
//! the `hello` limits and every close code.

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

/// `docs/asyncapi.yaml` as JSON.
fn asyncapi() -> Value {
    let text = doc("asyncapi.yaml");
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("docs/asyncapi.yaml: {e}"))
}

/// Follows a local `$ref` (`#/a/b`) from the document's root.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let Some(pointer) = node["$ref"].as_str() else {
        return node;
    };
    let target = pointer
        .strip_prefix('#')
        .and_then(|p| root.pointer(p))
        .unwrap_or_else(|| panic!("docs/asyncapi.yaml: {pointer} resolves to nothing"));
    resolve(root, target)
}

/// The `type` each message of `action` (`receive`: from the client; `send`: to it) on
/// `channel` carries, read from its payload schema.
fn asyncapi_kinds(spec: &Value, channel: &str, action: &str) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    let mut operations = 0;
    for op in spec["operations"].as_object().expect("operations").values() {
        let on = op["channel"]["$ref"].as_str().unwrap_or_default();
        if op["action"] != action || on != format!("#/channels/{channel}") {
            continue;
        }
        operations += 1;
        for message in op["messages"].as_array().expect("messages") {
            let message = resolve(spec, message);
            let kind = message["payload"]["properties"]["type"]["const"]
                .as_str()
                .unwrap_or_else(|| panic!("a message without a `type` const: {message}"));
            assert!(
                kinds.insert(kind.to_owned()),
                "`{kind}` twice on {channel} ({action})"
            );
        }
    }
    assert_eq!(operations, 1, "one `{action}` operation on {channel}");
    kinds
}

fn strings(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_asyncapi_document_names_every_wire_kind_of_the_code() {
    let spec = asyncapi();
    assert_eq!(spec["asyncapi"], "3.0.0");
    // The WebSocket paths of protocol.md §1, each a channel.
    let protocol = doc("protocol.md");
    let paths: BTreeSet<String> = protocol
        .lines()
        .filter_map(|l| l.strip_prefix("GET /ws"))
        .map(|rest| {
            let path = rest.split([' ', '?']).next().unwrap_or_default();
            format!("/ws{path}")
        })
        .collect();
    assert!(
        paths.len() >= 2,
        "WebSocket paths in protocol.md: {paths:?}"
    );
    let channels = spec["channels"].as_object().expect("channels");
    let addresses: BTreeSet<String> = channels
        .values()
        .filter_map(|c| c["address"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        addresses, paths,
        "a channel per WebSocket path of protocol.md"
    );

    let server: BTreeSet<String> = Event::KINDS
        .iter()
        .chain(Control::KINDS)
        .map(|s| (*s).to_owned())
        .collect();
    for channel in channels.keys() {
        assert_eq!(
            asyncapi_kinds(&spec, channel, "receive"),
            strings(Command::KINDS),
            "{channel}: the client's messages are Command::KINDS"
        );
        assert_eq!(
            asyncapi_kinds(&spec, channel, "send"),
            server,
            "{channel}: the server's messages are Event::KINDS and Control::KINDS"
        );
        // Every message of the channel is defined (the operations' references into the
        // channel were resolved above).
        for message in channels[channel]["messages"]
            .as_object()
            .expect("channel messages")
            .values()
        {
            resolve(&spec, message);
        }
    }

    // The reply frame's schema has every reply kind.
    let reply = &spec["components"]["messages"]["reply"]["payload"]["properties"]["reply"];
    let replies: BTreeSet<String> = resolve(&spec, reply)["oneOf"]
        .as_array()
        .expect("the reply schema is a oneOf")
        .iter()
        .filter_map(|v| resolve(&spec, v)["properties"]["type"]["const"].as_str())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        replies,
        strings(Reply::KINDS),
        "Reply::KINDS in the reply schema"
    );

    // The error frame's codes are the stable codes.
    let code = &spec["components"]["messages"]["error"]["payload"]["properties"]["code"];
    let codes: BTreeSet<String> = resolve(&spec, code)["enum"]
        .as_array()
        .expect("an enum of codes")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let known: BTreeSet<String> = chat_core::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(codes, known, "the error frame's codes");

    // The hello limits are the code's.
    let hello = serde_json::to_value(hello_limits_of(&protocol)).expect("encode");
    let limits =
        &spec["components"]["messages"]["hello"]["payload"]["properties"]["limits"]["properties"];
    let documented: BTreeSet<&String> = limits.as_object().expect("limits").keys().collect();
    let coded: BTreeSet<&String> = hello.as_object().expect("limits").keys().collect();
    assert_eq!(documented, coded, "hello.limits");
}

/// The limits of the `hello` example in protocol.md, as the code's type (so that a field
/// the code lacks or adds fails to parse).
fn hello_limits_of(protocol: &str) -> chat_transport_ws::protocol::HelloLimits {
    let hello = blocks(protocol)
        .into_iter()
        .find(|(info, body)| info == "server" && body.contains(r#""type":"hello""#))
        .map(|(_, body)| serde_json::from_str::<Value>(&body).expect("hello is JSON"))
        .expect("a hello example");
    serde_json::from_value(hello["limits"].clone()).expect("the code's HelloLimits")
}

#[test]
fn the_asyncapi_document_states_every_close_code_of_protocol_md() {
    let spec = asyncapi();
    let description = spec["info"]["description"].as_str().expect("description");
    let protocol = doc("protocol.md");
    let section = protocol
        .split("## 8. Close codes")
        .nth(1)
        .expect("a close code section");
    let mut codes = 0;
    for line in section.lines() {
        let Some(code) = line
            .strip_prefix("| ")
            .and_then(|l| l.split(' ').next())
            .filter(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        codes += 1;
        assert!(
            description.contains(&format!("| {code} |")),
            "docs/asyncapi.yaml does not describe close code {code}"
        );
    }
    assert!(codes >= 10, "close codes in protocol.md: {codes}");
    for scheme in ["bearer", "token_query", "token_cookie"] {
        assert!(
            spec["components"]["securitySchemes"].get(scheme).is_some(),
            "the {scheme} security scheme"
        );
    }
}
