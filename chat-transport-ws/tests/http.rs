//! The HTTP API, endpoint by endpoint, with the denials.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chat_core::model::Limits;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A table row: a request (method, path, body) that must fail, with the status and the error
/// code it must answer (`None`: the status alone is checked).
type Row<'a> = (Method, &'a str, Option<Value>, u16, Option<&'a str>);

struct Api {
    app: axum::Router,
    engine: chat_core::Engine,
}

impl Api {
    async fn new(config: Config) -> Api {
        let engine = engine(Limits::default()).await;
        let state = ChatState::new(
            engine.clone(),
            Arc::new(JwtAuthenticator::hs256(SECRET)),
            config,
        );
        Api {
            app: chat_transport_ws::router(state),
            engine,
        }
    }

    async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("JSON body, got {:?}", String::from_utf8_lossy(&bytes)));
        (status, body)
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/v1{uri}"));
        if let Some(u) = user {
            req = req.header("authorization", format!("Bearer {}", token(u)));
        }
        let body = match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        };
        self.raw(req.body(body).expect("request")).await
    }

    async fn ok(&self, method: Method, uri: &str, user: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method.clone(), uri, Some(user), body).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {v}");
        v
    }

    async fn deny(
        &self,
        method: Method,
        uri: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let (status, v) = self.call(method.clone(), uri, user, body).await;
        assert!(!status.is_success(), "{method} {uri} should fail: {v}");
        assert!(v["message"].is_string(), "{v}");
        (
            status.as_u16(),
            v["code"].as_str().expect("code").to_owned(),
        )
    }

    /// Runs `rows` in order as `user`, each checked as `deny` checks, and names the row that
    /// fails.
    async fn denials(&self, user: &str, rows: Vec<Row<'_>>) {
        for (i, (method, path, body, status, code)) in rows.into_iter().enumerate() {
            let row = format!("row {i}, {method} {path} as {user}");
            let (got, v) = self.call(method, path, Some(user), body).await;
            assert!(!got.is_success(), "{row} should fail: {v}");
            assert!(v["message"].is_string(), "{row}: {v}");
            let got_code = v["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{row}: code: {v}"));
            assert_eq!(got.as_u16(), status, "{row}: {v}");
            if let Some(code) = code {
                assert_eq!(got_code, code, "{row}: {v}");
            }
        }
    }

    async fn befriend(&self, a: &str, b: &str) {
        self.ok(Method::POST, &format!("/friends/{b}/request"), a, None)
            .await;
        self.ok(Method::POST, &format!("/friends/{a}/accept"), b, None)
            .await;
    }
}

#[tokio::test]
async fn health_needs_no_token_and_everything_else_does() {
    let api = Api::new(Config::default()).await;
    let (status, v) = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(
        api.deny(Method::GET, "/conversations", None, None).await,
        (401, "unauthenticated".into())
    );
    let req = Request::get("/api/v1/unread")
        .header("authorization", "Bearer nope")
        .body(Body::empty())
        .expect("req");
    let (status, v) = api.raw(req).await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(
        api.deny(Method::GET, "/nowhere", Some("a"), None).await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn the_token_as_a_query_parameter_works_on_routes_with_their_own_query() {
    let api = Api::new(Config::default()).await;
    let room = api
        .ok(Method::POST, "/rooms", "alice", Some(json!({"name": "q"})))
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let t = token("alice");
    for (method, uri) in [
        (
            Method::GET,
            format!("/api/v1/conversations?token={t}&limit=5"),
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{id}/messages?token={t}&limit=5"),
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{id}/members?token={t}&limit=5"),
        ),
        (Method::GET, format!("/api/v1/rooms/{id}/members?token={t}")),
        (
            Method::POST,
            format!("/api/v1/rooms/q/join?token={t}&create=true"),
        ),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(Body::empty())
            .expect("request");
        let (status, v) = api.raw(req).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {v}");
    }
    // The query's own fields stay strict.
    let req = Request::get(format!("/api/v1/conversations?token={t}&nope=1"))
        .body(Body::empty())
        .expect("request");
    let (status, v) = api.raw(req).await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (400, Some("invalid")),
        "{v}"
    );
}

#[tokio::test]
async fn rooms_messages_history_and_unread() {
    let api = Api::new(Config::default()).await;
    let room = api
        .ok(
            Method::POST,
            "/rooms",
            "alice",
            Some(json!({"name":"general"})),
        )
        .await;
    assert_eq!(room["type"], "room");
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let msgs = format!("/conversations/{id}/messages");
    #[rustfmt::skip]
    let rows: Vec<Row<'_>> = vec![
        (Method::POST, "/rooms", Some(json!({"name":"general"})), 409, Some("conflict")),
        // Bob is not a member of the public room yet: forbidden.
        (Method::POST, &msgs, Some(json!({"body":"hi"})), 403, Some("forbidden")),
    ];
    api.denials("bob", rows).await;
    let j = api
        .ok(Method::POST, "/rooms/general/join", "bob", None)
        .await;
    assert_eq!(j["joined"], true);
    let j = api
        .ok(Method::POST, "/rooms/newroom/join?create=true", "bob", None)
        .await;
    assert_eq!(j["conversation"]["name"], "newroom");
    assert_eq!(
        api.deny(Method::POST, "/rooms/missing/join", Some("bob"), None)
            .await
            .0,
        404
    );

    let members = api
        .ok(Method::GET, &format!("/rooms/{id}/members"), "alice", None)
        .await;
    assert_eq!(members["members"].as_array().expect("members").len(), 2);
    let members = api
        .ok(
            Method::GET,
            &format!("/conversations/{id}/members?limit=1"),
            "alice",
            None,
        )
        .await;
    assert_eq!(members["members"].as_array().expect("members").len(), 1);

    for (i, body) in ["one", "two", "three"].iter().enumerate() {
        let sent = api
            .ok(
                Method::POST,
                &format!("/conversations/{id}/messages"),
                "alice",
                Some(json!({"body":body,"client_id":format!("c{i}")})),
            )
            .await;
        assert_eq!(sent["message"]["seq"], i as u64 + 1);
    }
    let dup = api
        .ok(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            "alice",
            Some(json!({"body":"one","client_id":"c0"})),
        )
        .await;
    assert_eq!(
        (dup["duplicate"].as_bool(), dup["message"]["seq"].as_u64()),
        (Some(true), Some(1))
    );

    let h = api
        .ok(
            Method::GET,
            &format!("/conversations/{id}/messages?limit=2"),
            "bob",
            None,
        )
        .await;
    let seqs: Vec<u64> = h["messages"]
        .as_array()
        .expect("msgs")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    let h = api
        .ok(
            Method::GET,
            &format!("/conversations/{id}/messages?before=2"),
            "bob",
            None,
        )
        .await;
    assert_eq!(h["messages"][0]["body"], "one");
    let h = api
        .ok(
            Method::GET,
            &format!("/conversations/{id}/messages?after=1&limit=100"),
            "bob",
            None,
        )
        .await;
    assert_eq!(h["messages"].as_array().expect("msgs").len(), 2);
    let (limit_101, limit_abc) = (format!("{msgs}?limit=101"), format!("{msgs}?limit=abc"));
    #[rustfmt::skip]
    let rows: Vec<Row<'_>> = vec![
        (Method::GET, &limit_101, None, 400, Some("invalid")),
        (Method::GET, &limit_abc, None, 400, Some("invalid")),
    ];
    api.denials("bob", rows).await;

    let u = api.ok(Method::GET, "/unread", "bob", None).await;
    assert_eq!(u["unread"], 3);
    let list = api.ok(Method::GET, "/conversations", "bob", None).await;
    let general = list["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["conversation"]["id"] == id.as_str())
        .expect("general")
        .clone();
    assert_eq!(general["unread"], 3);
    assert_eq!(general["last_message"]["body"], "three");

    let marks = api
        .ok(
            Method::POST,
            &format!("/conversations/{id}/read"),
            "bob",
            Some(json!({"seq":2})),
        )
        .await;
    assert_eq!(marks["read_seq"], 2);
    let marks = api
        .ok(
            Method::POST,
            &format!("/conversations/{id}/delivered"),
            "bob",
            Some(json!({"seq":3})),
        )
        .await;
    assert_eq!(marks["delivered_seq"], 3);
    assert_eq!(
        api.ok(Method::GET, "/unread", "bob", None).await["unread"],
        1
    );

    let e = api
        .ok(
            Method::PATCH,
            &format!("/conversations/{id}/messages/3"),
            "alice",
            Some(json!({"body":"THREE"})),
        )
        .await;
    assert_eq!(e["message"]["body"], "THREE");
    assert!(e["message"]["edited_at"].is_string());
    // Sender only.
    let third = format!("{msgs}/3");
    #[rustfmt::skip]
    let rows: Vec<Row<'_>> = vec![
        (Method::DELETE, &third, None, 403, Some("forbidden")),
        (Method::PATCH, &third, Some(json!({"body":"x"})), 403, None),
    ];
    api.denials("bob", rows).await;
    let d = api
        .ok(
            Method::DELETE,
            &format!("/conversations/{id}/messages/3"),
            "alice",
            None,
        )
        .await;
    assert!(d["message"]["deleted_at"].is_string());
    assert_eq!(
        api.ok(Method::GET, "/unread", "bob", None).await["unread"],
        0
    );

    let l = api
        .ok(Method::POST, &format!("/rooms/{id}/leave"), "bob", None)
        .await;
    assert_eq!(l["type"], "ok");
    assert_eq!(
        api.deny(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            Some("bob"),
            None
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn denials_map_to_their_statuses() {
    let api = Api::new(Config::default()).await;
    let room = api
        .ok(Method::POST, "/rooms", "alice", Some(json!({"name":"r"})))
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let missing = "/conversations/00000000-0000-0000-0000-00000000beef/messages";
    let msgs = &format!("/conversations/{id}/messages");
    let huge = json!({"body": "y".repeat(70 * 1024)});
    #[rustfmt::skip]
    let rows: Vec<Row<'_>> = vec![
        (Method::GET, missing, None, 404, Some("not_found")),
        (Method::GET, "/conversations/not-a-uuid/messages", None, 400, Some("invalid")),
        (Method::POST, msgs, Some(json!({"body":"x".repeat(5000)})), 413, Some("too_large")),
        (Method::POST, "/rooms", Some(json!({"name":"bad name!"})), 400, Some("invalid")),
        // Bodies that do not parse: 422 with our JSON body (and one that is not JSON, below).
        (Method::POST, msgs, Some(json!({"text":"hi"})), 422, Some("invalid")),
        (Method::POST, msgs, Some(json!({"body":"hi","x":1})), 422, Some("invalid")),
        (Method::POST, msgs, None, 422, Some("invalid")),
        // A body over the HTTP limit: 413.
        (Method::POST, msgs, Some(huge), 413, Some("too_large")),
        (Method::POST, "/friends/bob/befriend", None, 404, Some("not_found")),
    ];
    api.denials("alice", rows).await;
    // A body that is not JSON at all: 422 with our JSON body.
    let req = Request::post(format!("/api/v1/conversations/{id}/messages"))
        .header("authorization", format!("Bearer {}", token("alice")))
        .body(Body::from("{not json"))
        .expect("req");
    let (status, v) = api.raw(req).await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (422, Some("invalid"))
    );
}

#[tokio::test]
async fn friends_and_direct_conversations() {
    let api = Api::new(Config::default()).await;
    assert_eq!(
        api.deny(
            Method::POST,
            "/conversations/direct",
            Some("alice"),
            Some(json!({"user":"bob"}))
        )
        .await,
        (403, "not_friends".into())
    );
    let r = api
        .ok(Method::POST, "/friends/bob/request", "alice", None)
        .await;
    assert_eq!(r["friend"]["status"], "request_sent");
    assert_eq!(
        api.deny(Method::POST, "/friends/bob/request", Some("alice"), None)
            .await
            .0,
        409
    );
    let r = api
        .ok(Method::POST, "/friends/alice/accept", "bob", None)
        .await;
    assert_eq!(r["friend"]["status"], "friends");
    let list = api.ok(Method::GET, "/friends", "alice", None).await;
    assert_eq!(list["friends"][0]["user"], "bob");
    let online = api.ok(Method::GET, "/friends/online", "alice", None).await;
    assert_eq!(online["users"], json!([]));

    let d = api
        .ok(
            Method::POST,
            "/conversations/direct",
            "alice",
            Some(json!({"user":"bob"})),
        )
        .await;
    assert_eq!(
        (d["type"].as_str(), d["created"].as_bool()),
        (Some("direct"), Some(true))
    );
    let conv = d["conversation"]["id"].as_str().expect("id").to_owned();
    api.ok(
        Method::POST,
        &format!("/conversations/{conv}/messages"),
        "alice",
        Some(json!({"body":"hey"})),
    )
    .await;
    api.ok(
        Method::POST,
        &format!("/conversations/{conv}/read"),
        "bob",
        Some(json!({"seq":1})),
    )
    .await;
    let h = api
        .ok(
            Method::GET,
            &format!("/conversations/{conv}/messages"),
            "alice",
            None,
        )
        .await;
    assert_eq!(h["messages"][0]["status"], "read");

    let r = api.ok(Method::DELETE, "/friends/bob", "alice", None).await;
    assert_eq!(r["friend"]["status"], "none");
    assert_eq!(
        api.deny(
            Method::POST,
            &format!("/conversations/{conv}/messages"),
            Some("alice"),
            Some(json!({"body":"hey"}))
        )
        .await,
        (403, "not_friends".into())
    );
    api.ok(Method::POST, "/friends/carol/request", "dave", None)
        .await;
    let r = api
        .ok(Method::POST, "/friends/dave/decline", "carol", None)
        .await;
    assert_eq!(r["friend"]["status"], "none");
    api.ok(Method::POST, "/friends/carol/request", "dave", None)
        .await;
    api.ok(Method::POST, "/friends/carol/cancel", "dave", None)
        .await;
    let r = api
        .ok(Method::POST, "/friends/dave/block", "carol", None)
        .await;
    assert_eq!(r["friend"]["status"], "blocked");
    assert_eq!(
        api.deny(Method::POST, "/friends/carol/request", Some("dave"), None)
            .await
            .0
            / 100,
        4
    );
    let r = api
        .ok(Method::POST, "/friends/dave/unblock", "carol", None)
        .await;
    assert_eq!(r["friend"]["status"], "none");
    api.befriend("erin", "frank").await;
}

#[tokio::test]
async fn invite_into_a_private_room() {
    let api = Api::new(Config::default()).await;
    let room = api
        .ok(
            Method::POST,
            "/rooms",
            "alice",
            Some(json!({"name":"secret","visibility":"private"})),
        )
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        api.deny(Method::POST, "/rooms/secret/join", Some("bob"), None)
            .await
            .0
            / 100,
        4
    );
    api.ok(
        Method::POST,
        &format!("/rooms/{id}/invite"),
        "alice",
        Some(json!({"user":"bob"})),
    )
    .await;
    let m = api
        .ok(Method::GET, &format!("/rooms/{id}/members"), "bob", None)
        .await;
    assert_eq!(m["members"].as_array().expect("members").len(), 2);
}

#[tokio::test]
async fn admin_endpoints_are_off_without_a_key() {
    let api = Api::new(Config::default()).await;
    let req = Request::get("/api/v1/admin/stats")
        .header("x-internal-api-key", "")
        .body(Body::empty())
        .expect("req");
    let (status, v) = api.raw(req).await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_key() {
    let api = Api::new(Config::default().admin_api_key("k3y")).await;
    let room = api
        .ok(
            Method::POST,
            "/rooms",
            "alice",
            Some(json!({"name":"news"})),
        )
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let admin = |uri: &str, key: Option<&str>, body: Option<Value>| {
        let mut req = Request::builder()
            .method(if body.is_some() {
                Method::POST
            } else {
                Method::GET
            })
            .uri(format!("/api/v1{uri}"));
        if let Some(k) = key {
            req = req.header("x-internal-api-key", k);
        }
        req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("req")
    };
    let (s, v) = api.raw(admin("/admin/stats", None, None)).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (s, v) = api.raw(admin("/admin/stats", Some("k3x"), None)).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (403, Some("forbidden")));
    // A user token is not an admin key.
    let req = Request::get("/api/v1/admin/stats")
        .header("authorization", format!("Bearer {}", token("alice")))
        .body(Body::empty())
        .expect("req");
    assert_eq!(api.raw(req).await.0.as_u16(), 401);

    let (s, v) = api.raw(admin("/admin/stats", Some("k3y"), None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["connections"], 0);
    assert_eq!(v["node"], json!(api.engine.node()));

    let (s, v) = api
        .raw(admin(
            "/admin/rooms/news/messages",
            Some("k3y"),
            Some(json!({"body":"maintenance at noon"})),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["message"]["kind"].as_str(),
            v["message"]["sender"].as_str()
        ),
        (Some("system"), Some("system"))
    );
    let (s, _) = api
        .raw(admin(
            &format!("/admin/rooms/{id}/messages"),
            Some("k3y"),
            Some(json!({"body":"by id","sender":"ops"})),
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = api
        .raw(admin(
            "/admin/rooms/nope/messages",
            Some("k3y"),
            Some(json!({"body":"x"})),
        ))
        .await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (404, Some("not_found")));
    let (s, _) = api
        .raw(admin(
            "/admin/rooms/news/messages",
            Some("wrong"),
            Some(json!({"body":"x"})),
        ))
        .await;
    assert_eq!(s.as_u16(), 403);
    let h = api
        .ok(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            "alice",
            None,
        )
        .await;
    assert_eq!(h["messages"].as_array().expect("msgs").len(), 2);
}

/// A known route with a method it does not take answers 405 with the JSON error body,
/// like every other error (found by the `http` fuzz target).
#[tokio::test]
async fn a_wrong_method_gets_405_with_a_json_error_body() {
    use tower::ServiceExt;
    let state = chat_transport_ws::ChatState::new(
        chat_core::Engine::builder(std::sync::Arc::new(chat_core::memory::MemoryStore::new()))
            .build()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        std::sync::Arc::new(chat_transport_ws::JwtAuthenticator::hs256(&b"x".repeat(32))),
        Default::default(),
    );
    for (method, path) in [
        ("PATCH", "/api/v1/health"),
        ("PUT", "/ws"),
        ("DELETE", "/api/v1/rooms"),
    ] {
        let response = chat_transport_ws::router(state.clone())
            .oneshot(
                axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .body(axum::body::Body::empty())
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), 405, "{method} {path}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(v["code"], "invalid", "{method} {path}: {v}");
    }
}

#[tokio::test]
async fn replies_threads_and_attachments() {
    let api = Api::new(Config::default()).await;
    let room = api
        .ok(Method::POST, "/rooms", "alice", Some(json!({"name":"t"})))
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let msgs = format!("/conversations/{id}/messages");
    api.ok(Method::POST, "/rooms/t/join", "bob", None).await;
    api.ok(Method::POST, &msgs, "alice", Some(json!({"body":"root"})))
        .await;
    api.ok(Method::POST, &msgs, "alice", Some(json!({"body":"other"})))
        .await;
    let file = json!({"url":"https://files.example/x.pdf","mime_type":"application/pdf",
        "size":2048,"name":"x.pdf"});
    let reply = api
        .ok(
            Method::POST,
            &msgs,
            "bob",
            Some(json!({"body":"","reply_to":1,"attachments":[file]})),
        )
        .await;
    assert_eq!(reply["message"]["reply_to"], 1, "{reply}");
    assert_eq!(reply["message"]["thread"], 1, "{reply}");
    assert_eq!(reply["message"]["attachments"], json!([file]), "{reply}");
    let h = api
        .ok(Method::GET, &format!("{msgs}?thread=1"), "alice", None)
        .await;
    let got: Vec<(u64, u64)> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().expect("seq"),
                m["reply_count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got, vec![(1, 1), (3, 0)], "{h}");
    let plain = api.ok(Method::GET, &msgs, "alice", None).await;
    assert!(
        plain["messages"][1].get("reply_count").is_none()
            && plain["messages"][1].get("attachments").is_none(),
        "empty fields are left out: {plain}"
    );

    let eleven: Vec<Value> = (0..11).map(|_| file.clone()).collect();
    let hidden = api
        .ok(
            Method::POST,
            "/rooms",
            "alice",
            Some(json!({"name":"hidden","visibility":"private"})),
        )
        .await;
    let hidden = hidden["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (reply_thread, no_thread) = (format!("{msgs}?thread=3"), format!("{msgs}?thread=99"));
    let (hidden_thread, missing_thread) = (
        format!("/conversations/{hidden}/messages?thread=1"),
        "/conversations/00000000-0000-0000-0000-00000000beef/messages?thread=1".to_owned(),
    );
    #[rustfmt::skip]
    let rows: Vec<Row<'_>> = vec![
        (Method::POST, &msgs, Some(json!({"body":"x","attachments":eleven})), 413, Some("too_large")),
        (Method::POST, &msgs, Some(json!({"body":"x","attachments":[{"url":"ftp://a/b",
            "mime_type":"text/plain","size":1,"name":"b"}]})), 400, Some("invalid")),
        (Method::POST, &msgs, Some(json!({"body":"x","reply_to":99})), 404, Some("not_found")),
        (Method::GET, &reply_thread, None, 400, Some("invalid")),
        (Method::GET, &no_thread, None, 404, Some("not_found")),
        (Method::GET, &hidden_thread, None, 404, Some("not_found")),
        (Method::GET, &missing_thread, None, 404, Some("not_found")),
    ];
    api.denials("bob", rows).await;
    let h = api.ok(Method::GET, &msgs, "alice", None).await;
    assert_eq!(h["last_seq"], 3, "no denial stored anything: {h}");
}
