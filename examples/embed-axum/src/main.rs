//! Run: `cargo run -p example-embed-axum`, then open http://127.0.0.1:8084/login?user=alice
//!
//! The engine inside an app that already exists: the app keeps its own routes and its own
//! sign-in (a session cookie), and chat is one more `merge` on its router. The app's
//! sessions become chat identities through an `Authenticator` of its own, so no JWT is
//! involved: the chat transport reads the same cookie.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use chat_core::memory::MemoryStore;
use chat_core::ports::{Authenticator, Identity};
use chat_core::{Engine, Error, UserId};
use chat_transport_ws::{ChatState, Config};

/// The app's own sessions: cookie value → user.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, UserId>>>);

#[async_trait::async_trait]
impl Authenticator for Sessions {
    async fn authenticate(&self, token: &str) -> chat_core::Result<Identity> {
        let sessions = self
            .0
            .lock()
            .map_err(|_| Error::internal("session table poisoned"))?;
        sessions
            .get(token)
            .map(|user| Identity::new(user.clone()))
            .ok_or_else(|| Error::unauthenticated("no such session"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::default();
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    let chat = ChatState::new(
        engine,
        Arc::new(sessions.clone()),
        Config::default().token_cookie("sid"),
    );

    let app = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .with_state(sessions)
        .merge(chat_transport_ws::router(chat.clone()));

    let listener = chat_transport_ws::bind("127.0.0.1:8084".parse()?)?;
    println!("App on http://127.0.0.1:8084 — sign in at /login?user=alice; chat at ws://127.0.0.1:8084/ws");
    chat_transport_ws::serve_app(listener, app, chat, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

async fn home() -> Html<&'static str> {
    Html("<h1>My app</h1><p>Its own pages, and chat at <code>/ws</code> and <code>/api/v1</code>.</p>")
}

#[derive(serde::Deserialize)]
struct Login {
    user: String,
}

/// The app's sign-in (a stand-in for a real one): a session cookie for the user.
async fn login(State(sessions): State<Sessions>, Query(q): Query<Login>) -> impl IntoResponse {
    let Ok(user) = UserId::new(q.user) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            [(header::SET_COOKIE, String::new())],
            "bad user name".to_owned(),
        );
    };
    let sid = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(mut s) = sessions.0.lock() {
        s.insert(sid.clone(), user.clone());
    }
    (
        axum::http::StatusCode::OK,
        [(
            header::SET_COOKIE,
            format!("sid={sid}; HttpOnly; SameSite=Strict; Path=/"),
        )],
        format!("signed in as {user}; the chat WebSocket at /ws now knows you"),
    )
}
