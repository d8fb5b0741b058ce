//! The app over TLS (`serve_tls`, `serve_app_tls`): `wss://` and `https://` for a client
//! that trusts the CA, nothing for plain text, client certificates when required, the
//! token cookie from the `https://` origin only, and a graceful shutdown that still
//! closes with 1001.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::routing::get;
use chat_tls::rustls::pki_types::ServerName;
use chat_tls::rustls::ClientConfig;
use chat_tls::testing::{Identity, TestPki};
use chat_tls::{ClientAuth, Fingerprint, ServerTls, TlsFiles};
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TlsConnectInfo};
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A CA, a server certificate of it on disk, and the loaded TLS settings.
struct Pki {
    ca: TestPki,
    tls: ServerTls,
    _dir: tempfile::TempDir,
}

fn pki(client_ca: Option<(&TestPki, ClientAuth)>) -> Pki {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestPki::new("server CA");
    let (cert, key) = ca.server().write(dir.path(), "server");
    let mut files = TlsFiles::new(cert, key);
    if let Some((clients, auth)) = client_ca {
        files = files.client_ca(clients.write_ca(dir.path(), "clients"), auth);
    }
    let tls = ServerTls::load(files).expect("load");
    Pki { ca, tls, _dir: dir }
}

/// One HTTP/1.1 request over TLS to `addr` (`name` for SNI and the certificate check):
/// the whole response, or the error of the handshake or of the first read.
async fn https(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    name: &str,
    head: &str,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut tls = tokio::time::timeout(WAIT, TlsConnector::from(client).connect(name, tcp))
        .await
        .expect("handshake in time")?;
    tls.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
        .await
        .expect("answer in time")?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn wss_and_https_serve_a_client_that_trusts_the_ca() {
    let p = pki(None);
    let server = Server::tls(Config::default(), p.tls.config(), p.ca.client_config(None)).await;
    let mut alice = server.connect("alice").await;
    let room = alice
        .ok(json!({"type":"create_room","name":"tls","visibility":"public"}))
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let sent = alice
        .ok(json!({"type":"send","conversation":id,"body":"over wss"}))
        .await;
    assert_eq!(sent["message"]["body"], "over wss");

    let answer = https(
        server.addr,
        p.ca.client_config(None),
        "127.0.0.1",
        &get_request("/api/v1/health"),
    )
    .await
    .expect("https");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A client that trusts another CA does not get through.
    let other = TestPki::new("another CA");
    let e = https(
        server.addr,
        other.client_config(None),
        "127.0.0.1",
        &get_request("/api/v1/health"),
    )
    .await
    .expect_err("an unknown issuer");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
}

#[tokio::test]
async fn the_listener_speaks_http_1_1_only_whatever_the_config_offers() {
    let p = pki(None);
    assert!(p.tls.config().alpn_protocols.contains(&b"h2".to_vec()));
    let server = Server::tls(Config::default(), p.tls.config(), p.ca.client_config(None)).await;
    let mut both = (*p.ca.client_config(None)).clone();
    both.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(server.addr).await.expect("tcp");
    let tls = TlsConnector::from(Arc::new(both))
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    let mut h2_only = (*p.ca.client_config(None)).clone();
    h2_only.alpn_protocols = vec![b"h2".to_vec()];
    https(
        server.addr,
        Arc::new(h2_only),
        "127.0.0.1",
        &get_request("/api/v1/health"),
    )
    .await
    .expect_err("a client that speaks h2 only is refused in the handshake");
}

#[tokio::test]
async fn plain_text_on_the_tls_port_fails() {
    let p = pki(None);
    let server = Server::tls(Config::default(), p.tls.config(), p.ca.client_config(None)).await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("tcp");
    tcp.write_all(get_request("/api/v1/health").as_bytes())
        .await
        .expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("closed in time");
    assert!(!raw.starts_with(b"HTTP/"), "no HTTP answer: {raw:?}");

    let url = format!("ws://{}/ws?token={}", server.addr, token("alice"));
    let e = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("in time")
        .expect_err("ws:// on the TLS port");
    assert!(
        !matches!(e, tokio_tungstenite::tungstenite::Error::Http(_)),
        "no HTTP answer either: {e}"
    );
    assert_eq!(server.engine.stats().connections, 0);
}

#[tokio::test]
async fn required_client_auth_refuses_no_certificate_and_a_strangers_and_takes_a_good_one() {
    let clients = TestPki::new("clients CA");
    let p = pki(Some((&clients, ClientAuth::Required)));
    let good = clients.client("alice");
    let server = Server::tls(
        Config::default(),
        p.tls.config(),
        p.ca.client_config(Some(&good)),
    )
    .await;

    // The good certificate: wss and https.
    server.connect("alice").await;
    let answer = https(
        server.addr,
        p.ca.client_config(Some(&good)),
        "127.0.0.1",
        &get_request("/api/v1/health"),
    )
    .await
    .expect("https with a good certificate");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // No certificate, or one of another CA (or the server's own CA): refused, over both.
    let stranger = TestPki::new("stranger CA").client("mallory");
    let server_ca_client = p.ca.client("eve");
    let refused: [(&str, Option<&Identity>); 3] = [
        ("no certificate", None),
        ("another CA's", Some(&stranger)),
        ("the server CA's", Some(&server_ca_client)),
    ];
    for (what, id) in refused {
        let config = p.ca.client_config(id);
        let r = https(
            server.addr,
            config.clone(),
            "127.0.0.1",
            &get_request("/api/v1/health"),
        )
        .await;
        assert!(
            r.as_ref().map_or(true, String::is_empty),
            "{what}: refused over https, got {r:?}"
        );
        let req = server.url("/ws").into_client_request().expect("req");
        let r = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_tls_with_config(
                req,
                None,
                false,
                Some(tokio_tungstenite::Connector::Rustls(config)),
            ),
        )
        .await
        .expect("in time");
        assert!(r.is_err(), "{what}: refused over wss");
    }
    assert_eq!(server.engine.stats().connections, 0);
}

#[tokio::test]
async fn a_request_knows_its_tls_connection() {
    let clients = TestPki::new("clients CA");
    let p = pki(Some((&clients, ClientAuth::Optional)));
    let engine = engine(Default::default()).await;
    let state = ChatState::new(
        engine,
        Arc::new(JwtAuthenticator::hs256(SECRET)),
        Config::default(),
    );
    let app = axum::Router::new()
        .route(
            "/whoami",
            get(
                |ConnectInfo(info): ConnectInfo<TlsConnectInfo>| async move {
                    format!(
                        "sni={} client={} peer={}",
                        info.server_name.as_deref().unwrap_or("-"),
                        info.client_certificate
                            .as_ref()
                            .map_or("-".to_owned(), |c| Fingerprint::of(c).to_string()),
                        info.remote_addr.ip(),
                    )
                },
            ),
        )
        .merge(chat_transport_ws::router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(chat_transport_ws::serve_app_tls(
        listener,
        app,
        state,
        p.tls.config(),
        std::future::pending(),
    ));

    let good = clients.client("alice");
    let answer = https(
        addr,
        p.ca.client_config(Some(&good)),
        "localhost",
        &get_request("/whoami"),
    )
    .await
    .expect("https");
    let expected = format!(
        "sni=localhost client={} peer=127.0.0.1",
        Fingerprint::of(&good.cert)
    );
    assert!(answer.ends_with(&expected), "{answer}");

    let answer = https(
        addr,
        p.ca.client_config(None),
        "127.0.0.1",
        &get_request("/whoami"),
    )
    .await
    .expect("https");
    assert!(
        answer.ends_with("sni=- client=- peer=127.0.0.1"),
        "{answer}"
    );
}

#[tokio::test]
async fn over_tls_the_token_cookie_counts_from_the_https_origin_only() {
    let p = pki(None);
    let server = Server::tls(Config::default(), p.tls.config(), p.ca.client_config(None)).await;
    let attempt = |origin: String| {
        let mut req = server.url("/ws").into_client_request().expect("req");
        req.headers_mut().insert(
            "cookie",
            format!("chat_token={}", token("alice"))
                .parse()
                .expect("cookie"),
        );
        req.headers_mut()
            .insert("origin", origin.parse().expect("origin"));
        server.handshake(req)
    };
    attempt(format!("https://{}", server.addr))
        .await
        .expect("the server's own https origin upgrades");
    match attempt(format!("http://{}", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
        }
        other => panic!("an http:// page on the same host and port is refused: {other:?}"),
    }
}

#[tokio::test]
async fn graceful_shutdown_over_tls_flushes_and_closes_with_1001() {
    let p = pki(None);
    let mut server = Server::tls(Config::default(), p.tls.config(), p.ca.client_config(None)).await;
    let mut alice = server.connect("alice").await;
    let room = alice
        .ok(json!({"type":"create_room","name":"bye","visibility":"public"}))
        .await;
    let id = room["conversation"]["id"].as_str().expect("id").to_owned();
    let mut bob = server.connect("bob").await;
    bob.ok(json!({"type":"join","room":id})).await;
    alice
        .ok(json!({"type":"send","conversation":id,"body":"last words"}))
        .await;
    server.stop().await;
    assert_eq!(server.engine.stats().connections, 0);
    let m = bob.event("message").await;
    assert_eq!(m["message"]["body"], "last words");
    assert_eq!(bob.close_code().await, Some(1001));
    assert_eq!(alice.close_code().await, Some(1001));
    // And the port is closed.
    assert!(TcpStream::connect(server.addr).await.is_err());
}
