//! The HTTP API applies the engine's per-user command rate (`commands_per_second`,
//! `command_burst`): over it, 429 `rate_limited` with `Retry-After`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chat_core::model::Limits;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
use common::*;
use serde_json::Value;
use tower::ServiceExt;

async fn app(per_second: u32, burst: u32) -> axum::Router {
    let mut limits = Limits::default();
    limits.commands_per_second = per_second;
    limits.command_burst = burst;
    let state = ChatState::new(
        engine(limits).await,
        Arc::new(JwtAuthenticator::hs256(SECRET)),
        Config::default().admin_api_key("k"),
    );
    chat_transport_ws::router(state)
}

/// GET `path` as `user` (or with the admin key when `user` is `None`): status,
/// `Retry-After`, body.
async fn get(
    app: &axum::Router,
    path: &str,
    user: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::get(format!("/api/v1{path}"));
    req = match user {
        Some(u) => req.header("authorization", format!("Bearer {}", token(u))),
        None => req.header("x-internal-api-key", "k"),
    };
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("req"))
        .await
        .expect("response");
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, retry, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test(start_paused = true)]
async fn commands_over_the_burst_answer_429_with_retry_after() {
    let app = app(2, 3).await;
    for i in 0..3 {
        let (s, _, v) = get(&app, "/unread", Some("alice")).await;
        assert_eq!(s, StatusCode::OK, "request {i} is within the burst: {v}");
    }
    let (s, retry, v) = get(&app, "/unread", Some("alice")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["code"], "rate_limited");
    assert!(v["message"].is_string(), "{v}");
    assert_eq!(retry.as_deref(), Some("1"), "seconds until a token is back");

    // The limit is per user.
    let (s, _, _) = get(&app, "/unread", Some("bob")).await;
    assert_eq!(s, StatusCode::OK);
    // Health and admin routes are not user commands.
    assert_eq!(get(&app, "/health", Some("alice")).await.0, StatusCode::OK);
    assert_eq!(get(&app, "/admin/stats", None).await.0, StatusCode::OK);

    // Half a second refills one token at 2 per second: one more passes, the next not.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(get(&app, "/unread", Some("alice")).await.0, StatusCode::OK);
    assert_eq!(
        get(&app, "/unread", Some("alice")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // After the Retry-After, the user may go on.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(get(&app, "/unread", Some("alice")).await.0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_zero_rate_means_no_limit() {
    let app = app(0, 1).await;
    for _ in 0..50 {
        assert_eq!(get(&app, "/unread", Some("alice")).await.0, StatusCode::OK);
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_changes_nothing() {
    let app = app(1, 1).await;
    let post = |name: &str| {
        Request::post("/api/v1/rooms")
            .header("authorization", format!("Bearer {}", token("alice")))
            .body(Body::from(format!("{{\"name\":\"{name}\"}}")))
            .expect("req")
    };
    let ok = app.clone().oneshot(post("first")).await.expect("resp");
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = app.clone().oneshot(post("second")).await.expect("resp");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::advance(Duration::from_secs(1)).await;
    // "second" was never created: joining it finds nothing.
    let (s, _, v) = get(&app, "/conversations", Some("alice")).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["conversations"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["conversation"]["name"].as_str())
        .collect();
    assert_eq!(names, ["first"]);
}
