//! A connection lasts as long as its token: it closes with 4001 at the token's `exp`,
//! unless `refresh_token` handed it a fresh token for the same user first.
//!
//! Real tokens with real expiries of 2 s (a JWT's `exp` is in whole seconds, and the
//! authenticator checks it against the system clock, so tokio's paused time cannot
//! stand in for it).

mod common;

use std::time::Duration;

use chat_core::ports::Credential;
use chat_core::{Command, ErrorCode};
use common::*;
use serde_json::json;

/// A token for `user` that expires `secs` seconds from now (at a whole second).
fn token_for(user: &str, secs: u64) -> (String, u64) {
    let exp = now() + secs;
    (token_with(json!({"sub": user, "exp": exp})), exp)
}

fn expires_at(exp: u64) -> String {
    let at = chrono::DateTime::from_timestamp(i64::try_from(exp).expect("exp"), 0).expect("time");
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn the_connection_closes_with_4001_when_its_token_expires() {
    let server = Server::start().await;
    let (token, exp) = token_for("alice", 2);
    let mut c = server.connect_token("alice", "/ws", &token).await;
    // Usable until then.
    c.ok(json!({"type":"unread_total"})).await;
    assert_eq!(read_close(&mut c.ws).await, Some(4001));
    assert!(now() >= exp, "closed at the expiry, not before");
    server.wait_connections(0).await;
}

#[tokio::test]
async fn a_refresh_before_the_expiry_keeps_the_connection_past_it() {
    let server = Server::start().await;
    let (short, old_exp) = token_for("alice", 2);
    let mut c = server.connect_token("alice", "/ws", &short).await;
    let (fresh, new_exp) = token_for("alice", 3600);
    let reply = c.ok(json!({"type":"refresh_token","token":fresh})).await;
    assert_eq!(
        reply,
        json!({"type":"token_refreshed","expires_at":expires_at(new_exp)})
    );
    // Past the old expiry, the connection still works.
    while now() <= old_exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.ok(json!({"type":"unread_total"})).await["unread"], 0);
    assert_eq!(server.engine.stats().connections, 1);
}

#[tokio::test]
async fn a_refresh_with_another_users_token_is_forbidden_and_changes_nothing() {
    let server = Server::start().await;
    let (short, exp) = token_for("alice", 2);
    let mut c = server.connect_token("alice", "/ws", &short).await;
    let (bobs, _) = token_for("bob", 3600);
    let code = c.deny(json!({"type":"refresh_token","token":bobs})).await;
    assert_eq!(code, "forbidden");
    // The connection stays, still alice's...
    let reply = c
        .ok(json!({"type":"create_room","name":"still-alice"}))
        .await;
    assert_eq!(reply["conversation"]["created_by"], "alice");
    // ...and still ends at the old expiry.
    assert_eq!(read_close(&mut c.ws).await, Some(4001));
    assert!(now() >= exp);
}

#[tokio::test]
async fn a_refresh_with_a_bad_token_is_unauthenticated_and_the_connection_stays() {
    let server = Server::start().await;
    let mut c = server.connect("alice").await;
    let expired = token_with(json!({"sub": "alice", "exp": now() - 60}));
    let forged = {
        let (t, _) = token_for("alice", 3600);
        // Same header and claims, another signature.
        let (signed, _) = t.rsplit_once('.').expect("jwt");
        format!("{signed}.c2lnbmF0dXJl")
    };
    for token in ["not a token", expired.as_str(), forged.as_str()] {
        let code = c.deny(json!({"type":"refresh_token","token":token})).await;
        assert_eq!(code, "unauthenticated", "{token}");
    }
    assert_eq!(c.ok(json!({"type":"unread_total"})).await["unread"], 0);
}

#[tokio::test]
async fn refresh_token_without_a_transport_is_invalid() {
    let server = Server::start().await;
    let command = Command::RefreshToken {
        token: Credential::new(token("alice")),
    };
    let err = server
        .engine
        .execute_as(&uid("alice"), command)
        .await
        .expect_err("the engine does not refresh tokens");
    assert_eq!(err.code(), ErrorCode::Invalid);
}
