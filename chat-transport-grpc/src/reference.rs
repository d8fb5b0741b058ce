//! `SendMessage` and `GetMessages`: the reference chat service's two calls, with its
//! field names and shapes, on the engine's commands.
//!
//! - `room_id` is a room id, a room name, or a direct conversation's id. A name that
//!   names no room and a conversation the caller may not know give the same answer
//!   (`not found: room "<name>"` for a name; for an id, the engine's own answer, already
//!   the same for both).
//! - `user_id` is the caller or empty; anything else is `forbidden` (PERMISSION_DENIED).
//! - `offset` N maps to the seq after N (offset 0 is seq 1); `total_count` is the newest
//!   seq, so pages line up with the gap-free log.
//! - `encrypted` / `status: "sent_encrypted"` say whether the call came over TLS.

use chat_core::model::{Message, RoomRef};
use chat_core::{Command, ConversationId, Error, ErrorCode, Reply, Result};
use chrono::SecondsFormat;
use tonic::Request;

use crate::auth::Caller;
use crate::proto;
use crate::service::ChatService;

/// How the call named its conversation.
enum Named {
    Id(ConversationId),
    Room(String, ConversationId),
}

impl Named {
    fn id(&self) -> ConversationId {
        match self {
            Named::Id(id) | Named::Room(_, id) => *id,
        }
    }

    /// A name hides whether the room exists: every `not_found` reads the same.
    fn hide(&self, e: Error) -> Error {
        match self {
            Named::Room(name, _) if e.code() == ErrorCode::NotFound => missing_room(name),
            _ => e,
        }
    }
}

fn missing_room(name: &str) -> Error {
    Error::not_found(format!("room {name:?}"))
}

async fn resolve(service: &ChatService, room_id: &str) -> Result<Named> {
    if room_id.is_empty() {
        return Err(Error::invalid("`room_id` is a room id or name"));
    }
    match RoomRef::from(room_id.to_owned()) {
        RoomRef::Id(id) => Ok(Named::Id(id)),
        RoomRef::Name(name) => {
            let store = service.state.inner.engine.store();
            match store.room_by_name(&name).await? {
                Some(room) => Ok(Named::Room(name, room.id)),
                None => Err(missing_room(&name)),
            }
        }
    }
}

/// Runs a command on a named conversation, hiding what a name may not reveal.
async fn run_on(
    service: &ChatService,
    caller: &Caller,
    room_id: &str,
    command: impl FnOnce(ConversationId) -> Command,
) -> Result<Reply> {
    let named = resolve(service, room_id).await?;
    service
        .run(caller, command(named.id()))
        .await
        .map_err(|e| named.hide(e))
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(crate) async fn send_message(
    service: &ChatService,
    request: Request<proto::SendMessageRequest>,
) -> Result<proto::SendMessageResponse> {
    let caller = service.caller(&request).await?;
    let r = request.into_inner();
    if !r.user_id.is_empty() && r.user_id != caller.identity.user.as_str() {
        return Err(Error::forbidden(
            "`user_id` must be the authenticated user (or empty)",
        ));
    }
    if !r.timestamp.is_empty() {
        chrono::DateTime::parse_from_rfc3339(&r.timestamp)
            .map_err(|e| Error::invalid(format!("`timestamp` is an RFC 3339 time: {e}")))?;
    }
    if r.encrypted && !caller.tls {
        return Err(Error::invalid(
            "`encrypted: true` needs a TLS connection; this one is plaintext",
        ));
    }
    let reply = run_on(service, &caller, &r.room_id, |conversation| Command::Send {
        conversation,
        body: r.message,
        client_id: r.client_id,
        reply_to: None,
        attachments: Vec::new(),
    })
    .await?;
    let Reply::Sent { message, duplicate } = reply else {
        return Err(Error::internal("the engine answered another kind of reply"));
    };
    let Message {
        id,
        conversation,
        seq,
        sender,
        body,
        created_at,
        ..
    } = message;
    Ok(proto::SendMessageResponse {
        message_id: id.to_string(),
        room_id: r.room_id,
        user_id: sender.to_string(),
        message: body,
        timestamp: rfc3339(created_at),
        status: if caller.tls { "sent_encrypted" } else { "sent" }.to_owned(),
        encrypted: caller.tls,
        seq,
        conversation_id: conversation.to_string(),
        duplicate,
    })
}

pub(crate) async fn get_messages(
    service: &ChatService,
    request: Request<proto::GetMessagesRequest>,
) -> Result<proto::GetMessagesResponse> {
    let caller = service.caller(&request).await?;
    let r = request.into_inner();
    let limit =
        u32::try_from(r.limit).map_err(|_| Error::invalid("`limit` must not be negative"))?;
    let offset =
        u64::try_from(r.offset).map_err(|_| Error::invalid("`offset` must not be negative"))?;
    let reply = run_on(service, &caller, &r.room_id, |conversation| {
        Command::History {
            conversation,
            before: None,
            after: Some(offset),
            limit: (limit > 0).then_some(limit),
            thread: None,
        }
    })
    .await?;
    let Reply::History {
        messages, last_seq, ..
    } = reply
    else {
        return Err(Error::internal("the engine answered another kind of reply"));
    };
    let messages = messages
        .into_iter()
        .map(|view| proto::ChatMessage {
            status: chat_proto::convert::status_word(view.status).to_owned(),
            id: view.message.id.to_string(),
            user_id: view.message.sender.to_string(),
            timestamp: rfc3339(view.message.created_at),
            seq: view.message.seq,
            deleted: view.message.deleted_at.is_some(),
            message: view.message.body,
        })
        .collect();
    Ok(proto::GetMessagesResponse {
        messages,
        total_count: i32::try_from(last_seq).unwrap_or(i32::MAX),
    })
}
