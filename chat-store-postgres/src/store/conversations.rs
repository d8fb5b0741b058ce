//! Conversations: creating rooms and direct conversations (each with its first members,
//! in one statement), finding them, deleting them with everything in them; and the
//! existence check the other sections use.

use chat_core::model::{Conversation, ConversationKind, NewDirect, NewRoom};
use chat_core::{ConversationId, Error as CoreError, ErrorCode, Result as CoreResult, UserId};
use deadpool_postgres::Object;

use crate::error::map_pg;
use crate::rows::{self, pg_time};
use crate::sql;

/// The error for a conversation that does not exist.
pub(super) fn missing(id: ConversationId) -> CoreError {
    CoreError::not_found(format!("conversation {id}"))
}

/// `not_found` unless the conversation exists.
pub(super) async fn require(c: &Object, id: ConversationId) -> CoreResult<()> {
    let stmt = c
        .prepare_cached(sql::CONVERSATION_EXISTS)
        .await
        .map_err(map_pg)?;
    match c.query_opt(&stmt, &[&id.0]).await.map_err(map_pg)? {
        Some(_) => Ok(()),
        None => Err(missing(id)),
    }
}

/// Creates a room with its creator as owner; `conflict` when the name or id is taken.
pub(super) async fn create_room(c: &Object, room: NewRoom) -> CoreResult<Conversation> {
    let stmt = c.prepare_cached(sql::CREATE_ROOM).await.map_err(map_pg)?;
    c.execute(
        &stmt,
        &[
            &room.id.0,
            &room.name,
            &room.visibility.as_str(),
            &room.created_by.as_str(),
            &room.created_at,
        ],
    )
    .await
    .map_err(|e| match map_pg(e) {
        e if e.code() == ErrorCode::Conflict => CoreError::conflict(format!(
            "a room named {:?} or conversation {} exists",
            room.name, room.id
        ))
        .with_source(e),
        other => other,
    })?;
    Ok(Conversation {
        id: room.id,
        kind: ConversationKind::Room {
            name: room.name,
            visibility: room.visibility,
        },
        created_by: room.created_by,
        created_at: pg_time(room.created_at),
        last_seq: 0,
    })
}

/// The pair's direct conversation, created with both as members when missing; true when
/// created. `(a, b)` is the pair in [`direct_pair`](chat_core::model::direct_pair) order.
pub(super) async fn open_direct(
    c: &Object,
    d: NewDirect,
    (a, b): (UserId, UserId),
) -> CoreResult<(Conversation, bool)> {
    let find = c
        .prepare_cached(sql::DIRECT_BY_PAIR)
        .await
        .map_err(map_pg)?;
    if let Some(row) = c
        .query_opt(&find, &[&a.as_str(), &b.as_str()])
        .await
        .map_err(map_pg)?
    {
        return Ok((rows::conversation(&row)?, false));
    }
    let create = c.prepare_cached(sql::CREATE_DIRECT).await.map_err(map_pg)?;
    let row = c
        .query_one(
            &create,
            &[
                &d.id.0,
                &a.as_str(),
                &b.as_str(),
                &d.user.as_str(),
                &d.created_at,
            ],
        )
        .await
        .map_err(map_pg)?;
    if rows::count(&row, "created")? == 1 {
        return Ok((
            Conversation {
                id: d.id,
                kind: ConversationKind::Direct { a, b },
                created_by: d.user,
                created_at: pg_time(d.created_at),
                last_seq: 0,
            },
            true,
        ));
    }
    // The pair's conversation exists (the insert lost a race), unless it was deleted in
    // between.
    let row = c
        .query_opt(&find, &[&a.as_str(), &b.as_str()])
        .await
        .map_err(map_pg)?
        .ok_or_else(|| CoreError::conflict("the direct conversation changed meanwhile; retry"))?;
    Ok((rows::conversation(&row)?, false))
}

/// A conversation by id.
pub(super) async fn load(c: &Object, id: ConversationId) -> CoreResult<Option<Conversation>> {
    let stmt = c.prepare_cached(sql::CONVERSATION).await.map_err(map_pg)?;
    c.query_opt(&stmt, &[&id.0])
        .await
        .map_err(map_pg)?
        .map(|r| rows::conversation(&r))
        .transpose()
}

/// A room by its unique name.
pub(super) async fn room_by_name(c: &Object, name: &str) -> CoreResult<Option<Conversation>> {
    let stmt = c.prepare_cached(sql::ROOM_BY_NAME).await.map_err(map_pg)?;
    c.query_opt(&stmt, &[&name])
        .await
        .map_err(map_pg)?
        .map(|r| rows::conversation(&r))
        .transpose()
}

/// Deletes a conversation with its members and messages; `not_found` when missing.
pub(super) async fn delete(c: &Object, id: ConversationId) -> CoreResult<()> {
    let stmt = c
        .prepare_cached(sql::DELETE_CONVERSATION)
        .await
        .map_err(map_pg)?;
    match c.execute(&stmt, &[&id.0]).await.map_err(map_pg)? {
        0 => Err(missing(id)),
        _ => Ok(()),
    }
}
