//! The HTTP API under `/api/v1`: each route turns a request into a core [`Command`]
//! run with [`Engine::execute_as`](chat_core::Engine::execute_as), and answers the core
//! [`Reply`] as JSON. No rules here (invariant 9): the core decides and errors map
//! through [`status_of`](crate::error::status_of). Commands count against the caller's
//! rate (the engine's `commands_per_second` and `command_burst`, per user), as a
//! WebSocket session's do.

use axum::extract::State;
use axum::routing::{get, patch, post};
use axum::Router;
use chat_core::error::ErrorBody;
use chat_core::model::{Attachment, RoomRef, Visibility};
use chat_core::{Command, ConversationId, Reply, Seq, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, Json, Path, Query};
use crate::openapi::{AdminErrors, BodyErrors, CommandErrors, StoreErrors};
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
        .route("/openapi.json", get(openapi_json))
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
        .route("/conversations/{id}/members", get(conversation_members))
        .route("/unread", get(unread))
        .route("/rooms", post(create_room))
        .route("/rooms/{room}/join", post(join_room))
        .route("/rooms/{id}/leave", post(leave_room))
        .route("/rooms/{id}/invite", post(invite))
        .route("/rooms/{id}/members", get(room_members))
        .route("/friends", get(list_friends))
        // `DELETE /friends/online` is the user named `online`, not the list.
        .route(
            "/friends/online",
            get(online_friends).delete(friend_remove_online),
        )
        .route("/friends/{user}", axum::routing::delete(friend_remove))
        .route("/friends/{user}/request", post(friend_request))
        .route("/friends/{user}/accept", post(friend_accept))
        .route("/friends/{user}/decline", post(friend_decline))
        .route("/friends/{user}/cancel", post(friend_cancel))
        .route("/friends/{user}/block", post(friend_block))
        .route("/friends/{user}/unblock", post(friend_unblock))
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

/// The answer to `/health`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The protocol version the WebSocket speaks.
    protocol: u32,
}

/// The process answers HTTP; reads nothing.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The process answers.", body = Health))
)]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        protocol: PROTOCOL_VERSION,
    })
}

/// The answer to `/ready`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ready {
    /// Always `ready`.
    status: &'static str,
}

/// 200 when the store answers a cheap read (a room lookup by an unused name) and the bus
/// answers its own check, each within `ready_timeout`; 503 `unavailable` otherwise, naming
/// the part that failed. The part's own error goes to the log, not to the caller.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "This node can serve.", body = Ready),
        (status = 503, description = "`unavailable`: the store or the bus failed or did not \
            answer within `ready_timeout`.", body = ErrorBody),
    )
)]
pub(crate) async fn ready(State(s): State<ChatState>) -> Result<Json<Ready>, ApiError> {
    let timeout = s.inner.config.ready_timeout;
    let engine = &s.inner.engine;
    let store = async { engine.store().room_by_name("").await.map(|_| ()) };
    check_ready("store", timeout, store).await?;
    check_ready("bus", timeout, engine.bus_ready()).await?;
    Ok(Json(Ready { status: "ready" }))
}

/// This document: OpenAPI 3.1, generated from the code. Public: no token.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json(State(s): State<ChatState>) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document(&s.inner.config))
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitQuery {
    /// The token, when it comes as the `token` query parameter: read by authentication,
    /// accepted here so that the query's own fields stay strict.
    #[serde(default, rename = "token")]
    #[param(ignore)]
    _token: Option<serde::de::IgnoredAny>,
    /// At most this many (default 50).
    #[serde(default)]
    limit: Option<u32>,
}

/// My conversations, with unread counts and last messages (`list_conversations`).
#[utoipa::path(
    get,
    path = "/conversations",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(LimitQuery),
    responses((status = 200, description = "The reply `conversations`.", body = Reply), CommandErrors)
)]
pub(crate) async fn list_conversations(
    State(s): State<ChatState>,
    caller: Caller,
    Query(q): Query<LimitQuery>,
) -> ApiResult {
    run(&s, &caller, Command::ListConversations { limit: q.limit }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserBody {
    /// The user.
    user: UserId,
}

/// Opens (or gets) the direct conversation with a friend (`open_direct`).
#[utoipa::path(
    post,
    path = "/conversations/direct",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    request_body = UserBody,
    responses((status = 200, description = "The reply `direct`.", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn open_direct(
    State(s): State<ChatState>,
    caller: Caller,
    Json(b): Json<UserBody>,
) -> ApiResult {
    run(&s, &caller, Command::OpenDirect { user: b.user }).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// The token, when it comes as the `token` query parameter: read by authentication,
    /// accepted here so that the query's own fields stay strict.
    #[serde(default, rename = "token")]
    #[param(ignore)]
    _token: Option<serde::de::IgnoredAny>,
    /// Messages before this seq (the newest when neither bound is given).
    #[serde(default)]
    before: Option<Seq>,
    /// Messages after this seq.
    #[serde(default)]
    after: Option<Seq>,
    /// Page size (default 50, at most 100 by default).
    #[serde(default)]
    limit: Option<u32>,
    /// Read one thread: the root at this seq and its replies, paged the same way.
    #[serde(default)]
    thread: Option<Seq>,
}

/// A page of history (`history`).
#[utoipa::path(
    get,
    path = "/conversations/{id}/messages",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID)."), HistoryQuery),
    responses((status = 200, description = "The reply `history`.", body = Reply), CommandErrors)
)]
pub(crate) async fn history(
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
        thread: q.thread,
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    /// The text.
    body: String,
    /// An idempotency key: a retry with the same key returns the original message.
    #[serde(default)]
    client_id: Option<String>,
    /// The seq of the message this one replies to, in the same conversation.
    #[serde(default)]
    reply_to: Option<Seq>,
    /// Files attached by reference (at most 10 by default); with one, `body` may be empty.
    #[serde(default)]
    attachments: Vec<Attachment>,
}

/// Sends a message (`send`).
#[utoipa::path(
    post,
    path = "/conversations/{id}/messages",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID).")),
    request_body = SendBody,
    responses((status = 200, description = "The reply `sent`.", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn send_message(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Json(b): Json<SendBody>,
) -> ApiResult {
    let command = Command::Send {
        conversation,
        body: b.body,
        client_id: b.client_id,
        reply_to: b.reply_to,
        attachments: b.attachments,
    };
    run(&s, &caller, command).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditBody {
    /// The new text.
    body: String,
}

/// Edits one of my messages (`edit`).
#[utoipa::path(
    patch,
    path = "/conversations/{id}/messages/{seq}",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID)."), ("seq" = Seq, Path, description = "A message seq.")),
    request_body = EditBody,
    responses((status = 200, description = "The reply `message`.", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn edit_message(
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

/// Deletes one of my messages (`delete`).
#[utoipa::path(
    delete,
    path = "/conversations/{id}/messages/{seq}",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID)."), ("seq" = Seq, Path, description = "A message seq.")),
    responses((status = 200, description = "The reply `message` (the tombstone).", body = Reply), CommandErrors)
)]
pub(crate) async fn delete_message(
    State(s): State<ChatState>,
    caller: Caller,
    Path((conversation, seq)): Path<(ConversationId, Seq)>,
) -> ApiResult {
    run(&s, &caller, Command::Delete { conversation, seq }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeqBody {
    /// Up to which seq.
    seq: Seq,
}

/// Everything up to `seq` was read (`mark_read`).
#[utoipa::path(
    post,
    path = "/conversations/{id}/read",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID).")),
    request_body = SeqBody,
    responses((status = 200, description = "The reply `marks`.", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn mark_read(
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

/// Everything up to `seq` reached this device (`mark_delivered`).
#[utoipa::path(
    post,
    path = "/conversations/{id}/delivered",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID).")),
    request_body = SeqBody,
    responses((status = 200, description = "The reply `marks`.", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn mark_delivered(
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembersQuery {
    /// The token, when it comes as the `token` query parameter: read by authentication,
    /// accepted here so that the query's own fields stay strict.
    #[serde(default, rename = "token")]
    #[param(ignore)]
    _token: Option<serde::de::IgnoredAny>,
    /// Members after this user id (paging).
    #[serde(default)]
    after: Option<UserId>,
    /// At most this many (default 100).
    #[serde(default)]
    limit: Option<u32>,
}

/// Members of a conversation I belong to (`members`).
#[utoipa::path(
    get,
    path = "/conversations/{id}/members",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A conversation id (UUID)."), MembersQuery),
    responses((status = 200, description = "The reply `members`.", body = Reply), CommandErrors)
)]
pub(crate) async fn conversation_members(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Query(q): Query<MembersQuery>,
) -> ApiResult {
    members(&s, &caller, conversation, q).await
}

/// Members of a room I belong to (`members`).
#[utoipa::path(
    get,
    path = "/rooms/{id}/members",
    tag = "rooms",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A room id (UUID)."), MembersQuery),
    responses((status = 200, description = "The reply `members`.", body = Reply), CommandErrors)
)]
pub(crate) async fn room_members(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
    Query(q): Query<MembersQuery>,
) -> ApiResult {
    members(&s, &caller, conversation, q).await
}

async fn members(
    s: &ChatState,
    caller: &Caller,
    conversation: ConversationId,
    q: MembersQuery,
) -> ApiResult {
    let command = Command::Members {
        conversation,
        after: q.after,
        limit: q.limit,
    };
    run(s, caller, command).await
}

/// My unread total (`unread_total`).
#[utoipa::path(
    get,
    path = "/unread",
    tag = "conversations",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    responses((status = 200, description = "The reply `unread`.", body = Reply), CommandErrors)
)]
pub(crate) async fn unread(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    run(&s, &caller, Command::UnreadTotal {}).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRoomBody {
    /// Unique name.
    name: String,
    /// Public (default) or private.
    #[serde(default)]
    visibility: Visibility,
}

/// Creates a room (`create_room`).
#[utoipa::path(
    post,
    path = "/rooms",
    tag = "rooms",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    request_body = CreateRoomBody,
    responses((status = 200, description = "The reply `room`.", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn create_room(
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinQuery {
    /// The token, when it comes as the `token` query parameter: read by authentication,
    /// accepted here so that the query's own fields stay strict.
    #[serde(default, rename = "token")]
    #[param(ignore)]
    _token: Option<serde::de::IgnoredAny>,
    /// Create a public room of that name when none exists.
    #[serde(default)]
    create: bool,
}

/// Joins a room (`join`).
#[utoipa::path(
    post,
    path = "/rooms/{room}/join",
    tag = "rooms",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("room" = String, Path, description = "A room id (UUID) or name."), JoinQuery),
    responses((status = 200, description = "The reply `room`.", body = Reply), CommandErrors)
)]
pub(crate) async fn join_room(
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

/// Leaves a room (`leave`).
#[utoipa::path(
    post,
    path = "/rooms/{id}/leave",
    tag = "rooms",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A room id (UUID).")),
    responses((status = 200, description = "The reply `ok`.", body = Reply), CommandErrors)
)]
pub(crate) async fn leave_room(
    State(s): State<ChatState>,
    caller: Caller,
    Path(conversation): Path<ConversationId>,
) -> ApiResult {
    run(&s, &caller, Command::Leave { conversation }).await
}

/// Adds a user to a room (`invite`).
#[utoipa::path(
    post,
    path = "/rooms/{id}/invite",
    tag = "rooms",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("id" = ConversationId, Path, description = "A room id (UUID).")),
    request_body = UserBody,
    responses((status = 200, description = "The reply `room` (the room, `joined: false`).", body = Reply), BodyErrors, CommandErrors)
)]
pub(crate) async fn invite(
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

/// My friends, requests and blocks (`list_friends`).
#[utoipa::path(
    get,
    path = "/friends",
    tag = "friends",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    responses((status = 200, description = "The reply `friends`.", body = Reply), CommandErrors)
)]
pub(crate) async fn list_friends(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    run(&s, &caller, Command::ListFriends {}).await
}

/// Which of my friends are online (`online_friends`).
#[utoipa::path(
    get,
    path = "/friends/online",
    tag = "friends",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    responses((status = 200, description = "The reply `online`.", body = Reply), CommandErrors)
)]
pub(crate) async fn online_friends(State(s): State<ChatState>, caller: Caller) -> ApiResult {
    run(&s, &caller, Command::OnlineFriends {}).await
}

/// Ends a friendship (`friend_remove`).
#[utoipa::path(
    delete,
    path = "/friends/{user}",
    tag = "friends",
    security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
    params(("user" = UserId, Path, description = "A user id.")),
    responses((status = 200, description = "The reply `friend`.", body = Reply), CommandErrors)
)]
pub(crate) async fn friend_remove(
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

/// A `POST /friends/{user}/<action>` route: one friend command on `user`, answered with
/// the reply `friend`.
macro_rules! friend_action {
    ($($(#[$doc:meta])* $name:ident => $path:literal, $command:ident;)*) => {$(
        $(#[$doc])*
        #[utoipa::path(
            post,
            path = $path,
            tag = "friends",
            security(("bearer" = []), ("token_query" = []), ("token_cookie" = [])),
            params(("user" = UserId, Path, description = "A user id.")),
            responses((status = 200, description = "The reply `friend`.", body = Reply), CommandErrors)
        )]
        pub(crate) async fn $name(
            State(s): State<ChatState>,
            caller: Caller,
            Path(user): Path<UserId>,
        ) -> ApiResult {
            run(&s, &caller, Command::$command { user }).await
        }
    )*};
}

friend_action! {
    /// Asks a user to be friends (`friend_request`).
    friend_request => "/friends/{user}/request", FriendRequest;
    /// Accepts a user's friend request (`friend_accept`).
    friend_accept => "/friends/{user}/accept", FriendAccept;
    /// Declines a user's friend request (`friend_decline`).
    friend_decline => "/friends/{user}/decline", FriendDecline;
    /// Withdraws my friend request (`friend_cancel`).
    friend_cancel => "/friends/{user}/cancel", FriendCancel;
    /// Blocks a user (`block`).
    friend_block => "/friends/{user}/block", Block;
    /// Lifts my block (`unblock`).
    friend_unblock => "/friends/{user}/unblock", Unblock;
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SystemBody {
    /// The text.
    body: String,
    /// Who it is from (default: the configured system sender, `system`).
    #[serde(default)]
    sender: Option<UserId>,
}

/// The answer to an admin system message.
#[derive(Serialize, ToSchema)]
pub(crate) struct SystemSent {
    /// The system message, with its seq.
    message: chat_core::model::Message,
}

/// Posts a system message into a room; `sender` defaults to the configured system sender.
#[utoipa::path(
    post,
    path = "/admin/rooms/{room}/messages",
    tag = "admin",
    security(("admin_key" = [])),
    params(("room" = String, Path, description = "A room id (UUID) or name.")),
    request_body = SystemBody,
    responses(
        (status = 200, description = "The message.", body = SystemSent),
        (status = 400, description = "`invalid`: a bad sender or body.", body = ErrorBody),
        AdminErrors,
        BodyErrors,
        StoreErrors,
    )
)]
pub(crate) async fn admin_message(
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
#[derive(Serialize, ToSchema)]
pub(crate) struct Disconnected {
    /// Sessions closed on this node.
    disconnected: usize,
}

/// Closes every session of `user` on this node with close code 4003 (kicked). Their next
/// connection is refused only if the authenticator refuses their token (revocations).
#[utoipa::path(
    post,
    path = "/admin/users/{user}/disconnect",
    tag = "admin",
    security(("admin_key" = [])),
    params(("user" = UserId, Path, description = "A user id.")),
    responses(
        (status = 200, description = "The sessions closed on this node (close code 4003).", body = Disconnected),
        (status = 400, description = "`invalid`: a bad user id.", body = ErrorBody),
        AdminErrors,
    )
)]
pub(crate) async fn admin_disconnect(
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

/// This node's stats: the core's `Stats` as it is (new fields may appear).
#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "This node's stats.", body = chat_core::engine::Stats),
        AdminErrors,
    )
)]
pub(crate) async fn admin_stats(
    State(s): State<ChatState>,
    _admin: Admin,
) -> Json<chat_core::engine::Stats> {
    Json(s.inner.engine.stats())
}
