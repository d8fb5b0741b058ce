//! Kicking a user (the admin route closes their sessions with 4003) and refusing their
//! revoked tokens on the next connect (401).

mod common;
mod http1;

use chat_core::model::Limits;
use chat_transport_ws::Config;
use common::*;

const KEY: &str = "admin-key";

#[tokio::test]
async fn the_admin_route_kicks_every_session_of_a_user_with_4003() {
    let server = Server::with(Config::default().admin_api_key(KEY), Limits::default()).await;
    let mut a1 = server.connect("alice").await;
    let mut a2 = server.connect("alice").await;
    let mut bob = server.connect("bob").await;
    server.wait_connections(3).await;

    let kick = |key: Option<&str>, user: &str| {
        let headers: Vec<(&str, String)> = key
            .map(|k| vec![("x-internal-api-key", k.to_owned())])
            .unwrap_or_default();
        let path = format!("/api/v1/admin/users/{user}/disconnect");
        let addr = server.addr;
        async move { http1::request(addr, "POST", &path, &headers, None).await }
    };
    // Guarded like every admin route; a refused call kicks nobody.
    let r = kick(None, "alice").await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (401, Some("unauthenticated")),
        "{}",
        r.text
    );
    let r = kick(Some("wrong"), "alice").await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        r.text
    );
    let r = kick(Some(KEY), " bad id ").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(server.engine.stats().connections, 3);

    let r = kick(Some(KEY), "alice").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["disconnected"], 2, "{}", r.text);
    assert_eq!(a1.close_code().await, Some(4003));
    assert_eq!(a2.close_code().await, Some(4003));
    server.wait_connections(1).await;
    // Bob stays.
    bob.ok(serde_json::json!({"type":"unread_total"})).await;

    // Nobody left to kick: 200 with 0.
    let r = kick(Some(KEY), "alice").await;
    assert_eq!(
        (r.status, r.json["disconnected"].as_u64()),
        (200, Some(0)),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn the_kick_route_is_off_without_a_key() {
    let server = Server::with(Config::default(), Limits::default()).await;
    let r = http1::request(
        server.addr,
        "POST",
        "/api/v1/admin/users/alice/disconnect",
        &[("x-internal-api-key", String::new())],
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.text
    );
}

/// What the test's denylist holds: token ids, and users whose tokens issued before a
/// time are void.
#[derive(Default)]
struct Denylist {
    ids: std::collections::HashSet<String>,
    users_before: std::collections::HashMap<String, u64>,
}

#[tokio::test]
async fn a_revoked_token_is_refused_with_401_on_connect_and_over_http() {
    use std::sync::{Arc, Mutex};

    use chat_core::ports::Authenticator;
    use chat_transport_ws::{ChatState, JwtAuthenticator, TokenClaims};
    use serde_json::json;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let list = Arc::new(Mutex::new(Denylist::default()));
    let seen = list.clone();
    let auth = JwtAuthenticator::hs256(SECRET).revocations(move |t: TokenClaims<'_>| {
        let l = seen.lock().expect("lock");
        t.jti.is_some_and(|id| l.ids.contains(id))
            || l.users_before
                .get(t.sub)
                .is_some_and(|before| t.iat.is_none_or(|iat| iat < *before))
    });
    let engine = engine(Limits::default()).await;
    let state = ChatState::new(
        engine.clone(),
        Arc::new(auth.clone()),
        Config::default().admin_api_key(KEY),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(chat_transport_ws::serve(
        listener,
        state,
        std::future::pending(),
    ));

    let t1 = token_with(json!({"sub":"alice","jti":"t-1","iat":now() - 10,"exp":now() + 3600}));
    let t2 = token_with(json!({"sub":"alice","jti":"t-2","iat":now() - 10,"exp":now() + 3600}));
    let connect = |t: String| async move {
        let req = format!("ws://{addr}/ws?token={t}")
            .into_client_request()
            .expect("req");
        match tokio_tungstenite::connect_async(req).await {
            Ok(_) => Ok(()),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body: serde_json::Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or(b"null"))
                        .expect("JSON");
                Err((resp.status().as_u16(), body["code"].clone()))
            }
            Err(e) => panic!("handshake: {e}"),
        }
    };
    connect(t1.clone()).await.expect("not revoked yet");

    // By token id: t-1 is refused, t-2 still passes.
    list.lock().expect("lock").ids.insert("t-1".into());
    assert_eq!(
        connect(t1.clone()).await.expect_err("revoked"),
        (401, json!("unauthenticated"))
    );
    connect(t2.clone())
        .await
        .expect("another token of the same user");
    let r = http1::request(
        addr,
        "GET",
        "/api/v1/unread",
        &[("authorization", format!("Bearer {t1}"))],
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (401, Some("unauthenticated")),
        "{}",
        r.text
    );
    let e = auth.authenticate(&t1).await.expect_err("revoked");
    assert!(e.to_string().contains("revoked"), "{e}");

    // By user and issue time: every token of alice issued before now, and one without
    // `iat`; a token issued later passes.
    list.lock()
        .expect("lock")
        .users_before
        .insert("alice".into(), now() - 1);
    assert_eq!(connect(t2).await.expect_err("kicked").0, 401);
    let no_iat = token_with(json!({"sub":"alice","exp":now() + 3600}));
    assert_eq!(connect(no_iat).await.expect_err("no iat").0, 401);
    let fresh = token_with(json!({"sub":"alice","iat":now(),"exp":now() + 3600}));
    connect(fresh).await.expect("issued after the kick");
    connect(token("bob"))
        .await
        .expect("other users are not touched");
}

#[tokio::test]
async fn a_revocation_list_that_cannot_be_read_refuses_with_503() {
    use async_trait::async_trait;
    use chat_core::ports::Authenticator;
    use chat_transport_ws::{JwtAuthenticator, Revocations, TokenClaims};

    struct Down;
    #[async_trait]
    impl Revocations for Down {
        async fn is_revoked(&self, _: TokenClaims<'_>) -> chat_core::Result<bool> {
            Err(chat_core::Error::unavailable("the denylist is down"))
        }
    }
    let auth = JwtAuthenticator::hs256(SECRET).revocations(Down);
    let e = auth
        .authenticate(&token("alice"))
        .await
        .expect_err("fails closed");
    assert_eq!(e.code(), chat_core::ErrorCode::Unavailable);
    let engine = engine(Limits::default()).await;
    let app = chat_transport_ws::router(chat_transport_ws::ChatState::new(
        engine,
        std::sync::Arc::new(auth),
        Config::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = http1::request(
        addr,
        "GET",
        "/api/v1/unread",
        &[("authorization", format!("Bearer {}", token("alice")))],
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.text
    );
}
