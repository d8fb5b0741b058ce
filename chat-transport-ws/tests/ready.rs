//! `GET /api/v1/ready`: 200 while the store answers, 503 `unavailable` when it fails or
//! does not answer in time.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chat_core::memory::MemoryStore;
use chat_core::model::{
    Appended, Conversation, FriendAction, Friendship, HistoryPage, Member, Message, NewDirect,
    NewMessage, NewRoom, Role, Watermarks,
};
use chat_core::ports::{ConversationSummary, Store, UserProfile};
use chat_core::{ConversationId, Engine, Error, Result, Seq, UserId};
use chat_transport_ws::{ChatState, Config, JwtAuthenticator};
use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;
use tower::ServiceExt;

const UP: u8 = 0;
const FAILING: u8 = 1;
const HANGING: u8 = 2;

/// A memory store that can be made to fail every call, or to never answer.
#[derive(Default)]
struct Switch {
    inner: MemoryStore,
    mode: AtomicU8,
}

impl Switch {
    async fn gate(&self) -> Result<()> {
        match self.mode.load(Ordering::Acquire) {
            UP => Ok(()),
            FAILING => Err(Error::unavailable("the database is down")),
            _ => std::future::pending().await,
        }
    }
}

/// Each method waits for the gate, then asks the memory store.
macro_rules! gated {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        #[async_trait]
        impl Store for Switch {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                    self.gate().await?;
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

gated! {
        fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> ();
        fn user(&self, user: &UserId) -> Option<UserProfile>;
        fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> ();
        fn create_room(&self, room: NewRoom) -> Conversation;
        fn open_direct(&self, direct: NewDirect) -> (Conversation, bool);
        fn conversation(&self, id: ConversationId) -> Option<Conversation>;
        fn room_by_name(&self, name: &str) -> Option<Conversation>;
        fn delete_conversation(&self, id: ConversationId) -> ();
        fn add_member(&self, conversation: ConversationId, user: &UserId, role: Role, joined_at: DateTime<Utc>, max_members: u32) -> (Member, bool);
        fn remove_member(&self, conversation: ConversationId, user: &UserId) -> bool;
        fn member(&self, conversation: ConversationId, user: &UserId) -> Option<Member>;
        fn members(&self, conversation: ConversationId, after: Option<&UserId>, limit: u32) -> Vec<Member>;
        fn conversations_of(&self, user: &UserId, limit: u32) -> Vec<ConversationId>;
        fn list_conversations(&self, user: &UserId, limit: u32) -> Vec<ConversationSummary>;
        fn append(&self, message: NewMessage) -> Appended;
        fn history(&self, conversation: ConversationId, page: HistoryPage, limit: u32) -> Vec<Message>;
        fn thread(&self, conversation: ConversationId, root: Seq, page: HistoryPage, limit: u32) -> Vec<Message>;
        fn message(&self, conversation: ConversationId, seq: Seq) -> Option<Message>;
        fn edit_message(&self, conversation: ConversationId, seq: Seq, body: &str, at: DateTime<Utc>) -> Message;
        fn delete_message(&self, conversation: ConversationId, seq: Seq, at: DateTime<Utc>) -> Message;
        fn advance_watermarks(&self, conversation: ConversationId, user: &UserId, delivered: Option<Seq>, read: Option<Seq>) -> Watermarks;
        fn unread(&self, conversation: ConversationId, user: &UserId) -> u64;
        fn unread_total(&self, user: &UserId) -> u64;
        fn friendship(&self, x: &UserId, y: &UserId) -> Option<Friendship>;
        fn apply_friendship(&self, actor: &UserId, other: &UserId, action: FriendAction, at: DateTime<Utc>) -> Friendship;
    fn friendships(&self, user: &UserId, after: Option<&UserId>, limit: u32) -> Vec<Friendship>;
}

async fn ready(app: &axum::Router) -> (StatusCode, Value) {
    let req = Request::get("/api/v1/ready")
        .body(Body::empty())
        .expect("req");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

async fn app(config: Config) -> (axum::Router, Arc<Switch>) {
    let store = Arc::new(Switch::default());
    let engine = Engine::builder(store.clone() as Arc<dyn Store>)
        .maintenance(None)
        .build()
        .await
        .expect("engine");
    let state = ChatState::new(engine, Arc::new(JwtAuthenticator::hs256(SECRET)), config);
    (chat_transport_ws::router(state), store)
}

#[tokio::test]
async fn ready_while_the_store_answers_and_unavailable_when_it_fails() {
    let (app, store) = app(Config::default()).await;
    let (s, v) = ready(&app).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ready");

    store.mode.store(FAILING, Ordering::Release);
    let (s, v) = ready(&app).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "unavailable");
    // The driver's words stay in the log.
    assert!(
        !v["message"]
            .as_str()
            .expect("message")
            .contains("database is down"),
        "{v}"
    );
    // Health only says the process runs; it does not ask the store.
    let req = Request::get("/api/v1/health")
        .body(Body::empty())
        .expect("req");
    assert_eq!(
        app.clone().oneshot(req).await.expect("resp").status(),
        StatusCode::OK
    );

    store.mode.store(UP, Ordering::Release);
    assert_eq!(ready(&app).await.0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_store_that_does_not_answer_is_unavailable_after_the_timeout() {
    let mut config = Config::default();
    config.ready_timeout = std::time::Duration::from_millis(300);
    let (app, store) = app(config).await;
    store.mode.store(HANGING, Ordering::Release);
    let started = tokio::time::Instant::now();
    let (s, v) = ready(&app).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "unavailable");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(300)
            && waited < std::time::Duration::from_millis(400),
        "waited {waited:?}"
    );
}
