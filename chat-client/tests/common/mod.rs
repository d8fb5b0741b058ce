//! A real chat server on 127.0.0.1:0 (chat-transport-ws over chat-core's memory store,
//! HS256 tokens) for the client to talk to.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use chat_client::chat_core::UserId;
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TokenSigner};

pub const SECRET: &[u8] = b"test secret that is long enough";
/// The bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn uid(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

/// A token for `user`, valid for ten minutes.
pub fn token(user: &str) -> String {
    TokenSigner::hs256(SECRET)
        .mint(user, None, Duration::from_secs(600))
        .expect("token")
}

pub struct Server {
    pub url: String,
    pub engine: Engine,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start() -> Server {
        Self::with(Config::default()).await
    }

    pub async fn with(config: Config) -> Server {
        let engine = Engine::builder(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
            .maintenance(None)
            .build()
            .await
            .expect("engine");
        let state = ChatState::new(
            engine.clone(),
            Arc::new(JwtAuthenticator::hs256(SECRET)),
            config,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(chat_transport_ws::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Server {
            url,
            engine,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits (polling) until the engine counts `n` connections.
    pub async fn wait_connections(&self, n: u64) {
        let engine = self.engine.clone();
        tokio::time::timeout(WAIT, async move {
            while engine.stats().connections != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {n} connections"));
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops in time")
                .expect("join")
                .expect("serve");
        }
    }
}
