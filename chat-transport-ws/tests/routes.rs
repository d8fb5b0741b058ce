//! Every route of the route table in `docs/http-api.md`, run against a live server: each
//! answers 200, and its answer is what the table says (the reply `type`, or the keys of
//! the JSON object shown). The table is read from the docs, so a route whose reply kind
//! changes, or a row without a request here, fails this test.

mod common;
mod http1;

use std::collections::BTreeMap;

use chat_core::model::Limits;
use chat_core::{Command, Engine, Reply};
use chat_transport_ws::Config;
use common::*;
use serde_json::{json, Value};

const KEY: &str = "admin-key";

/// One row of the route table: method, path template, what it answers.
#[derive(Debug)]
struct Row {
    method: String,
    path: String,
    answers: Answer,
}

#[derive(Debug, PartialEq)]
enum Answer {
    /// A core reply of this `type`.
    Reply(String),
    /// A JSON object with these top-level keys.
    Keys(Vec<String>),
}

fn table() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http-api.md");
    let text = std::fs::read_to_string(path).expect("docs/http-api.md");
    let section = text
        .split("\n## Routes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Routes section");
    let mut rows = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let [route, _, answers, _] = cells[..] else {
            continue;
        };
        let Some(route) = route.split('`').nth(1) else {
            continue;
        };
        let Some((method, path)) = route.split_once(' ') else {
            continue;
        };
        let code = answers.split('`').nth(1).unwrap_or_default();
        let answers = if code.starts_with('{') {
            Answer::Keys(top_level_keys(code))
        } else {
            assert!(
                Reply::KINDS.contains(&code),
                "http-api.md: `{route}` answers `{code}`, which is no reply kind"
            );
            Answer::Reply(code.to_owned())
        };
        rows.push(Row {
            method: method.to_owned(),
            path: path.to_owned(),
            answers,
        });
    }
    assert!(rows.len() > 25, "expected the route table, found {rows:?}");
    rows
}

/// The keys at depth 1 of `{"a":…,"b":{"c":…}}` (values may be elided with `…`).
fn top_level_keys(shape: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut chars = shape.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '"' => {
                let s: String = chars.by_ref().take_while(|c| *c != '"').collect();
                let rest = chars.as_str().trim_start();
                if depth == 1 && rest.starts_with(':') {
                    keys.push(s);
                }
            }
            _ => {}
        }
    }
    assert!(!keys.is_empty(), "no keys in {shape}");
    keys
}

async fn exec(engine: &Engine, user: &str, command: Value) -> Value {
    let command: Command = serde_json::from_value(command.clone())
        .unwrap_or_else(|e| panic!("{command} is no command: {e}"));
    let reply = engine
        .execute_as(&uid(user), command)
        .await
        .expect("setup command");
    serde_json::to_value(reply).expect("reply")
}

/// What a row sends: the path with its parameters filled in, the body, and the caller.
struct Fixture {
    path: String,
    body: Option<Value>,
    caller: Caller,
}

#[derive(Clone, Copy)]
enum Caller {
    Nobody,
    User(&'static str),
    Admin,
}

fn fx(path: impl Into<String>, body: Option<Value>, caller: Caller) -> Fixture {
    Fixture {
        path: path.into(),
        body,
        caller,
    }
}

#[tokio::test]
async fn every_documented_route_answers_what_the_table_says() {
    let server = Server::with(Config::default().admin_api_key(KEY), Limits::default()).await;
    let e = &server.engine;

    // The world the requests run in: alice is the caller, each friend action has a user
    // in the state it needs.
    let general = exec(e, "alice", json!({"type":"create_room","name":"general"})).await;
    let general = general["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let lobby = exec(e, "bob", json!({"type":"create_room","name":"lobby"})).await;
    let lobby = lobby["conversation"]["id"].as_str().expect("id").to_owned();
    exec(
        e,
        "alice",
        json!({"type":"send","conversation":general,"body":"hello"}),
    )
    .await;
    for friend in ["bob", "ivan"] {
        exec(e, "alice", json!({"type":"friend_request","user":friend})).await;
        exec(e, friend, json!({"type":"friend_accept","user":"alice"})).await;
    }
    for asker in ["dave", "erin"] {
        exec(e, asker, json!({"type":"friend_request","user":"alice"})).await;
    }
    exec(e, "alice", json!({"type":"friend_request","user":"frank"})).await;
    exec(e, "alice", json!({"type":"block","user":"hank"})).await;
    // Bob is online, so that kicking him has a session to close.
    let _bob = server.connect("bob").await;

    use Caller::*;
    let g = &general;
    let fixtures: BTreeMap<(&str, &str), Fixture> = [
        (("GET", "/health"), fx("/health", None, Nobody)),
        (("GET", "/ready"), fx("/ready", None, Nobody)),
        (("GET", "/openapi.json"), fx("/openapi.json", None, Nobody)),
        (
            ("GET", "/conversations"),
            fx("/conversations", None, User("alice")),
        ),
        (
            ("POST", "/conversations/direct"),
            fx(
                "/conversations/direct",
                Some(json!({"user":"bob"})),
                User("alice"),
            ),
        ),
        (
            ("GET", "/conversations/{id}/messages"),
            fx(
                format!("/conversations/{g}/messages?limit=10"),
                None,
                User("alice"),
            ),
        ),
        (
            ("POST", "/conversations/{id}/messages"),
            fx(
                format!("/conversations/{g}/messages"),
                Some(json!({"body":"hi","client_id":"c-1"})),
                User("alice"),
            ),
        ),
        (
            ("PATCH", "/conversations/{id}/messages/{seq}"),
            fx(
                format!("/conversations/{g}/messages/1"),
                Some(json!({"body":"edited"})),
                User("alice"),
            ),
        ),
        (
            ("DELETE", "/conversations/{id}/messages/{seq}"),
            fx(
                format!("/conversations/{g}/messages/1"),
                None,
                User("alice"),
            ),
        ),
        (
            ("POST", "/conversations/{id}/read"),
            fx(
                format!("/conversations/{g}/read"),
                Some(json!({"seq":1})),
                User("alice"),
            ),
        ),
        (
            ("POST", "/conversations/{id}/delivered"),
            fx(
                format!("/conversations/{g}/delivered"),
                Some(json!({"seq":1})),
                User("alice"),
            ),
        ),
        (
            ("GET", "/conversations/{id}/members"),
            fx(format!("/conversations/{g}/members"), None, User("alice")),
        ),
        (("GET", "/unread"), fx("/unread", None, User("alice"))),
        (
            ("POST", "/rooms"),
            fx(
                "/rooms",
                Some(json!({"name":"created","visibility":"private"})),
                User("alice"),
            ),
        ),
        (
            ("POST", "/rooms/{room}/join"),
            fx("/rooms/lobby/join", None, User("alice")),
        ),
        (
            ("POST", "/rooms/{id}/leave"),
            fx(format!("/rooms/{lobby}/leave"), None, User("alice")),
        ),
        (
            ("POST", "/rooms/{id}/invite"),
            fx(
                format!("/rooms/{g}/invite"),
                Some(json!({"user":"carol"})),
                User("alice"),
            ),
        ),
        (
            ("GET", "/rooms/{id}/members"),
            fx(format!("/rooms/{g}/members?limit=5"), None, User("alice")),
        ),
        (("GET", "/friends"), fx("/friends", None, User("alice"))),
        (
            ("GET", "/friends/online"),
            fx("/friends/online", None, User("alice")),
        ),
        (
            ("POST", "/friends/{user}/request"),
            fx("/friends/carol/request", None, User("alice")),
        ),
        (
            ("POST", "/friends/{user}/accept"),
            fx("/friends/dave/accept", None, User("alice")),
        ),
        (
            ("POST", "/friends/{user}/decline"),
            fx("/friends/erin/decline", None, User("alice")),
        ),
        (
            ("POST", "/friends/{user}/cancel"),
            fx("/friends/frank/cancel", None, User("alice")),
        ),
        (
            ("POST", "/friends/{user}/block"),
            fx("/friends/gina/block", None, User("alice")),
        ),
        (
            ("POST", "/friends/{user}/unblock"),
            fx("/friends/hank/unblock", None, User("alice")),
        ),
        (
            ("DELETE", "/friends/{user}"),
            fx("/friends/ivan", None, User("alice")),
        ),
        (
            ("POST", "/admin/rooms/{room}/messages"),
            fx(
                "/admin/rooms/general/messages",
                Some(json!({"body":"maintenance"})),
                Admin,
            ),
        ),
        (("GET", "/admin/stats"), fx("/admin/stats", None, Admin)),
        (
            ("POST", "/admin/users/{user}/disconnect"),
            fx("/admin/users/bob/disconnect", None, Admin),
        ),
    ]
    .into_iter()
    .collect();

    let rows = table();
    let documented: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    for row in &rows {
        let name = format!("{} {}", row.method, row.path);
        let f = fixtures
            .get(&(row.method.as_str(), row.path.as_str()))
            .unwrap_or_else(|| panic!("no request here for the documented route {name}"));
        let headers = match f.caller {
            Caller::Nobody => vec![],
            Caller::User(u) => vec![("authorization", format!("Bearer {}", token(u)))],
            Caller::Admin => vec![("x-internal-api-key", KEY.to_owned())],
        };
        let r = http1::request(
            server.addr,
            &row.method,
            &format!("/api/v1{}", f.path),
            &headers,
            f.body.as_ref(),
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        match &row.answers {
            Answer::Reply(kind) => assert_eq!(
                r.json["type"], *kind,
                "{name}: the table says `{kind}`, the server answered {}",
                r.text
            ),
            Answer::Keys(keys) => {
                for k in keys {
                    assert!(
                        r.json.get(k).is_some(),
                        "{name}: the table shows `{k}`, the server answered {}",
                        r.text
                    );
                }
            }
        }
    }
    let stale: Vec<_> = fixtures
        .keys()
        .filter(|k| !documented.contains(k))
        .collect();
    assert!(
        stale.is_empty(),
        "requests here for routes the table does not list: {stale:?}"
    );
}
