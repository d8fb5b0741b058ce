//! The HTTP API under `/api/v1`: each route turns a request into a core [`Command`]
//! run with [`Engine::execute_as`](chat_core::Engine::execute_as), and answers the core
//! [`Reply`] as JSON. No rules here (invariant 9): the core decides and errors map
//! through [`status_of`](crate::error::status_of). Commands count against the caller's
//! rate (the engine's `commands_per_second` and `command_burst`, per user), as a
//! WebSocket session's do.

use axum::extract::State;
use axum::routing::{get, patch, post};
use axum::Router;
use chat_core::model::{RoomRef, Visibility};
use chat_core::{Command, ConversationId, Reply, Seq, UserId};
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, Json, Path, Query};
use crate::protocol::PROTOCOL_VERSION;
use crate::state::ChatState;

type ApiResult<T = Json<Reply>> = Result<T, ApiError>;

impl<T: Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// The routes, relative to `/api/v1`.
pub(crate) fn routes() -> Router<ChatState> {
    Router::new()
        // `/api/v1/` itself is no route; it answers like any unknown path.
        .route("/", axum::routing::any(not_found))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/conversations", get(list_conversations))
        .route("/conversations/direct", post(open_direct))
        .route(
            "/conversations/{id}/messages",
            get(history).post(send_message),
        )
        .route(
            "/conversations/{id}/messages/{seq}",
            patch(edit_message).delete(delete_message),
        )
        .route("/conversations/{id}/read", post(mark_read))
        .route("/conversations/{id}/delivered", post(mark_delivered))
        .route("/conversations/{id}/members", get(members))
        .route("/unread", get(unread))
        .route("/rooms", post(create_room))
        .route("/rooms/{room}/join", post(join_room))
        .route("/rooms/{id}/leave", post(leave_room))
        .route("/rooms/{id}/invite", post(invite))
        .route("/rooms/{id}/members", get(members))
        .route("/friends", get(list_friends))
        // `DELETE /friends/online` is the user named `online`, not the list.
        .route(
            "/friends/online",
            get(online_friends).delete(friend_remove_online),
        )
        .route("/friends/{user}", axum::routing::delete(friend_remove))
        .route("/friends/{user}/{action}", post(friend_action))
        .route("/admin/rooms/{room}/messages", post(admin_message))
        .route("/admin/stats", get(admin_stats))
        .route("/admin/users/{user}/disconnect", post(admin_disconnect))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(chat_core::ErrorCode::NotFound, "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

async fn run(state: &ChatState, caller: &Caller, command: Command) -> ApiResult {
    let user = &caller.0.user;
    if let Err(wait) = state.inner.rates.take(user) {
        return Err(ApiError::rate_limited(
            "too many commands; slow down",
            wait.0,
        ));
    }
    Ok(Json(state.inner.engine.execute_as(user, command).await?))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    protocol: u32,
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        protocol: PROTOCOL_VERSION,
    })
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
}

/// 200 when the store answers a cheap read (a room lookup by an unused name) and the bus
/// answers its own check, each within `ready_timeout`; 503 `unavailable` otherwise, naming
/// the part that failed. The part's own error goes to the log, not to the caller.
async fn ready(State(s): State<ChatState>) -> Result<Json<Ready>, ApiError> {
    let timeout = s.inner.config.ready_timeout;
    let engine = &s.inner.engine;
    let store = async { engine.store().room_by_name("").await.map(|_| ()) };
    check_ready("store", timeout, store).await?;
    check_ready("bus", timeout, engine.bus_ready()).await?;
    Ok(Json(Ready { status: "ready" }))
}

async fn check_ready(
    part: &str,
    timeout: std::time::Duration,
    check: impl std::future::Future<Output = chat_core::Result<()>>,
) -> Result<(), ApiError> {
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, part, "readiness: a part failed");
            Err(ApiError::new(
                chat_core::ErrorCode::Unavailable,
                format!("the {part} is not available"),
            ))
        }
        Err(_) => {
            tracing::warn!(?timeout, part, "readiness: a part did not answer in time");
            Err(ApiError::new(
                chat_core::ErrorCode::Unavailable,
                format!("the {part} did not answer within {timeout:?}"),
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    #[serde(default)]
    limit: Option<u32>,
}

async fn list_conversations(
    State(s): State<ChatState>,
    caller: Caller,
    Query(q): Query<LimitQuery>,
) -> ApiResult {
    run(&s, &caller, Command::ListConversations { limit: q.limit }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    user: UserId,
}

async fn open_direct(
    State(s): State<ChatState>,
    caller: Caller,
    Json(b): Json<UserBody>,
) -> ApiResult {
    run(&s, &caller, Command::OpenDirect { user: b.user }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default)]
    before: Option<Seq>,
    #[serde(default)]
    after: Option<Seq>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn history(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let command = Command::History {
        conversation,
        before: q.before,
        after: q.after,
        limit: q.limit,
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    body: String,
    #[serde(default)]
    client_id: Option<String>,
}

async fn send_message(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Json(b): Json<SendBody>,
) -> ApiResult {
    let command = Command::Send {
        conversation,
        body: b.body,
        client_id: b.client_id,
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    body: String,
}

async fn edit_message(
    State(s): State<ChatState>,
    caller: Caller,
    Path((conversation, seq)): Path<(ConversationId, Seq)>,
    Json(b): Json<EditBody>,
) -> ApiResult {
    let command = Command::Edit {
        conversation,
        seq,
        body: b.body,
    };
    run(&s, &caller, command).await
}

async fn delete_message(
    State(s): State<ChatState>,
    caller: Caller,
    Path((conversation, seq)): Path<(ConversationId, Seq)>,
) -> ApiResult {
    run(&s, &caller, Command::Delete { conversation, seq }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeqBody {
    seq: Seq,
}

async fn mark_read(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Json(b): Json<SeqBody>,
) -> ApiResult {
    let command = Command::MarkRead {
        conversation,
        seq: b.seq,
    };
    run(&s, &caller, command).await
}

async fn mark_delivered(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Json(b): Json<SeqBody>,
) -> ApiResult {
    let command = Command::MarkDelivered {
        conversation,
        seq: b.seq,
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersQuery {
    #[serde(default)]
    after: Option<UserId>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn members(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Query(q): Query<MembersQuery>,
) -> ApiResult {
    let command = Command::Members {
        conversation,
        after: q.after,
        limit: q.limit,
    };
    run(&s, &caller, command).await
}

async fn unread(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    run(&s, &caller, Command::UnreadTotal {}).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoomBody {
    name: String,
    #[serde(default)]
    visibility: Visibility,
}

async fn create_room(
    State(s): State<ChatState>,
    caller: Caller,
    Json(b): Json<CreateRoomBody>,
) -> ApiResult {
    let command = Command::CreateRoom {
        name: b.name,
        visibility: b.visibility,
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinQuery {
    #[serde(default)]
    create: bool,
}

async fn join_room(
    State(s): State<ChatState>,
    caller: Caller,
    Path(room): Path<String>,
    Query(q): Query<JoinQuery>,
) -> ApiResult {
    let command = Command::Join {
        room: RoomRef::from(room),
        create: q.create,
    };
    run(&s, &caller, command).await
}

async fn leave_room(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
) -> ApiResult {
    run(&s, &caller, Command::Leave { conversation }).await
}

async fn invite(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Json(b): Json<UserBody>,
) -> ApiResult {
    let command = Command::Invite {
        conversation,
        user: b.user,
    };
    run(&s, &caller, command).await
}

async fn list_friends(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    run(&s, &caller, Command::ListFriends {}).await
}

async fn online_friends(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    run(&s, &caller, Command::OnlineFriends {}).await
}

async fn friend_remove(
    State(s): State<ChatState>,
    caller: Caller,
    Path(user): Path<UserId>,
) -> ApiResult {
    run(&s, &caller, Command::FriendRemove { user }).await
}

async fn friend_remove_online(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    let user = UserId::new("online").map_err(ApiError::from)?;
    run(&s, &caller, Command::FriendRemove { user }).await
}

async fn friend_action(
    State(s): State<ChatState>,
    caller: Caller,
    Path((user, action)): Path<(UserId, String)>,
) -> ApiResult {
    let command = match action.as_str() {
        "request" => Command::FriendRequest { user },
        "accept" => Command::FriendAccept { user },
        "decline" => Command::FriendDecline { user },
        "cancel" => Command::FriendCancel { user },
        "block" => Command::Block { user },
        "unblock" => Command::Unblock { user },
        other => {
            return Err(ApiError::new(
                chat_core::ErrorCode::NotFound,
                format!("no friend action {other:?}"),
            ))
        }
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemBody {
    body: String,
    #[serde(default)]
    sender: Option<UserId>,
}

/// The answer to an admin system message.
#[derive(Serialize)]
struct SystemSent {
    message: chat_core::model::Message,
}

async fn admin_message(
    State(s): State<ChatState>,
    _admin: Admin,
    Path(room): Path<String>,
    Json(b): Json<SystemBody>,
) -> Result<Json<SystemSent>, ApiError> {
    let engine = &s.inner.engine;
    let conversation = match RoomRef::from(room) {
        RoomRef::Id(id) => id,
        RoomRef::Name(name) => {
            engine
                .store()
                .room_by_name(&name)
                .await?
                .ok_or_else(|| chat_core::Error::not_found(format!("room {name:?}")))?
                .id
        }
    };
    let sender = match b.sender {
        Some(u) => u,
        None => UserId::new(s.inner.config.system_sender.clone())?,
    };
    let message = engine
        .system_message(conversation, &sender, &b.body)
        .await?;
    Ok(Json(SystemSent { message }))
}

/// The answer to an admin disconnect.
#[derive(Serialize)]
struct Disconnected {
    /// Sessions closed on this node.
    disconnected: usize,
}

/// Closes every session of `user` on this node with close code 4003 (kicked). Their next
/// connection is refused only if the authenticator refuses their token (revocations).
async fn admin_disconnect(
    State(s): State<ChatState>,
    _admin: Admin,
    Path(user): Path<UserId>,
) -> Json<Disconnected> {
    let disconnected = s
        .inner
        .engine
        .disconnect_user(&user, chat_core::ports::CloseReason::Kicked)
        .await;
    Json(Disconnected { disconnected })
}

async fn admin_stats(State(s): State<ChatState>, _admin: Admin) -> Json<chat_core::engine::Stats> {
    Json(s.inner.engine.stats())
}
