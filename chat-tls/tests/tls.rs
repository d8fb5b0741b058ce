//! The config from PEM files, its reload, and the listener, against a real rustls client
//! on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chat_tls::rustls::pki_types::{CertificateDer, ServerName};
use chat_tls::rustls::ClientConfig;
use chat_tls::testing::{Identity, TestPki};
use chat_tls::{ClientAuth, Error, Fingerprint, ListenerConfig, ServerTls, TlsFiles, TlsListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(5);

/// Serves `tls` on 127.0.0.1:0: every connection echoes what it reads.
async fn echo_server(
    config: Arc<chat_tls::rustls::ServerConfig>,
    settings: ListenerConfig,
) -> std::net::SocketAddr {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut listener = TlsListener::new(tcp, config, settings).expect("listener");
    let addr = listener.local_addr();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// Writes `ping` and reads it back.
async fn echo(stream: &mut TlsStream<TcpStream>) -> std::io::Result<()> {
    stream.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("echo in time")?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

/// The certificate the server showed.
fn served(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("certificates")[0]
        .clone()
}

fn load(dir: &Path, id: &Identity) -> ServerTls {
    let (cert, key) = id.write(dir, "server");
    ServerTls::load(TlsFiles::new(cert, key)).expect("load")
}

#[tokio::test]
async fn load_refuses_missing_unparsable_and_mismatched_files_and_names_them() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let (cert, key) = pki.server().write(dir.path(), "a");
    let (other_cert, _) = pki.server().write(dir.path(), "b");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");

    let missing = dir.path().join("missing.pem");
    let e = ServerTls::load(TlsFiles::new(&missing, &key)).expect_err("missing cert");
    assert!(
        matches!(
            e,
            Error::Read {
                what: "certificate chain",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");

    let e = ServerTls::load(TlsFiles::new(&garbage, &key)).expect_err("garbage cert");
    assert!(
        matches!(
            e,
            Error::Missing {
                what: "certificate chain",
                ..
            }
        ),
        "{e:?}"
    );

    // A certificate where the key should be: no private key in it.
    let e = ServerTls::load(TlsFiles::new(&cert, &cert)).expect_err("no key");
    assert!(
        matches!(
            e,
            Error::Missing {
                what: "private key",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("a.crt"), "{e}");

    // The key of another certificate.
    let e = ServerTls::load(TlsFiles::new(&other_cert, &key)).expect_err("mismatch");
    assert!(matches!(e, Error::Key { .. }), "{e:?}");
    assert!(
        e.to_string().contains("b.crt") && e.to_string().contains("a.key"),
        "{e}"
    );

    let e = ServerTls::load(TlsFiles::new(&cert, &key).client_ca(&garbage, ClientAuth::Required))
        .expect_err("garbage CA");
    assert!(
        matches!(
            e,
            Error::Missing {
                what: "client CA",
                ..
            }
        ),
        "{e:?}"
    );

    let tls = ServerTls::load(TlsFiles::new(&cert, &key)).expect("the good pair loads");
    let config = tls.config();
    let alpn: Vec<&[u8]> = config.alpn_protocols.iter().map(Vec::as_slice).collect();
    assert_eq!(alpn, chat_tls::ALPN.to_vec());
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_handshakes_and_keeps_open_connections() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let first = pki.server();
    let tls = load(dir.path(), &first);
    assert_eq!(tls.fingerprint(), Fingerprint::of(&first.cert));
    let addr = echo_server(tls.config(), ListenerConfig::default()).await;
    let client = pki.client_config(None);

    let mut open = connect(addr, client.clone()).await.expect("connect");
    echo(&mut open).await.expect("echo");
    assert_eq!(served(&open), first.cert);

    let second = pki.server();
    second.write(dir.path(), "server");
    let fingerprint = tls.reload().expect("reload");
    assert_eq!(fingerprint, Fingerprint::of(&second.cert));
    assert_ne!(fingerprint, Fingerprint::of(&first.cert));
    assert_eq!(tls.fingerprint(), fingerprint);

    // A fresh client config: one that resumed the first session would be shown no
    // certificate at all (and keep the first one's in its session).
    let mut new = connect(addr, pki.client_config(None))
        .await
        .expect("connect after reload");
    echo(&mut new).await.expect("echo");
    assert_eq!(
        served(&new),
        second.cert,
        "a new handshake sees the new certificate"
    );
    echo(&mut open)
        .await
        .expect("the open connection still works");
}

#[tokio::test]
async fn a_failed_reload_keeps_the_certificate_in_use() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let first = pki.server();
    let tls = load(dir.path(), &first);
    let addr = echo_server(tls.config(), ListenerConfig::default()).await;
    let client = pki.client_config(None);

    // Half-written files: a new certificate with the old key.
    let (cert, _) = first.write(dir.path(), "server");
    std::fs::write(&cert, pki.server().cert_pem).expect("write");
    let e = tls.reload().expect_err("the key does not fit");
    assert!(matches!(e, Error::Key { .. }), "{e:?}");
    // Garbage.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let e = tls.reload().expect_err("bad PEM");
    assert!(matches!(e, Error::Pem { .. }), "{e:?}");

    assert_eq!(tls.fingerprint(), Fingerprint::of(&first.cert));
    let mut s = connect(addr, client).await.expect("connect");
    echo(&mut s).await.expect("echo");
    assert_eq!(served(&s), first.cert);
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout_and_holds_up_nobody() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let tls = load(dir.path(), &pki.server());
    let settings = ListenerConfig::default().handshake_timeout(Duration::from_millis(300));
    let addr = echo_server(tls.config(), settings).await;

    let mut silent = TcpStream::connect(addr).await.expect("tcp");
    let started = std::time::Instant::now();
    // Meanwhile a real client gets through.
    let mut s = connect(addr, pki.client_config(None))
        .await
        .expect("connect");
    echo(&mut s).await.expect("echo");
    // The silent one is closed by the server, soon after the time limit.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("the server closes a silent connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the limit"
    );
}

#[tokio::test]
async fn plain_text_on_the_tls_port_gets_no_answer_and_is_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let tls = load(dir.path(), &pki.server());
    let addr = echo_server(tls.config(), ListenerConfig::default()).await;
    let mut tcp = TcpStream::connect(addr).await.expect("tcp");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .ok();
    assert!(!got.starts_with(b"HTTP/"), "no HTTP answer: {got:?}");
}

#[tokio::test]
async fn alpn_offers_h2_and_http_1_1() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let tls = load(dir.path(), &pki.server());
    let addr = echo_server(tls.config(), ListenerConfig::default()).await;
    for proto in chat_tls::ALPN {
        let mut config = (*pki.client_config(None)).clone();
        config.alpn_protocols = vec![proto.to_vec()];
        let s = connect(addr, Arc::new(config)).await.expect("connect");
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(proto));
    }
}

#[tokio::test]
async fn optional_client_auth_lets_a_client_without_a_certificate_in_but_not_a_stranger() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::new("ca");
    let clients = TestPki::new("clients");
    let stranger = TestPki::new("stranger");
    let (cert, key) = pki.server().write(dir.path(), "server");
    let ca = clients.write_ca(dir.path(), "clients");
    let tls = ServerTls::load(TlsFiles::new(cert, key).client_ca(ca, ClientAuth::Optional))
        .expect("load");
    let addr = echo_server(tls.config(), ListenerConfig::default()).await;

    let mut anonymous = connect(addr, pki.client_config(None))
        .await
        .expect("connect");
    echo(&mut anonymous).await.expect("no certificate is fine");

    let good = clients.client("alice");
    let mut known = connect(addr, pki.client_config(Some(&good)))
        .await
        .expect("connect");
    echo(&mut known)
        .await
        .expect("a certificate of the client CA is fine");

    let bad = stranger.client("mallory");
    let refused = match connect(addr, pki.client_config(Some(&bad))).await {
        Err(_) => true,
        // TLS 1.3: the client learns of the refusal on its first read.
        Ok(mut s) => echo(&mut s).await.is_err(),
    };
    assert!(refused, "a certificate of another CA is refused");
}
