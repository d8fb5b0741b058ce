//! The OpenAPI document the router serves at `/api/v1/openapi.json` says what
//! `docs/http-api.md` says: the same endpoints (method and path) both ways, the statuses
//! the page promises for each, the security the page describes, the JSON error body, and
//! the reply each command route answers. Both sides are read, never copied here: a route
//! added to one of them alone fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chat_core::model::Limits;
use chat_core::{ErrorCode, Reply};
use chat_transport_ws::{status_of, ChatState, Config, JwtAuthenticator, API_KEY_HEADER};
use common::*;
use serde_json::Value;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document as a client gets it: through the router, without any credential.
async fn served(config: Config) -> Value {
    let state = ChatState::new(
        engine(Limits::default()).await,
        Arc::new(JwtAuthenticator::hs256(SECRET)),
        config,
    );
    let app = chat_transport_ws::router(state);
    let req = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .expect("request");
    let resp = app.oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK, "served without a token");
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "a JSON document"
    );
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("the document is JSON")
}

/// One row of the route table in `docs/http-api.md`.
#[derive(Debug)]
struct Row {
    /// Lower case, as OpenAPI keys operations.
    method: String,
    /// Relative to `/api/v1`.
    path: String,
    /// The body / query cell.
    input: String,
    /// The answers cell.
    answers: String,
    /// The command cell's command, when it names one.
    command: Option<String>,
}

impl Row {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http-api.md");
    std::fs::read_to_string(path).expect("docs/http-api.md")
}

fn table() -> Vec<Row> {
    let text = doc();
    let section = text
        .split("\n## Routes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Routes section");
    let code = |cell: &str| cell.split('`').nth(1).map(str::to_owned);
    let mut rows = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let [route, input, answers, command] = cells[..] else {
            continue;
        };
        let Some((method, path)) = code(route).and_then(|r| {
            r.split_once(' ')
                .map(|(m, p)| (m.to_lowercase(), p.to_owned()))
        }) else {
            continue;
        };
        rows.push(Row {
            method,
            path,
            input: input.to_owned(),
            answers: answers.to_owned(),
            command: code(command),
        });
    }
    assert!(rows.len() > 25, "expected the route table, found {rows:?}");
    rows
}

/// (method, path) → operation, for every operation of the document.
fn operations(spec: &Value) -> BTreeMap<(String, String), Value> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut out = BTreeMap::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.insert((method.to_owned(), path.clone()), op.clone());
            }
        }
    }
    out
}

fn statuses(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(|k| k.parse().unwrap_or_else(|_| panic!("status {k:?}")))
        .collect()
}

/// The three-digit statuses written in a cell (`…, else 503 \`unavailable\``).
fn statuses_in(cell: &str) -> BTreeSet<u16> {
    cell.split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 3)
        .filter_map(|w| w.parse().ok())
        .filter(|s| (100..600).contains(s))
        .collect()
}

/// The routes the Authentication section names as needing no user token
/// (`/health`, …, `/admin/*`).
fn without_user_token() -> Vec<String> {
    let text = doc();
    let sentence = text
        .split("Every route except ")
        .nth(1)
        .and_then(|s| s.split("needs a user token").next())
        .expect("the sentence naming the routes without a user token");
    let names: Vec<String> = sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 3, "found {names:?}");
    names
}

#[tokio::test]
async fn the_document_and_the_route_table_list_the_same_endpoints() {
    let spec = served(Config::default()).await;
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(
        spec["servers"][0]["url"], "/api/v1",
        "the paths are relative to /api/v1, as in the docs"
    );
    let documented: BTreeSet<(String, String)> =
        table().into_iter().map(|r| (r.method, r.path)).collect();
    let described: BTreeSet<(String, String)> = operations(&spec).into_keys().collect();
    let only_docs: Vec<_> = documented.difference(&described).collect();
    let only_spec: Vec<_> = described.difference(&documented).collect();
    assert!(
        only_docs.is_empty() && only_spec.is_empty(),
        "docs/http-api.md only: {only_docs:?}; OpenAPI document only: {only_spec:?}"
    );
}

#[tokio::test]
async fn each_endpoint_lists_the_statuses_the_docs_promise() {
    let spec = served(Config::default()).await;
    let ops = operations(&spec);
    let table_statuses: BTreeSet<u16> = ErrorCode::ALL
        .iter()
        .map(|c| status_of(*c).as_u16())
        .collect();
    // Statuses the page speaks of at all: the error table, 200, 405 and 422.
    let spoken: BTreeSet<u16> = table_statuses
        .iter()
        .copied()
        .chain([200, 405, 422])
        .collect();
    for row in table() {
        let name = row.name();
        let op = &ops[&(row.method.clone(), row.path.clone())];
        let listed = statuses(op);
        let mut promised: BTreeSet<u16> = [200].into();
        promised.extend(statuses_in(&row.answers));
        if row.command.is_some() {
            promised.extend(&table_statuses);
        }
        if row.input.contains("`{") {
            promised.extend([413, 422]);
        }
        if row.path.contains('{') {
            promised.insert(400);
        }
        if row.path.starts_with("/admin/") {
            promised.extend([401, 403, 404]);
        }
        let missing: Vec<_> = promised.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "{name}: the docs promise {missing:?}, the document lists {listed:?}"
        );
        let unknown: Vec<_> = listed.difference(&spoken).collect();
        assert!(
            unknown.is_empty(),
            "{name}: the document lists {unknown:?}, which docs/http-api.md never mentions"
        );
        for (status, response) in op["responses"].as_object().expect("responses") {
            let schema = &response["content"]["application/json"]["schema"];
            if status == "200" {
                assert!(
                    schema.is_object(),
                    "{name}: 200 has a JSON body: {response}"
                );
                continue;
            }
            assert_eq!(
                schema["$ref"], "#/components/schemas/ErrorBody",
                "{name} {status}: the JSON error body"
            );
            // The rate limit and the engine's retry hint set it; `/ready` never does.
            let retry = response["headers"].get("Retry-After").is_some();
            assert_eq!(
                retry,
                (status == "429" || status == "503") && row.path != "/ready",
                "{name} {status}: `Retry-After` on 429 and 503, except `/ready`'s"
            );
        }
    }
}

#[tokio::test]
async fn each_command_route_answers_the_reply_the_table_names() {
    let spec = served(Config::default()).await;
    let ops = operations(&spec);
    let mut checked = 0;
    for row in table() {
        let Some(command) = &row.command else {
            continue;
        };
        let name = row.name();
        let reply = row.answers.split('`').nth(1).expect("a reply kind");
        assert!(Reply::KINDS.contains(&reply), "{name}: `{reply}`");
        let ok = &ops[&(row.method.clone(), row.path.clone())]["responses"]["200"];
        assert_eq!(
            ok["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Reply",
            "{name} (`{command}`): a core reply"
        );
        let description = ok["description"].as_str().unwrap_or_default();
        assert!(
            description.contains(&format!("`{reply}`")),
            "{name}: the docs say it answers `{reply}`, the document says {description:?}"
        );
        checked += 1;
    }
    assert!(checked > 20, "command routes checked: {checked}");
    // The Reply schema knows every reply kind.
    let reply = serde_json::to_string(&spec["components"]["schemas"]["Reply"]).expect("Reply");
    for kind in Reply::KINDS {
        assert!(
            reply.contains(&format!("\"{kind}\"")),
            "the Reply schema lacks `{kind}`"
        );
    }
}

#[tokio::test]
async fn security_is_what_the_authentication_section_says() {
    let config = Config::default().token_cookie("sid");
    let spec = served(config).await;
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    for (scheme, place, name) in [
        ("token_query", "query", "token"),
        ("token_cookie", "cookie", "sid"),
        ("admin_key", "header", API_KEY_HEADER),
    ] {
        assert_eq!(schemes[scheme]["type"], "apiKey", "{scheme}");
        assert_eq!(schemes[scheme]["in"], place, "{scheme}");
        assert_eq!(
            schemes[scheme]["name"], name,
            "{scheme}: the configured name"
        );
    }
    let user: Value = serde_json::json!([
        {"bearer": []}, {"token_query": []}, {"token_cookie": []}
    ]);
    let admin: Value = serde_json::json!([{"admin_key": []}]);
    let open = without_user_token();
    let mut public = 0;
    for ((method, path), op) in operations(&spec) {
        let name = format!("{} {path}", method.to_uppercase());
        let security = op.get("security").cloned().unwrap_or(Value::Null);
        if open.contains(&path) {
            public += 1;
            assert!(
                security.is_null() || security == serde_json::json!([]),
                "{name}: public, yet {security}"
            );
            assert!(!statuses(&op).contains(&401), "{name}: public, yet 401");
        } else if open.contains(&"/admin/*".to_owned()) && path.starts_with("/admin/") {
            assert_eq!(security, admin, "{name}: the internal API key");
        } else {
            assert_eq!(
                security, user,
                "{name}: a user token, from any of its places"
            );
            assert!(statuses(&op).contains(&401), "{name}: 401 without a token");
        }
    }
    assert_eq!(public, 3, "/health, /ready and /openapi.json");
    assert!(
        spec.get("security").is_none(),
        "no document-wide requirement: each operation says its own"
    );
}

#[tokio::test]
async fn the_error_body_is_code_message_and_an_optional_retry_hint() {
    let spec = served(Config::default()).await;
    let schemas = &spec["components"]["schemas"];
    let body = &schemas["ErrorBody"];
    let properties: BTreeSet<&str> = body["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        properties,
        ["code", "message", "retry_after_ms"].into(),
        "{body}"
    );
    let required: BTreeSet<&str> = body["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, ["code", "message"].into(), "{body}");
    let codes: BTreeSet<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let known: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, known, "every stable code, no other");
}

#[tokio::test]
async fn every_reference_resolves() {
    let spec = served(Config::default()).await;
    let text = serde_json::to_string(&spec).expect("encode");
    let prefix = "\"$ref\":\"#/components/schemas/";
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    let mut refs = 0;
    for rest in text.split(prefix).skip(1) {
        let name = rest.split('"').next().unwrap_or_default();
        assert!(schemas.contains_key(name), "no schema {name:?}");
        refs += 1;
    }
    assert!(refs > 50, "references found: {refs}");
}
