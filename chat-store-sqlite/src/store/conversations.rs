//! Conversations: creating rooms and direct conversations (with their first members),
//! finding them, deleting them with everything in them.

use chat_core::model::{Conversation, ConversationKind, NewDirect, NewRoom, Role};
use chat_core::{ConversationId, Error as CoreError, ErrorCode, Result as CoreResult, UserId};
use rusqlite::{params, Connection, OptionalExtension};

use super::shared::insert_member;
use crate::row::{self, map_err, ms, trunc};
use crate::sql;
use crate::writer::Ctx;

/// Creates a room with its creator as owner; `conflict` names what is taken.
pub(super) fn create_room(ctx: &mut Ctx<'_>, room: NewRoom) -> CoreResult<Conversation> {
    ctx.atomic(|ctx| {
        let inserted = ctx
            .conn
            .prepare_cached(sql::INSERT_ROOM)
            .and_then(|mut s| {
                s.execute(params![
                    room.id.0.as_bytes(),
                    room.name,
                    room.visibility.as_str(),
                    room.created_by.as_str(),
                    ms(room.created_at)
                ])
            })
            .map_err(map_err);
        match inserted {
            Err(e) if e.code() == ErrorCode::Conflict => {
                let taken = ctx
                    .conn
                    .prepare_cached(sql::ROOM_BY_NAME)
                    .and_then(|mut s| s.exists([room.name.as_str()]))
                    .map_err(map_err)?;
                return Err(CoreError::conflict(if taken {
                    format!("a room named {:?} exists", room.name)
                } else {
                    format!("conversation {} exists", room.id)
                }));
            }
            other => other?,
        };
        insert_member(
            ctx.conn,
            room.id,
            &room.created_by,
            Role::Owner,
            room.created_at,
        )?;
        Ok(Conversation {
            id: room.id,
            kind: ConversationKind::Room {
                name: room.name,
                visibility: room.visibility,
            },
            created_by: room.created_by,
            created_at: trunc(room.created_at),
            last_seq: 0,
        })
    })
}

/// The pair's direct conversation, created with both as members when missing; true
/// when created. `(a, b)` is the pair in [`direct_pair`](chat_core::model::direct_pair)
/// order.
pub(super) fn open_direct(
    ctx: &mut Ctx<'_>,
    d: NewDirect,
    (a, b): (UserId, UserId),
) -> CoreResult<(Conversation, bool)> {
    ctx.atomic(|ctx| {
        let existing = ctx
            .conn
            .prepare_cached(sql::DIRECT_BY_PAIR)
            .and_then(|mut s| {
                s.query_row([a.as_str(), b.as_str()], row::conversation)
                    .optional()
            })
            .map_err(map_err)?;
        if let Some(c) = existing {
            return Ok((c, false));
        }
        ctx.conn
            .prepare_cached(sql::INSERT_DIRECT)
            .and_then(|mut s| {
                s.execute(params![
                    d.id.0.as_bytes(),
                    a.as_str(),
                    b.as_str(),
                    d.user.as_str(),
                    ms(d.created_at)
                ])
            })
            .map_err(map_err)?;
        insert_member(ctx.conn, d.id, &a, Role::Member, d.created_at)?;
        insert_member(ctx.conn, d.id, &b, Role::Member, d.created_at)?;
        Ok((
            Conversation {
                id: d.id,
                kind: ConversationKind::Direct { a, b },
                created_by: d.user,
                created_at: trunc(d.created_at),
                last_seq: 0,
            },
            true,
        ))
    })
}

/// A conversation by id.
pub(super) fn load(conn: &Connection, id: ConversationId) -> CoreResult<Option<Conversation>> {
    conn.prepare_cached(sql::CONVERSATION)
        .and_then(|mut s| s.query_row([id.0.as_bytes()], row::conversation).optional())
        .map_err(map_err)
}

/// A room by its unique name.
pub(super) fn room_by_name(conn: &Connection, name: &str) -> CoreResult<Option<Conversation>> {
    conn.prepare_cached(sql::ROOM_BY_NAME)
        .and_then(|mut s| s.query_row([name], row::conversation).optional())
        .map_err(map_err)
}

/// Deletes a conversation with its members and messages; `not_found` when missing.
pub(super) fn delete(ctx: &mut Ctx<'_>, id: ConversationId) -> CoreResult<()> {
    ctx.atomic(|ctx| {
        ctx.last_seq(id)?;
        for stmt in [
            sql::DELETE_CONVERSATION_MESSAGES,
            sql::DELETE_CONVERSATION_MEMBERS,
            sql::DELETE_CONVERSATION,
        ] {
            ctx.conn
                .prepare_cached(stmt)
                .and_then(|mut s| s.execute([id.0.as_bytes()]))
                .map_err(map_err)?;
        }
        ctx.forget(id);
        Ok(())
    })
}
