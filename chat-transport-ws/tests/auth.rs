//! Authentication at the handshake: refused tokens get 401 and never reach the engine.

mod common;

use std::sync::Arc;

use chat_core::model::Limits;
use chat_core::ports::Authenticator;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
use common::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Request;

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");

fn b64(v: &Value) -> String {
    base64url(v.to_string().as_bytes())
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// `alg: none`, no signature.
fn unsigned_token(user: &str) -> String {
    format!(
        "{}.{}.",
        b64(&json!({"alg":"none","typ":"JWT"})),
        b64(&json!({"sub":user,"exp":now() + 3600}))
    )
}

async fn handshake(req: Request<()>) -> Result<(), (u16, Value)> {
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"null"))
                .expect("JSON error body");
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("unexpected handshake error {e}"),
    }
}

fn bearer(server: &Server, token: &str) -> Request<()> {
    let mut req = server.url("/ws").into_client_request().expect("req");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

#[tokio::test]
async fn refused_tokens_get_401_and_never_reach_the_engine() {
    let server = Server::start().await;
    let wrong_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub":"alice","exp":now() + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret"),
    )
    .expect("token");
    let expired = token_with(json!({"sub":"alice","exp":now() - 120}));
    let not_yet = token_with(json!({"sub":"alice","exp":now() + 3600,"nbf":now() + 600}));
    let no_exp = token_with(json!({"sub":"alice"}));
    let cases = [
        ("wrong key", bearer(&server, &wrong_key)),
        ("expired", bearer(&server, &expired)),
        ("not yet valid", bearer(&server, &not_yet)),
        ("no exp", bearer(&server, &no_exp)),
        ("alg none", bearer(&server, &unsigned_token("alice"))),
        ("garbage", bearer(&server, "garbage")),
        (
            "missing",
            server.url("/ws").into_client_request().expect("req"),
        ),
    ];
    for (what, req) in cases {
        let (status, body) = handshake(req).await.expect_err(what);
        assert_eq!(status, 401, "{what}");
        assert_eq!(body["code"], "unauthenticated", "{what}: {body}");
        assert!(body["message"].is_string(), "{what}");
    }
    assert_eq!(server.engine.stats().connections, 0);
    assert_eq!(server.engine.stats().online_users, 0);
}

#[tokio::test]
async fn the_token_may_come_from_header_query_or_cookie() {
    let config = Config::default().token_cookie("sid");
    let server = Server::with(config, Limits::default()).await;
    handshake(bearer(&server, &token("h")))
        .await
        .expect("header");
    let q = server
        .url(&format!("/ws?token={}", token("q")))
        .into_client_request()
        .expect("req");
    handshake(q).await.expect("query");
    let mut c = server.url("/ws").into_client_request().expect("req");
    c.headers_mut().insert(
        "cookie",
        format!("theme=dark; sid={}", token("c"))
            .parse()
            .expect("cookie"),
    );
    handshake(c).await.expect("cookie");
    // A cookie of another name is not a token.
    let mut other = server.url("/ws").into_client_request().expect("req");
    other.headers_mut().insert(
        "cookie",
        format!("chat_token={}", token("c"))
            .parse()
            .expect("cookie"),
    );
    assert_eq!(handshake(other).await.expect_err("wrong cookie").0, 401);
    // Query token on the room route, next to create=true.
    let r = server
        .url(&format!("/ws/rooms/qroom?create=true&token={}", token("q")))
        .into_client_request()
        .expect("req");
    handshake(r).await.expect("room with query token");
}

#[tokio::test]
async fn jwt_hs256_reads_sub_and_name_and_refuses_an_rs256_token() {
    let auth = JwtAuthenticator::hs256(SECRET);
    let id = auth
        .authenticate(&token_with(
            json!({"sub":"alice","name":"Alice A.","exp":now() + 60}),
        ))
        .await
        .expect("valid");
    assert_eq!(id.user, uid("alice"));
    assert_eq!(id.display_name.as_deref(), Some("Alice A."));
    let rs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"sub":"alice","exp":now() + 60}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("key"),
    )
    .expect("rs token");
    assert!(
        auth.authenticate(&rs).await.is_err(),
        "RS256 on an HS256 server"
    );
    let bad_sub = token_with(json!({"sub":"","exp":now() + 60}));
    assert!(auth.authenticate(&bad_sub).await.is_err(), "empty sub");
}

#[tokio::test]
async fn jwt_rs256_accepts_its_key_and_refuses_the_hs_swap_and_alg_none() {
    let auth = JwtAuthenticator::rs256_pem(RSA_PUBLIC).expect("public key");
    let good = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"sub":"bob","exp":now() + 60}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("key"),
    )
    .expect("token");
    assert_eq!(
        auth.authenticate(&good).await.expect("valid").user,
        uid("bob")
    );
    // The classic swap: HS256 signed with the public key as the secret.
    let swapped = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub":"bob","exp":now() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(RSA_PUBLIC),
    )
    .expect("token");
    let e = auth.authenticate(&swapped).await.expect_err("swap");
    assert_eq!(e.code(), chat_core::ErrorCode::Unauthenticated);
    assert!(
        auth.authenticate(&unsigned_token("bob")).await.is_err(),
        "alg none"
    );
    assert!(JwtAuthenticator::rs256_pem(b"not a key").is_err());
}

#[tokio::test]
async fn a_static_token_table_works_as_the_authenticator_too() {
    let engine = engine(Limits::default()).await;
    let tokens = chat_core::ports::StaticTokens::new()
        .with("t-1", chat_core::ports::Identity::new(uid("zed")));
    let state = ChatState::new(engine, Arc::new(tokens), Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(chat_transport_ws::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let req = format!("ws://{addr}/ws?token=t-1")
        .into_client_request()
        .expect("req");
    handshake(req).await.expect("static token");
}

#[tokio::test]
async fn the_default_leeway_forgives_a_few_seconds_of_clock_skew() {
    let auth = JwtAuthenticator::hs256(SECRET);
    let just_expired = token_with(json!({"sub":"alice","exp":now() - 2}));
    auth.authenticate(&just_expired)
        .await
        .expect("expired 2 s ago: within the default leeway");
    let almost_valid = token_with(json!({"sub":"alice","exp":now() + 60,"nbf":now() + 2}));
    auth.authenticate(&almost_valid)
        .await
        .expect("valid in 2 s: within the default leeway");
    let long_expired = token_with(json!({"sub":"alice","exp":now() - 60}));
    let e = auth
        .authenticate(&long_expired)
        .await
        .expect_err("expired a minute ago");
    assert_eq!(e.code(), chat_core::ErrorCode::Unauthenticated);
}

#[tokio::test]
async fn a_set_leeway_forgives_less_than_itself_and_no_more() {
    let auth = JwtAuthenticator::hs256(SECRET).leeway(std::time::Duration::from_secs(30));
    for (what, claims, ok) in [
        (
            "expired 20 s ago",
            json!({"sub":"a","exp":now() - 20}),
            true,
        ),
        (
            "expired 40 s ago",
            json!({"sub":"a","exp":now() - 40}),
            false,
        ),
        (
            "valid in 20 s",
            json!({"sub":"a","exp":now() + 60,"nbf":now() + 20}),
            true,
        ),
        (
            "valid in 40 s",
            json!({"sub":"a","exp":now() + 90,"nbf":now() + 40}),
            false,
        ),
    ] {
        let got = auth.authenticate(&token_with(claims)).await;
        assert_eq!(got.is_ok(), ok, "{what}: {got:?}");
    }
    // No leeway at all: a token expired 2 s ago is refused.
    let strict = JwtAuthenticator::hs256(SECRET).leeway(std::time::Duration::ZERO);
    let just_expired = token_with(json!({"sub":"a","exp":now() - 2}));
    assert!(strict.authenticate(&just_expired).await.is_err());
    assert!(strict.authenticate(&token("a")).await.is_ok());
}
