//! The binary as a user runs it: refusals, `--help`, tokens, metrics, and a graceful
//! shutdown that loses no acknowledged message.

mod common;

use std::time::Duration;

use chat_client::chat_core::model::Visibility;
use chat_client::{Client, ClientEvent, Page};
use serde_json::{json, Map, Value};

use common::{next_json, run, Server, SECRET};

#[test]
fn refuses_to_serve_without_a_secret_and_says_why() {
    let (ok, _, err) = run(&["--store", "memory"], &[]);
    assert!(!ok);
    assert!(
        err.contains("no JWT secret") && err.contains("--dev"),
        "{err}"
    );
    let (ok, _, err) = run(&["--store", "memory", "--jwt-secret", "short"], &[]);
    assert!(!ok);
    assert!(err.contains("at least 32"), "{err}");
    let (ok, _, err) = run(&["--store", "nosql:x"], &[("CHAT_JWT_SECRET", SECRET)]);
    assert!(!ok);
    assert!(err.contains("unknown store"), "{err}");
}

#[test]
fn a_server_bus_needs_a_shared_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite:{}", dir.path().join("one.db").display());
    for bus in ["redis://127.0.0.1:1", "nats://127.0.0.1:1"] {
        let (ok, _, err) = run(
            &["--store", &db, "--bus", bus],
            &[("CHAT_JWT_SECRET", SECRET)],
        );
        assert!(!ok, "--bus {bus} with SQLite started");
        assert!(
            err.contains("SQLite file serves one node only") && err.contains("postgres://"),
            "{err}"
        );
        let (ok, _, err) = run(
            &["--store", "memory"],
            &[("CHAT_JWT_SECRET", SECRET), ("CHAT_BUS", bus)],
        );
        assert!(!ok, "CHAT_BUS={bus} with the memory store started");
        assert!(err.contains("lives in one process"), "{err}");
    }
    let (ok, _, err) = run(
        &["--store", "memory", "--bus", "kafka://x"],
        &[("CHAT_JWT_SECRET", SECRET)],
    );
    assert!(!ok);
    assert!(err.contains("unknown bus"), "{err}");
    assert!(
        !dir.path().join("one.db").exists(),
        "refused before opening the store"
    );
}

#[test]
fn help_documents_every_option() {
    let (ok, out, _) = run(&["--help"], &[]);
    assert!(ok);
    for option in [
        "--listen",
        "--store",
        "--pg-schema",
        "--bus",
        "--bus-prefix",
        "--grpc-listen",
        "--grpc-cert-identity",
        "--node-id",
        "--presence-ttl",
        "--jwt-secret",
        "--jwt-public-key",
        "--jwt-private-key",
        "--jwt-leeway",
        "--cookie-name",
        "--internal-api-key",
        "--ready-timeout",
        "--max-body-bytes",
        "--max-history-page",
        "--outbound-queue",
        "--commands-per-second",
        "--log",
        "--log-format",
        "--shutdown-timeout",
        "--tls-cert",
        "--tls-key",
        "--tls-client-ca",
        "--tls-client-auth",
        "--tls-handshake-timeout",
        "--dev",
    ] {
        assert!(out.contains(option), "--help lacks {option}");
        let var = format!(
            "CHAT_{}",
            option
                .trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        assert!(out.contains(&var), "--help lacks the variable {var}");
    }
    // A repeatable flag is named in the singular, its variable (a list) in the plural.
    assert!(
        out.contains("--allowed-origin <"),
        "--help lacks --allowed-origin"
    );
    assert!(
        out.contains("[env: CHAT_ALLOWED_ORIGINS="),
        "--help lacks CHAT_ALLOWED_ORIGINS"
    );
    for command in ["serve", "token", "migrate"] {
        assert!(out.contains(command), "--help lacks {command}");
    }
}

#[test]
fn token_needs_the_servers_key() {
    let (ok, _, err) = run(&["token", "--user", "alice"], &[]);
    assert!(!ok && err.contains("signed with the server's key"), "{err}");
    let (ok, out, _) = run(
        &["token", "--user", "alice", "--ttl", "5m"],
        &[("CHAT_JWT_SECRET", SECRET)],
    );
    assert!(ok);
    assert_eq!(out.trim().split('.').count(), 3, "a JWT: {out}");
    let (ok, _, err) = run(
        &["token", "--user", " bad "],
        &[("CHAT_JWT_SECRET", SECRET)],
    );
    assert!(!ok && err.contains("user id"), "{err}");
}

/// A chat-client connection of `user` to `server`.
async fn client(server: &Server, user: &str) -> (Client, chat_client::Events) {
    tokio::time::timeout(
        Duration::from_secs(10),
        Client::connect(format!("ws://{}/ws", server.addr), Server::token(user)),
    )
    .await
    .expect("connects in time")
    .expect("connects")
}

#[tokio::test]
async fn a_graceful_shutdown_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let server = Server::start(&db);
    let (alice, mut events) = client(&server, "alice").await;
    let conv = alice
        .create_room("durable", Visibility::Public)
        .await
        .expect("room")
        .id;
    let sent = alice
        .send_with_id(conv, "keep me", Some("k1".into()))
        .await
        .expect("sent");
    assert_eq!(sent.message.seq, 1);

    let metrics = server.get("/metrics");
    assert!(metrics.contains("chat_messages_sent_total 1"), "{metrics}");
    assert!(metrics.contains("chat_connections 1"), "{metrics}");
    assert!(
        metrics.contains("chat_store_append_seconds_count 1"),
        "{metrics}"
    );
    let page = server.get("/");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("<title>Chat</title>"),
        "the demo page is served"
    );
    assert!(
        server.get("/config.json").contains(r#"{"dev":false}"#),
        "dev is off unless asked for"
    );
    assert!(
        server.get("/api/v1/unread").starts_with("HTTP/1.1 401"),
        "no token, no access"
    );

    let logs = server.terminate();
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(ClientEvent::Disconnected { code, .. }) => return code,
                Some(ClientEvent::Closed { code, .. }) => panic!("closed for good: {code:?}"),
                Some(_) => continue,
                None => panic!("the events ended"),
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(
        close,
        Some(1001),
        "clients are told the server is going away"
    );
    alice.close();

    let again = Server::start(&db);
    let (alice, _events) = client(&again, "alice").await;
    let history = alice.history(conv, Page::default()).await.expect("history");
    assert_eq!(
        history.messages.first().map(|m| m.message.body.as_str()),
        Some("keep me"),
        "the acknowledged message survived: {history:?}"
    );
    let retry = alice
        .send_with_id(conv, "keep me", Some("k1".into()))
        .await
        .expect("retry");
    assert_eq!(
        (retry.duplicate, retry.message.seq),
        (true, 1),
        "a retry after the restart is not a second message"
    );
    alice.close();
    again.terminate();
}

/// The `hello.limits` a fresh connection of alice's reads.
async fn hello_limits(server: &Server) -> Map<String, Value> {
    let url = format!("ws://{}/ws?token={}", server.addr, Server::token("alice"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    hello["limits"].as_object().expect("hello.limits").clone()
}

/// Every limit a client reads in `hello.limits` has a flag and a `CHAT_*` variable, both
/// listed by `--help`, and what they set is what clients are told. The names follow the
/// hello's (a duration drops its `_ms` and takes a value like `5s`), except the queue's.
#[tokio::test]
async fn every_hello_limit_has_a_flag_and_a_variable() {
    let (ok, help, _) = run(&["--help"], &[]);
    assert!(ok);
    let server = Server::spawn(&["--store", "memory"], &[]);
    let defaults = hello_limits(&server).await;
    server.terminate();

    let mut args = vec!["--store".to_owned(), "memory".to_owned()];
    let mut env = Vec::new();
    let mut expected = Map::new();
    for (i, (field, default)) in defaults.iter().enumerate() {
        let value = default.as_u64().expect("every limit is a number") + 1;
        expected.insert(field.clone(), json!(value));
        let (name, text) = match field.strip_suffix("_ms") {
            Some(name) => (name, format!("{value}ms")),
            None => (field.as_str(), value.to_string()),
        };
        let name = if name == "queue_capacity" {
            "outbound_queue"
        } else {
            name
        };
        let flag = format!("--{}", name.replace('_', "-"));
        let var = format!("CHAT_{}", name.to_uppercase());
        assert!(help.contains(&flag), "--help lacks {flag} (for `{field}`)");
        assert!(help.contains(&var), "--help lacks {var} (for `{field}`)");
        // Half by flag, half by variable: both paths reach the engine and the transport.
        if i % 2 == 0 {
            args.extend([flag, text]);
        } else {
            env.push((var, text));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::spawn(&args, &env);
    assert_eq!(
        hello_limits(&server).await,
        expected,
        "every limit set on the command line or in the environment reaches hello.limits"
    );
    server.terminate();
}

/// The WebSocket handshake to `/ws` with the token in the cookie, from `origin`: the
/// status (101 when it upgraded).
async fn cookie_handshake(server: &Server, origin: &str) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    let cookie = format!("chat_token={}", Server::token("alice"));
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("cookie"));
    req.headers_mut()
        .insert("origin", origin.parse().expect("origin"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("handshake: {e}"),
    }
}

#[tokio::test]
async fn allowed_origins_come_from_the_flag_or_the_variable() {
    let server = Server::spawn(
        &["--store", "memory"],
        &[(
            "CHAT_ALLOWED_ORIGINS",
            "https://a.example,https://b.example",
        )],
    );
    let own = format!("http://{}", server.addr);
    for (origin, status) in [
        ("https://b.example", 101),
        ("https://a.example", 101),
        (own.as_str(), 101),
        ("https://evil.example", 403),
    ] {
        assert_eq!(cookie_handshake(&server, origin).await, status, "{origin}");
    }
    server.terminate();

    let server = Server::spawn(
        &[
            "--store",
            "memory",
            "--allowed-origin",
            "https://c.example",
            "--allowed-origin",
            "https://d.example",
        ],
        &[],
    );
    assert_eq!(cookie_handshake(&server, "https://d.example").await, 101);
    assert_eq!(cookie_handshake(&server, "https://a.example").await, 403);
    server.terminate();

    let (ok, _, err) = run(
        &["--store", "memory", "--allowed-origin", "evil.example"],
        &[("CHAT_JWT_SECRET", SECRET)],
    );
    assert!(!ok && err.contains("is not an origin"), "{err}");
}

/// An HS256 token signed with the test secret that expired `ago` seconds ago.
fn expired_token(user: &str, ago: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "exp": now - ago}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

#[test]
fn jwt_leeway_forgives_expired_tokens_up_to_its_length() {
    let unread = |server: &Server, token: &str| {
        let auth = format!("Bearer {token}");
        server
            .request("GET", "/api/v1/unread", &[("Authorization", &auth)])
            .0
    };
    let server = Server::spawn(&["--store", "memory", "--jwt-leeway", "30s"], &[]);
    assert_eq!(unread(&server, &expired_token("alice", 20)), 200);
    assert_eq!(unread(&server, &expired_token("alice", 40)), 401);
    server.terminate();
    // The default leeway is a few seconds, not 20.
    let server = Server::spawn(&["--store", "memory"], &[]);
    assert_eq!(unread(&server, &expired_token("alice", 20)), 401);
    server.terminate();
}

#[test]
fn ready_answers_while_the_store_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("chat.db"));
    let (status, body) = server.request("GET", "/api/v1/ready", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ready\""), "{body}");
    server.terminate();
}
