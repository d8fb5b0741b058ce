//! `wss://`: the client connects through TLS to a server whose certificate comes from a
//! private CA given in `Config::tls`, and refuses the same server without it.

mod common;

use std::sync::Arc;

use chat_client::chat_core::Event;
use chat_client::{Client, ClientError, ClientEvent, Config};
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::Engine;
use chat_tls::testing::TestPki;
use chat_tls::{ServerTls, TlsFiles};
use chat_transport_ws::{ChatState, JwtAuthenticator};
use common::{token, SECRET, WAIT};

#[tokio::test]
async fn wss_with_a_private_ca_and_not_without_it() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestPki::new("server CA");
    let (cert, key) = ca.server().write(dir.path(), "server");
    let tls = ServerTls::load(TlsFiles::new(cert, key)).expect("load");
    let engine = Engine::builder(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .maintenance(None)
        .build()
        .await
        .expect("engine");
    let state = ChatState::new(
        engine,
        Arc::new(JwtAuthenticator::hs256(SECRET)),
        chat_transport_ws::Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "wss://localhost:{}/ws",
        listener.local_addr().expect("addr").port()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chat_transport_ws::serve_tls(
        listener,
        state,
        tls.config(),
        async {
            let _ = stopped.await;
        },
    ));

    // Trusting the CA: a session over wss, whose own message comes back as an event.
    let mut config = Config::new(url.clone());
    config.tls = Some(ca.client_config(None));
    let (client, mut events) = tokio::time::timeout(WAIT, Client::connect(config, token("alice")))
        .await
        .expect("in time")
        .expect("connects over wss");
    let room = client.join_or_create("tls").await.expect("join");
    let sent = client.send(room.id, "over wss").await.expect("send");
    let echoed = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let ClientEvent::Event(Event::Message { message }) = event {
                return message;
            }
        }
        panic!("the events ended");
    })
    .await
    .expect("the message in time");
    assert_eq!(
        (echoed.seq, echoed.body.as_str()),
        (sent.message.seq, "over wss")
    );
    client.close();

    // Without it (the platform's roots only): the first connection fails, as a
    // certificate error, and the client does not retry.
    let refused = tokio::time::timeout(WAIT, Client::connect(url.as_str(), token("alice")))
        .await
        .expect("in time");
    match refused {
        Err(ClientError::Connect(why)) => {
            assert!(why.to_lowercase().contains("certificate"), "{why}")
        }
        other => panic!("an untrusted certificate is refused, got {other:?}"),
    }

    let _ = stop.send(());
    let _ = server.await;
}
