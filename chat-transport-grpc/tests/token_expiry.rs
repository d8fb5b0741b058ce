//! A `Connect` stream lasts as long as its token: it ends with `UNAUTHENTICATED` /
//! `token_expired` at the token's `exp` (the WebSocket's 4001), unless `refresh_token`
//! handed it a fresh token for the same user first.
//!
//! Real tokens with real expiries of 2 s (a JWT's `exp` is in whole seconds and the
//! authenticator checks it against the system clock).

mod common;

use std::time::Duration;

use chat_transport_grpc::proto::{self, client_frame::Command as Cmd};
use common::*;
use serde_json::json;
use tonic::Code;

fn short_token(user: &str, secs: u64) -> (String, u64) {
    let exp = now() + secs;
    (token_with(json!({"sub": user, "exp": exp})), exp)
}

#[tokio::test]
async fn the_stream_ends_when_its_token_expires_and_refusals_change_nothing() {
    let server = Server::start().await;
    let (short, exp) = short_token("alice", 2);
    let api = Api::new(server.channel().await, Some(short));
    let mut conn = api.connect().await;
    conn.hello().await;
    // Another user's token is forbidden; garbage is unauthenticated; the stream stays.
    let code = conn
        .deny(Cmd::RefreshToken(proto::RefreshTokenRequest {
            token: token("bob"),
        }))
        .await;
    assert_eq!(code, "forbidden");
    let code = conn
        .deny(Cmd::RefreshToken(proto::RefreshTokenRequest {
            token: "garbage".into(),
        }))
        .await;
    assert_eq!(code, "unauthenticated");
    conn.ok(Cmd::UnreadTotal(proto::UnreadTotalRequest {}))
        .await;
    // At the old expiry, the end.
    let end = conn.end().await.expect_err("expired");
    assert!(now() >= exp, "ended at the expiry, not before");
    assert_eq!(end.code(), Code::Unauthenticated);
    assert_eq!(code_of(&end).as_deref(), Some("token_expired"));
    server.wait_connections(0).await;
}

#[tokio::test]
async fn a_refresh_before_the_expiry_keeps_the_stream_past_it() {
    let server = Server::start().await;
    let (short, old_exp) = short_token("alice", 2);
    let api = Api::new(server.channel().await, Some(short));
    let mut conn = api.connect().await;
    conn.hello().await;
    let (fresh, new_exp) = short_token("alice", 3600);
    let reply = conn
        .ok(Cmd::RefreshToken(proto::RefreshTokenRequest {
            token: fresh,
        }))
        .await;
    let proto::reply::Reply::TokenRefreshed(r) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        r.expires_at.map(|t| t.seconds),
        Some(i64::try_from(new_exp).expect("exp"))
    );
    for _ in 0..40 {
        if now() > old_exp {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(now() > old_exp);
    match conn
        .ok(Cmd::UnreadTotal(proto::UnreadTotalRequest {}))
        .await
    {
        proto::reply::Reply::Unread(u) => assert_eq!(u.unread, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.engine.stats().connections, 1);
}
