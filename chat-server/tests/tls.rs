//! `chat-server` over TLS, through the real binary: `--tls-cert` and `--tls-key` (or their
//! variables) serve `wss://` and `https://`; SIGHUP swaps the certificate for new
//! handshakes while open connections go on, and a bad file keeps the old one; client
//! certificates when a client CA is given; half a configuration is refused.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_tls::rustls::pki_types::{CertificateDer, ServerName};
use chat_tls::rustls::ClientConfig;
use chat_tls::testing::{Identity, TestPki};
use chat_tls::Fingerprint;
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The server's arguments for this certificate and key.
fn tls_args<'a>(cert: &'a Path, key: &'a Path) -> Vec<&'a str> {
    vec![
        "--store",
        "memory",
        "--tls-cert",
        cert.to_str().expect("path"),
        "--tls-key",
        key.to_str().expect("path"),
    ]
}

/// Opens `wss://…/ws` as `user` with `client` and reads the hello.
async fn connect_wss(server: &Server, client: Arc<ClientConfig>, user: &str) -> Ws {
    let url = format!("wss://{}/ws?token={}", server.addr, Server::token(user));
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(client)),
        ),
    )
    .await
    .expect("handshake in time")
    .expect("wss connect");
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    ws
}

/// `GET path` over TLS: the certificate the server showed, and the raw response (or the
/// error of the handshake or of reading).
async fn https_get(
    addr: &str,
    client: Arc<ClientConfig>,
    path: &str,
) -> std::io::Result<(CertificateDer<'static>, String)> {
    let addr: SocketAddr = addr.parse().expect("address");
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::from(addr.ip());
    let mut tls = tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(client).connect(name, tcp),
    )
    .await
    .expect("handshake in time")?;
    let cert = tls.get_ref().1.peer_certificates().expect("certificate")[0].clone();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw))
        .await
        .expect("answer in time")?;
    Ok((cert, String::from_utf8_lossy(&raw).into_owned()))
}

/// Sends a message to `room` and checks the ack.
async fn send_acked(ws: &mut Ws, id: &str, room: &str, body: &str) {
    let reply = call(
        ws,
        id,
        json!({"type":"send","conversation":room,"body":body}),
    )
    .await;
    assert_eq!(reply["message"]["body"], body, "{reply}");
}

/// Sends SIGHUP and waits (10 s at most) for the log line of the reload; returns it.
fn hangup(server: &Server) -> Value {
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server
            .lines
            .recv_timeout(left)
            .expect("a log line about the reload");
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("SIGHUP"))
            {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn the_flags_serve_wss_and_https_and_the_variables_do_too() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("chat test CA");
    let id = pki.server();
    let (cert, key) = id.write(dir.path(), "server");

    let by_flags = Server::spawn(&tls_args(&cert, &key), &[]);
    let by_vars = Server::spawn(
        &["--store", "memory"],
        &[
            ("CHAT_TLS_CERT", cert.to_str().expect("path")),
            ("CHAT_TLS_KEY", key.to_str().expect("path")),
        ],
    );
    for server in [&by_flags, &by_vars] {
        let mut ws = connect_wss(server, pki.client_config(None), "alice").await;
        let room = call(&mut ws, "1", json!({"type":"create_room","name":"secure"})).await;
        let room = room["conversation"]["id"].as_str().expect("id").to_owned();
        send_acked(&mut ws, "2", &room, "over wss").await;

        let (shown, page) = https_get(&server.addr, pki.client_config(None), "/")
            .await
            .expect("https");
        assert_eq!(shown, id.cert);
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("<html"), "the demo page");
        let (_, health) = https_get(&server.addr, pki.client_config(None), "/api/v1/health")
            .await
            .expect("https");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    }
    // Plain HTTP gets nothing on the TLS port.
    let raw = by_flags.get("/api/v1/health");
    assert!(!raw.starts_with("HTTP/"), "{raw:?}");

    let logs = by_flags.terminate();
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:#?}");
}

#[tokio::test]
async fn sighup_swaps_the_certificate_for_new_handshakes_and_keeps_open_connections() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("chat test CA");
    let first = pki.server();
    let (cert, key) = first.write(dir.path(), "server");
    let server = Server::spawn(&tls_args(&cert, &key), &[]);

    let mut alice = connect_wss(&server, pki.client_config(None), "alice").await;
    let room = call(
        &mut alice,
        "1",
        json!({"type":"create_room","name":"rotation"}),
    )
    .await;
    let room = room["conversation"]["id"].as_str().expect("id").to_owned();
    send_acked(&mut alice, "2", &room, "before").await;

    // A new certificate in the same files, then SIGHUP.
    let second = pki.server();
    second.write(dir.path(), "server");
    let reloaded = hangup(&server);
    assert_eq!(reloaded["level"], "INFO", "{reloaded}");
    assert_eq!(
        reloaded["fields"]["fingerprint"],
        Fingerprint::of(&second.cert).to_string(),
        "{reloaded}"
    );
    // The open connection goes on; a new handshake (a new client, which cannot resume
    // the old session) sees the new certificate, over https and over wss.
    send_acked(&mut alice, "3", &room, "after").await;
    let (shown, _) = https_get(&server.addr, pki.client_config(None), "/api/v1/health")
        .await
        .expect("https");
    assert_eq!(
        shown, second.cert,
        "a new handshake gets the new certificate"
    );
    assert_ne!(shown, first.cert);
    let mut bob = connect_wss(&server, pki.client_config(None), "bob").await;
    call(&mut bob, "1", json!({"type":"join","room":room})).await;

    // A broken file: the reload fails, says so, and the second certificate stays.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let failed = hangup(&server);
    assert_eq!(failed["level"], "ERROR", "{failed}");
    let error = failed["fields"]["error"].as_str().expect("error");
    assert!(error.contains("server.crt"), "names the file: {error}");
    let (shown, _) = https_get(&server.addr, pki.client_config(None), "/api/v1/health")
        .await
        .expect("https after a failed reload");
    assert_eq!(shown, second.cert, "the certificate in use stays");
    // A key that does not fit (a third certificate with the second's key): refused too.
    std::fs::write(&cert, pki.server().cert_pem).expect("write");
    assert_eq!(hangup(&server)["level"], "ERROR");
    send_acked(&mut alice, "4", &room, "still here").await;
    let (shown, _) = https_get(&server.addr, pki.client_config(None), "/api/v1/health")
        .await
        .expect("https");
    assert_eq!(shown, second.cert);

    server.terminate();
}

#[tokio::test]
async fn a_client_ca_requires_client_certificates_unless_optional() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("chat test CA");
    let clients = TestPki::new("chat clients CA");
    let (cert, key) = pki.server().write(dir.path(), "server");
    let ca = clients.write_ca(dir.path(), "clients");
    let mut args = tls_args(&cert, &key);
    args.extend(["--tls-client-ca", ca.to_str().expect("path")]);
    let good: Identity = clients.client("alice");
    let stranger = TestPki::new("stranger CA").client("mallory");

    // The default with a client CA: required.
    let required = Server::spawn(&args, &[]);
    let ok = https_get(
        &required.addr,
        pki.client_config(Some(&good)),
        "/api/v1/health",
    )
    .await
    .expect("a good client certificate");
    assert!(ok.1.starts_with("HTTP/1.1 200"), "{}", ok.1);
    connect_wss(&required, pki.client_config(Some(&good)), "alice").await;
    for (what, id) in [("none", None), ("a stranger's", Some(&stranger))] {
        let r = https_get(&required.addr, pki.client_config(id), "/api/v1/health").await;
        assert!(
            r.as_ref().map_or(true, |(_, raw)| raw.is_empty()),
            "{what}: refused, got {r:?}"
        );
    }

    // Optional, by its variable: no certificate passes, a stranger's does not.
    let optional = Server::spawn(&args, &[("CHAT_TLS_CLIENT_AUTH", "optional")]);
    let (_, raw) = https_get(&optional.addr, pki.client_config(None), "/api/v1/health")
        .await
        .expect("no certificate is fine");
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let r = https_get(
        &optional.addr,
        pki.client_config(Some(&stranger)),
        "/api/v1/health",
    )
    .await;
    assert!(
        r.as_ref().map_or(true, |(_, raw)| raw.is_empty()),
        "a stranger's certificate is refused, got {r:?}"
    );
}

/// Runs the binary, which must exit by itself within 20 s: (success, stderr).
fn run_bounded(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--store", "memory"])
        .args(args)
        .env_clear()
        .env("CHAT_JWT_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-server {args:?} kept running: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    (status.success(), err)
}

#[test]
fn half_configured_tls_and_bad_files_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("chat test CA");
    let (cert, key) = pki.server().write(dir.path(), "server");
    let ca = pki.write_ca(dir.path(), "ca");
    let (cert, key, ca) = (
        cert.to_str().expect("path"),
        key.to_str().expect("path"),
        ca.to_str().expect("path"),
    );
    let (_, other_key) = pki.server().write(dir.path(), "other");
    let other_key = other_key.to_str().expect("path");
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--tls-cert", cert], &["--tls-cert", "needs --tls-key"]),
        (&["--tls-key", key], &["--tls-key", "needs --tls-cert"]),
        (&["--tls-client-ca", ca], &["need TLS", "--tls-cert"]),
        (
            &[
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--tls-client-auth",
                "required",
            ],
            &["--tls-client-auth", "needs --tls-client-ca"],
        ),
        (
            &["--tls-cert", cert, "--tls-key", other_key],
            &["loading the TLS certificate", "other.key", "server.crt"],
        ),
        (
            &["--tls-cert", "/nonexistent/cert.pem", "--tls-key", key],
            &["/nonexistent/cert.pem"],
        ),
    ];
    for (args, says) in cases {
        let (ok, err) = run_bounded(args);
        assert!(!ok, "{args:?} started");
        for s in says {
            assert!(err.contains(s), "{args:?}: {s:?} missing from {err}");
        }
    }
}
