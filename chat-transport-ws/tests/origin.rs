//! Cross-site WebSocket hijacking and cross-site requests: a token taken from a cookie is
//! honoured only for requests from an allowed origin (the server's own by default); a
//! token in the `Authorization` header or the query is never sent by a browser on its
//! own, so those requests are not checked.

mod common;
mod http1;

use chat_core::model::Limits;
use chat_transport_ws::Config;
use common::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Request;

const EVIL: &str = "https://evil.example";

/// The handshake's outcome: `Ok` on an upgrade, else the status and the JSON body.
async fn handshake(req: Request<()>) -> Result<(), (u16, Value)> {
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"null"))
                .unwrap_or(Value::Null);
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("unexpected handshake error {e}"),
    }
}

/// A handshake to `/ws` with `headers`.
fn ws(server: &Server, path: &str, headers: &[(&'static str, String)]) -> Request<()> {
    let mut req = server.url(path).into_client_request().expect("req");
    for (k, v) in headers {
        req.headers_mut()
            .insert(*k, v.parse().expect("header value"));
    }
    req
}

fn cookie(user: &str) -> (&'static str, String) {
    ("cookie", format!("chat_token={}", token(user)))
}

fn origin(o: &str) -> (&'static str, String) {
    ("origin", o.to_owned())
}

fn same_origin(server: &Server) -> String {
    format!("http://{}", server.addr)
}

#[tokio::test]
async fn a_cookie_from_another_origin_is_refused_before_the_upgrade() {
    let server = Server::start().await;
    for bad in [
        EVIL,
        "null",
        "http://127.0.0.1:1",
        "https://evil.example:443",
    ] {
        let (status, body) = handshake(ws(&server, "/ws", &[cookie("alice"), origin(bad)]))
            .await
            .expect_err(bad);
        assert_eq!(status, 403, "{bad}");
        assert_eq!(body["code"], "forbidden", "{bad}: {body}");
    }
    // The room route too.
    let (status, _) = handshake(ws(
        &server,
        "/ws/rooms/general?create=true",
        &[cookie("alice"), origin(EVIL)],
    ))
    .await
    .expect_err("room route");
    assert_eq!(status, 403);
    assert_eq!(server.engine.stats().connections, 0);
    assert_eq!(server.engine.stats().online_users, 0);
}

#[tokio::test]
async fn a_cookie_from_the_same_origin_upgrades() {
    let server = Server::start().await;
    let me = same_origin(&server);
    handshake(ws(&server, "/ws", &[cookie("alice"), origin(&me)]))
        .await
        .expect("same origin");
    // The scheme compares without case.
    let upper = me.replace("http://", "HTTP://");
    handshake(ws(&server, "/ws", &[cookie("alice"), origin(&upper)]))
        .await
        .expect("same origin, other case");
    // No Origin at all: not a browser, so nothing was forged.
    handshake(ws(&server, "/ws", &[cookie("alice")]))
        .await
        .expect("no origin");
}

#[tokio::test]
async fn a_cookie_from_a_listed_origin_upgrades_and_the_others_still_do_not() {
    let config =
        Config::default().allowed_origins(["https://app.example", "http://Localhost:3000/"]);
    let server = Server::with(config, Limits::default()).await;
    for good in [
        "https://app.example",
        "https://APP.example:443",
        "http://localhost:3000",
        &same_origin(&server),
    ] {
        handshake(ws(&server, "/ws", &[cookie("alice"), origin(good)]))
            .await
            .unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
    for bad in [
        EVIL,
        "http://app.example",
        "https://app.example:8443",
        "http://localhost:3001",
    ] {
        let (status, _) = handshake(ws(&server, "/ws", &[cookie("alice"), origin(bad)]))
            .await
            .expect_err(bad);
        assert_eq!(status, 403, "{bad}");
    }
}

#[test]
fn what_counts_as_an_origin() {
    for good in [
        "https://a.example",
        "http://127.0.0.1:8080",
        "https://a.example/",
        "http://[::1]:3000",
    ] {
        assert!(chat_transport_ws::is_origin(good), "{good}");
    }
    for bad in [
        "a.example",
        "ftp://a.example",
        "https://",
        "https://a.example/path",
        "https://a.example:x",
        "null",
        "*",
    ] {
        assert!(!chat_transport_ws::is_origin(bad), "{bad}");
    }
}

#[tokio::test]
async fn header_and_query_tokens_upgrade_from_any_origin() {
    let server = Server::start().await;
    let bearer = ("authorization", format!("Bearer {}", token("bob")));
    handshake(ws(&server, "/ws", &[bearer, origin(EVIL)]))
        .await
        .expect("bearer from anywhere");
    let query = format!("/ws?token={}", token("carol"));
    handshake(ws(&server, &query, &[origin(EVIL)]))
        .await
        .expect("query token from anywhere");
    // A bearer token wins over a cookie, so the cookie is not what is checked.
    let bearer = ("authorization", format!("Bearer {}", token("bob")));
    handshake(ws(&server, "/ws", &[bearer, cookie("alice"), origin(EVIL)]))
        .await
        .expect("bearer beside a cookie");
}

#[tokio::test]
async fn http_requests_with_a_cookie_are_checked_the_same_way() {
    let server = Server::with(Config::default(), Limits::default()).await;
    let me = same_origin(&server);
    let post = |headers: Vec<(&'static str, String)>| {
        let addr = server.addr;
        async move {
            http1::request(
                addr,
                "POST",
                "/api/v1/rooms",
                &headers,
                Some(&serde_json::json!({"name": format!("r{}", uid_n())})),
            )
            .await
        }
    };
    let r = post(vec![cookie("alice"), origin(EVIL)]).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        r.text
    );
    let r = post(vec![cookie("alice"), origin(&me)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(vec![cookie("alice")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let bearer = ("authorization", format!("Bearer {}", token("alice")));
    let r = post(vec![bearer, origin(EVIL)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn uid_n() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
