//! The binary as a user runs it: refusals, `--help`, tokens, metrics, and a graceful
//! shutdown that loses no acknowledged message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");
const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run chat-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
fn help_documents_every_option() {
    let (ok, out, _) = run(&["--help"], &[]);
    assert!(ok);
    for option in [
        "--listen",
        "--store",
        "--pg-schema",
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

struct Server {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(db: &std::path::Path) -> Server {
        let store = format!("sqlite:{}", db.display());
        Server::spawn(&["--store", &store], &[])
    }

    /// Starts the binary on a free port with `args` and `env` (and the test secret), and
    /// waits until it logs its address.
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--shutdown-timeout",
                "5s",
            ])
            .args(args)
            .env_clear()
            .env("CHAT_JWT_SECRET", SECRET)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut said = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("the server logs its address ({e}); it said {said:#?}"));
            if let Some(a) = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["fields"]["address"].as_str().map(str::to_owned))
            {
                break a;
            }
            said.push(line);
        };
        Server { child, addr, lines }
    }

    fn token(user: &str) -> String {
        let (ok, out, err) = run(&["token", "--user", user], &[("CHAT_JWT_SECRET", SECRET)]);
        assert!(ok, "{err}");
        out.trim().to_owned()
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        body
    }

    /// One HTTP request with extra header lines: the status and the body.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.addr
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read");
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    }

    fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "a graceful shutdown exits 0, got {exit}");
        self.lines.try_iter().collect()
    }
}

impl Drop for Server {
    /// A failed assertion must not leave the server running (and holding the test's pipes).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json");
        }
    }
}

async fn call(ws: &mut Ws, id: &str, cmd: Value) -> Value {
    let mut frame = cmd;
    frame["id"] = json!(id);
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
    loop {
        let v = next_json(ws).await;
        if v["id"] == id {
            assert_eq!(v["type"], "reply", "{v}");
            return v["reply"].clone();
        }
    }
}

#[tokio::test]
async fn a_graceful_shutdown_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let server = Server::start(&db);
    let url = format!("ws://{}/ws?token={}", server.addr, Server::token("alice"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let room = call(
        &mut ws,
        "1",
        json!({"type": "create_room", "name": "durable"}),
    )
    .await;
    let conv = room["conversation"]["id"].as_str().expect("id").to_owned();
    let sent = call(
        &mut ws,
        "2",
        json!({"type": "send", "conversation": conv, "body": "keep me", "client_id": "k1"}),
    )
    .await;
    assert_eq!(sent["message"]["seq"], 1);

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
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
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

    let again = Server::start(&db);
    let url = format!("ws://{}/ws?token={}", again.addr, Server::token("alice"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("reconnect");
    next_json(&mut ws).await;
    let history = call(
        &mut ws,
        "3",
        json!({"type": "history", "conversation": conv}),
    )
    .await;
    assert_eq!(
        history["messages"][0]["body"], "keep me",
        "the acknowledged message survived: {history}"
    );
    let retry = call(
        &mut ws,
        "4",
        json!({"type": "send", "conversation": conv, "body": "keep me", "client_id": "k1"}),
    )
    .await;
    assert_eq!(
        (retry["duplicate"].clone(), retry["message"]["seq"].clone()),
        (json!(true), json!(1)),
        "a retry after the restart is not a second message"
    );
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
