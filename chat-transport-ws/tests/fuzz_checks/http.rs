//! `http`: a few requests in a row → the real [`router`](chat_transport_ws::router) over a
//! fresh memory store, each with a valid bearer token, as `tower::ServiceExt::oneshot`
//! delivers them.
//!
//! Properties, for every request to a path under `/api/v1` or to a WebSocket endpoint
//! (`/ws`, `/ws/rooms/{room}`): the router never
//! panics; the status is one that `docs/http-api.md` documents (200, 405, 422, or one of its
//! error table), and never 500 (a memory store cannot fail, so `internal` is a bug);
//! every response of status 400 or more has the JSON body `{"code","message"}` with a
//! documented code whose status (or 405 or 422 for `invalid`) is the one answered; a success
//! has a JSON body. HEAD responses carry no body and are checked by status only.
//!
//! The routes, the error codes and their statuses are read from the docs, not copied.
//! Ids and room names seen in earlier answers are fed to later requests, so a sequence
//! can create a room and then post to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use chat_core::memory::MemoryStore;
use chat_core::model::Limits;
use chat_core::ports::Store;
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, API_KEY_HEADER};
use serde_json::Value;
use tower::ServiceExt;

use super::{now, show, SECRET};

const HTTP_API_DOC: &str = include_str!("../../../docs/http-api.md");
const PROTOCOL_DOC: &str = include_str!("../../../docs/protocol.md");

/// The API prefix of `docs/http-api.md`'s route table.
const PREFIX: &str = "/api/v1";

/// The internal API key of the router under test (an admin step may send it).
const ADMIN_KEY: &str = "k3y";

/// The users that steps act as.
pub(crate) const USERS: [&str; 2] = ["alice", "bob"];

/// Method names a step picks from besides the route's own (any other token is possible).
pub(crate) const METHODS: &[&str] = &[
    "GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "TRACE",
];

/// Query parameter names a step picks from (any other name is possible).
pub(crate) const QUERY_NAMES: &[&str] = &["limit", "before", "after", "create", "token"];

/// Body field names a step picks from (any other name is possible).
pub(crate) const FIELD_NAMES: &[&str] = &[
    "body",
    "client_id",
    "user",
    "seq",
    "name",
    "visibility",
    "sender",
];

/// Content types a step picks from (any other value is possible).
pub(crate) const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
];

/// What the docs promise: routes, and the status of each error code.
#[derive(Debug)]
pub(crate) struct Documented {
    /// `(method, path)` with `{param}` placeholders: the HTTP API's route table (paths
    /// under [`PREFIX`]) and the WebSocket endpoints of `docs/protocol.md`.
    pub(crate) routes: Vec<(String, String)>,
    /// Error code → status.
    pub(crate) codes: BTreeMap<String, u16>,
}

impl Documented {
    fn read() -> Self {
        let mut routes = Vec::new();
        let mut codes = BTreeMap::new();
        for line in HTTP_API_DOC.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, first, second, ..] = cells[..] else {
                continue;
            };
            let Some(cell) = first.strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
                continue;
            };
            match cell.split_once(' ') {
                Some((method, path)) if path.starts_with('/') => {
                    routes.push((method.to_owned(), format!("{PREFIX}{path}")));
                }
                None => {
                    if let Ok(status) = second.parse::<u16>() {
                        codes.insert(cell.to_owned(), status);
                    }
                }
                Some(_) => {}
            }
        }
        for line in PROTOCOL_DOC.lines() {
            let mut words = line.split_whitespace();
            if let (Some("GET"), Some(path)) = (words.next(), words.next()) {
                let path = path.split('?').next().unwrap_or(path);
                let route = ("GET".to_owned(), path.to_owned());
                if path.starts_with("/ws") && !routes.contains(&route) {
                    routes.push(route);
                }
            }
        }
        assert!(
            routes.len() > 20,
            "the route table was not found: {routes:?}"
        );
        assert!(
            codes.len() >= 10,
            "the error table was not found: {codes:?}"
        );
        Documented { routes, codes }
    }

    fn status_ok(&self, status: u16) -> bool {
        status == 200 || status == 405 || status == 422 || self.codes.values().any(|s| *s == status)
    }
}

/// Who a step acts as: a user with a valid bearer token, and maybe an admin key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Caller {
    /// An index into [`USERS`] (taken modulo its length).
    pub(crate) user: usize,
    /// `Some(true)`: the right internal API key; `Some(false)`: a wrong one.
    pub(crate) admin_key: Option<bool>,
}

/// A value put into a path segment or a query parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// An id or a room name from an earlier answer (modulo how many were seen).
    Known(usize),
    /// A UUID that no answer has shown.
    Uuid(u128),
    /// A number.
    Number(u64),
    /// Any text, percent-encoded.
    Text(String),
    /// Any text as it is: may add segments, a query or escapes of its own.
    Raw(String),
}

/// The request's method.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MethodChoice {
    /// The method the docs give the route.
    Documented,
    /// An index into [`METHODS`] (modulo its length).
    Named(usize),
    /// Any token.
    Other(String),
}

/// The request's path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// A documented route (index modulo their number), placeholders filled in order.
    Route(usize, Vec<Param>),
    /// Any path under `/api/v1` (this text follows the prefix as it is).
    UnderApi(String),
}

/// The request's body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BodyChoice {
    Empty,
    /// Any bytes.
    Bytes(Vec<u8>),
    /// A JSON object of these fields in order (names may repeat).
    Fields(Vec<(String, Value)>),
}

/// One request of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub(crate) caller: Caller,
    pub(crate) method: MethodChoice,
    pub(crate) target: Target,
    pub(crate) query: Vec<(String, Param)>,
    pub(crate) body: BodyChoice,
    pub(crate) content_type: Option<String>,
}

/// Runs request sequences against a fresh router each.
pub(crate) struct Harness {
    docs: Documented,
    /// A valid bearer token per entry of [`USERS`].
    tokens: Vec<String>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    pub(crate) fn new() -> Self {
        // Valid for a year, so a long fuzzing run keeps getting past authentication.
        let exp = now() + 365 * 24 * 3600;
        let tokens = USERS
            .iter()
            .map(|user| {
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &serde_json::json!({"sub": user, "exp": exp}),
                    &jsonwebtoken::EncodingKey::from_secret(SECRET),
                )
                .expect("a token")
            })
            .collect();
        Harness {
            docs: Documented::read(),
            tokens,
        }
    }

    /// Runs `steps` in order against a fresh engine and router; panics, naming the
    /// request and the answer, when a property fails.
    pub(crate) fn check(&self, steps: &[Step]) {
        let rt = super::runtime();
        rt.block_on(async {
            let app = router().await;
            let mut known: Vec<String> = Vec::new();
            for step in steps {
                let Some((req, shown)) = self.request(step, &known) else {
                    continue;
                };
                let head = req.method() == Method::HEAD;
                let resp = app
                    .clone()
                    .oneshot(req)
                    .await
                    .unwrap_or_else(|e| panic!("{shown}: the router failed: {e}"));
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap_or_else(|e| panic!("{shown}: the body failed: {e}"));
                match self.judge(status, &bytes, head) {
                    Ok(Some(answer)) => learn(&answer, &mut known),
                    Ok(None) => {}
                    Err(why) => panic!(
                        "{shown}\n→ {status} {:?}\n{why}",
                        String::from_utf8_lossy(&bytes)
                    ),
                }
            }
        });
    }

    /// The request of `step`, and how to show it; `None` when `step` makes no valid
    /// HTTP request (an invalid URI, method or header is no request the router can see).
    fn request(&self, step: &Step, known: &[String]) -> Option<(Request<Body>, String)> {
        let routes = &self.docs.routes;
        let (route_method, path) = match &step.target {
            Target::Route(i, params) => {
                let (method, template) = &routes[i % routes.len()];
                (method.as_str(), fill(template, params, known))
            }
            Target::UnderApi(rest) => ("GET", format!("{PREFIX}{rest}")),
        };
        let method = match &step.method {
            MethodChoice::Documented => route_method.to_owned(),
            MethodChoice::Named(i) => METHODS[i % METHODS.len()].to_owned(),
            MethodChoice::Other(m) => m.clone(),
        };
        let mut uri = path;
        if !step.query.is_empty() {
            let pairs: Vec<String> = step
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), param(v, known)))
                .collect();
            uri = format!("{uri}?{}", pairs.join("&"));
        }
        let body = match &step.body {
            BodyChoice::Empty => Vec::new(),
            BodyChoice::Bytes(b) => b.clone(),
            BodyChoice::Fields(fields) => super::object(fields).into_bytes(),
        };
        let user = step.caller.user % USERS.len();
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).ok()?)
            .uri(&uri)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.tokens[user]),
            );
        match step.caller.admin_key {
            Some(true) => req = req.header(API_KEY_HEADER, ADMIN_KEY),
            Some(false) => req = req.header(API_KEY_HEADER, "wrong"),
            None => {}
        }
        if let Some(ct) = &step.content_type {
            req = req.header(header::CONTENT_TYPE, ct.as_str());
        }
        let shown = format!(
            "{method} {uri} as {} (admin key {:?}, content-type {:?}) with body {:?}",
            USERS[user],
            step.caller.admin_key,
            step.content_type,
            String::from_utf8_lossy(&body)
        );
        let req = req.body(Body::from(body)).ok()?;
        ours(req.uri().path()).then_some((req, shown))
    }

    /// Why the answer breaks a property, if it does; else the JSON of a success.
    fn judge(&self, status: u16, bytes: &[u8], head: bool) -> Result<Option<Value>, String> {
        if !self.docs.status_ok(status) {
            return Err(format!("{status} is not a documented status"));
        }
        if status == 500 {
            return Err("500 `internal` from a store that cannot fail".into());
        }
        if head {
            return Ok(None);
        }
        let body: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON ({e})"))?;
        if status < 400 {
            return Ok(Some(body));
        }
        let fields = body.as_object().ok_or("the error body is not an object")?;
        let (Some(Value::String(code)), Some(Value::String(_)), 2) =
            (fields.get("code"), fields.get("message"), fields.len())
        else {
            return Err(format!(
                "the error body is not {{code, message}}: {}",
                show(&body)
            ));
        };
        let expected = self
            .docs
            .codes
            .get(code)
            .ok_or_else(|| format!("`{code}` is not a documented code"))?;
        // Besides the table, the docs give `invalid` two statuses of its own: 422 for a
        // bad body and 405 for a method the route does not take.
        if status != *expected && !(matches!(status, 405 | 422) && code == "invalid") {
            return Err(format!(
                "`{code}` is documented as {expected}, not {status}"
            ));
        }
        Ok(None)
    }
}

/// Whether the router answers `path` for itself: the HTTP API promises a JSON body for
/// any path under it, and the WebSocket endpoints are its own; any other path is left to
/// the app that the embedder merges the router into.
fn ours(path: &str) -> bool {
    let api = path == PREFIX || path.starts_with(&format!("{PREFIX}/"));
    let room = path
        .strip_prefix("/ws/rooms/")
        .is_some_and(|room| !room.is_empty() && !room.contains('/'));
    api || path == "/ws" || room
}

/// A router like a server's, over a fresh memory store, with small body limits so that
/// short inputs reach them.
async fn router() -> axum::Router {
    let mut limits = Limits::default();
    limits.max_body_bytes = 256;
    let engine = Engine::builder(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .limits(limits)
        .maintenance(None)
        .build()
        .await
        .expect("an engine over a memory store");
    let mut config = Config::default().admin_api_key(ADMIN_KEY);
    config.max_http_body_bytes = 1024;
    let state = ChatState::new(engine, Arc::new(JwtAuthenticator::hs256(SECRET)), config);
    chat_transport_ws::router(state)
}

/// Remembers the ids and room names of an answer, for later steps.
fn learn(answer: &Value, known: &mut Vec<String>) {
    match answer {
        Value::Object(map) => {
            for (k, v) in map {
                if let (true, Value::String(s)) = (k == "id" || k == "name", v) {
                    if !known.contains(s) && known.len() < 64 {
                        known.push(s.clone());
                    }
                }
                learn(v, known);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| learn(v, known)),
        _ => {}
    }
}

/// `template` with each `{placeholder}` replaced by the next param (the first known id
/// when the params run out).
fn fill(template: &str, params: &[Param], known: &[String]) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut params = params.iter();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str(&param(params.next().unwrap_or(&Param::Known(0)), known));
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

fn param(p: &Param, known: &[String]) -> String {
    match p {
        Param::Known(i) if !known.is_empty() => encode(&known[i % known.len()]),
        Param::Known(_) => "general".to_owned(),
        Param::Uuid(n) => {
            let h = format!("{n:032x}");
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }
        Param::Number(n) => n.to_string(),
        Param::Text(s) => encode(s),
        Param::Raw(s) => s.clone(),
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
