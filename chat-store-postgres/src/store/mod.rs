//! [`PgStore`]: the [`Store`] on a pooled PostgreSQL connection.

use async_trait::async_trait;
use chat_core::ids::{ConversationId, Seq, UserId};
use chat_core::model::{
    direct_pair, Appended, Conversation, ConversationKind, FriendAction, Friendship, HistoryPage,
    Member, Message, NewDirect, NewMessage, NewRoom, Role, Watermarks,
};
use chat_core::ports::{ConversationSummary, Store, UserProfile};
use chat_core::{Error as CoreError, Result as CoreResult};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::append::{self, Appender};
use crate::config::PgConfig;
use crate::error::{map_pg, map_pool, Error, Result};
use crate::migrate;
use crate::rows::{
    self, pg_time, seq_param, CONVERSATION_COLS, FRIENDSHIP_COLS, MEMBER_COLS, MESSAGE_COLS,
};

// Why deadpool-postgres rather than bb8: it is built for tokio-postgres (a statement cache
// per connection through `prepare_cached`, which every query here uses), its recycling
// checks are cheap (`RecyclingMethod::Fast` only asks whether the socket closed, so a
// connection broken by a server restart is replaced on next use without a round trip),
// and it has per-phase time-outs (wait, create, recycle) that turn an unreachable server
// into a prompt `unavailable` instead of a hang. bb8 would need its own statement cache.

/// The PostgreSQL [`Store`]: pooled connections, batched appends, safe for several
/// engine nodes sharing one database.
pub struct PgStore {
    pool: Pool,
    appender: Appender,
    schema: String,
    /// Set with [`PgConfig::drop_schema_on_drop`]: how to reach the server to drop it.
    drop_on_drop: Option<tokio_postgres::Config>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, creates the schema if needed and applies the missing migrations under an
    /// advisory lock, then starts the pool and the append writer. Call it inside a tokio
    /// runtime; the writer runs on it.
    ///
    /// # Errors
    /// - [`Error::InvalidConfig`]: the URL does not parse, or a bad schema name or size;
    /// - [`Error::Unreachable`]: connection refused, unknown host, time-out;
    /// - [`Error::DatabaseMissing`]: the database in the URL does not exist;
    /// - [`Error::Authentication`]: the server refused the credentials;
    /// - [`Error::SchemaTooNew`]: the schema was written by a newer version of this crate;
    /// - [`Error::Database`]: a migration failed.
    pub async fn open(config: PgConfig) -> Result<Self> {
        let driver = config.driver_config()?;
        migrate::migrate(&driver, &config.schema).await?;
        let manager = Manager::from_config(
            driver.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Some(config.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| Error::InvalidConfig(format!("pool: {e}")))?;
        let appender = Appender::spawn(pool.clone(), config.max_batch, config.append_writers);
        Ok(PgStore {
            pool,
            appender,
            schema: config.schema.clone(),
            drop_on_drop: config.drop_schema_on_drop.then_some(driver),
        })
    }

    /// The schema this store keeps its tables in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Appends one message in its own transaction on its own pooled connection, without
    /// coalescing it with others: the naive path, for comparison in benchmarks. Same
    /// semantics as [`Store::append`].
    ///
    /// # Errors
    /// As [`Store::append`].
    pub async fn append_unbatched(&self, message: NewMessage) -> CoreResult<Appended> {
        append::commit(&self.pool, &[&message])
            .await?
            .pop()
            .unwrap_or_else(|| Err(CoreError::internal("no answer")))
    }

    async fn client(&self) -> CoreResult<Object> {
        self.pool.get().await.map_err(map_pool)
    }

    async fn conversation_exists(&self, c: &Object, id: ConversationId) -> CoreResult<bool> {
        let stmt = c
            .prepare_cached("SELECT 1 FROM conversations WHERE id = $1")
            .await
            .map_err(map_pg)?;
        Ok(c.query_opt(&stmt, &[&id.0])
            .await
            .map_err(map_pg)?
            .is_some())
    }

    async fn require_conversation(&self, c: &Object, id: ConversationId) -> CoreResult<()> {
        if self.conversation_exists(c, id).await? {
            Ok(())
        } else {
            Err(missing(id))
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        let Some(cfg) = self.drop_on_drop.take() else {
            return;
        };
        self.pool.close();
        let schema = self.schema.clone();
        // Drop cannot await: a short-lived thread with its own runtime does it, and we wait
        // for it so the schema is gone when the store is.
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let (client, conn) = cfg.connect(NoTls).await.map_err(|e| e.to_string())?;
                let conn = tokio::spawn(conn);
                let r = client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    ))
                    .await
                    .map_err(|e| e.to_string());
                drop(client);
                let _ = conn.await;
                r
            })
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(schema = %self.schema, error = %e, "could not drop schema")
            }
            Err(_) => tracing::warn!(schema = %self.schema, "schema drop thread panicked"),
        }
    }
}

fn missing(id: ConversationId) -> CoreError {
    CoreError::not_found(format!("conversation {id}"))
}

fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> CoreResult<()> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO users (id, display_name) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE
                 SET display_name = COALESCE(EXCLUDED.display_name, users.display_name)",
            )
            .await
            .map_err(map_pg)?;
        c.execute(&stmt, &[&user.as_str(), &display_name])
            .await
            .map_err(map_pg)?;
        Ok(())
    }

    async fn user(&self, user: &UserId) -> CoreResult<Option<UserProfile>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT id, display_name, last_seen FROM users WHERE id = $1")
            .await
            .map_err(map_pg)?;
        c.query_opt(&stmt, &[&user.as_str()])
            .await
            .map_err(map_pg)?
            .map(|r| rows::profile(&r))
            .transpose()
    }

    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> CoreResult<()> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO users (id, last_seen) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET last_seen = EXCLUDED.last_seen",
            )
            .await
            .map_err(map_pg)?;
        c.execute(&stmt, &[&user.as_str(), &at])
            .await
            .map_err(map_pg)?;
        Ok(())
    }

    async fn create_room(&self, room: NewRoom) -> CoreResult<Conversation> {
        let c = self.client().await?;
        // One statement: the room and its owner commit together.
        let stmt = c
            .prepare_cached(
                "WITH c AS (
                   INSERT INTO conversations (id, kind, name, visibility, created_by, created_at)
                   VALUES ($1, 'room', $2, $3, $4, $5)
                   RETURNING id)
                 INSERT INTO members (conversation, user_id, role, joined_at)
                 SELECT id, $4, 'owner', $5 FROM c",
            )
            .await
            .map_err(map_pg)?;
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
            e if e.code() == chat_core::ErrorCode::Conflict => CoreError::conflict(format!(
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

    async fn open_direct(&self, d: NewDirect) -> CoreResult<(Conversation, bool)> {
        let (a, b) = direct_pair(&d.user, &d.peer)?;
        let c = self.client().await?;
        let find = c
            .prepare_cached(&format!(
                "SELECT {CONVERSATION_COLS} FROM conversations
                 WHERE kind = 'direct' AND direct_a = $1 AND direct_b = $2"
            ))
            .await
            .map_err(map_pg)?;
        if let Some(row) = c
            .query_opt(&find, &[&a.as_str(), &b.as_str()])
            .await
            .map_err(map_pg)?
        {
            return Ok((rows::conversation_at(&row, 0)?, false));
        }
        // Concurrent openers race on the pair's unique index: one inserts, the others
        // insert nothing and read the winner's.
        let create = c
            .prepare_cached(
                "WITH c AS (
                   INSERT INTO conversations (id, kind, direct_a, direct_b, created_by, created_at)
                   VALUES ($1, 'direct', $2, $3, $4, $5)
                   ON CONFLICT (direct_a, direct_b) WHERE kind = 'direct' DO NOTHING
                   RETURNING id),
                 m AS (
                   INSERT INTO members (conversation, user_id, role, joined_at)
                   SELECT c.id, u, 'member', $5 FROM c, unnest(ARRAY[$2, $3]::text[]) AS u)
                 SELECT count(*) FROM c",
            )
            .await
            .map_err(map_pg)?;
        let created: i64 = c
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
            .map_err(map_pg)?
            .try_get(0)
            .map_err(map_pg)?;
        if created == 1 {
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
        // The pair's conversation exists (the insert lost a race), unless it was deleted
        // in between.
        let row = c
            .query_opt(&find, &[&a.as_str(), &b.as_str()])
            .await
            .map_err(map_pg)?
            .ok_or_else(|| {
                chat_core::Error::conflict("the direct conversation changed meanwhile; retry")
            })?;
        Ok((rows::conversation_at(&row, 0)?, false))
    }

    async fn conversation(&self, id: ConversationId) -> CoreResult<Option<Conversation>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {CONVERSATION_COLS} FROM conversations WHERE id = $1"
            ))
            .await
            .map_err(map_pg)?;
        c.query_opt(&stmt, &[&id.0])
            .await
            .map_err(map_pg)?
            .map(|r| rows::conversation_at(&r, 0))
            .transpose()
    }

    async fn room_by_name(&self, name: &str) -> CoreResult<Option<Conversation>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {CONVERSATION_COLS} FROM conversations WHERE kind = 'room' AND name = $1"
            ))
            .await
            .map_err(map_pg)?;
        c.query_opt(&stmt, &[&name])
            .await
            .map_err(map_pg)?
            .map(|r| rows::conversation_at(&r, 0))
            .transpose()
    }

    async fn delete_conversation(&self, id: ConversationId) -> CoreResult<()> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("DELETE FROM conversations WHERE id = $1")
            .await
            .map_err(map_pg)?;
        match c.execute(&stmt, &[&id.0]).await.map_err(map_pg)? {
            0 => Err(missing(id)),
            _ => Ok(()),
        }
    }

    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> CoreResult<(Member, bool)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_pg)?;
        // Locking the conversation serializes concurrent joins, so the cap holds.
        let lock = tx
            .prepare_cached("SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE")
            .await
            .map_err(map_pg)?;
        if tx
            .query_opt(&lock, &[&conversation.0])
            .await
            .map_err(map_pg)?
            .is_none()
        {
            return Err(missing(conversation));
        }
        let find = tx
            .prepare_cached(&format!(
                "SELECT {MEMBER_COLS} FROM members WHERE conversation = $1 AND user_id = $2"
            ))
            .await
            .map_err(map_pg)?;
        if let Some(row) = tx
            .query_opt(&find, &[&conversation.0, &user.as_str()])
            .await
            .map_err(map_pg)?
        {
            return Ok((rows::member(&row)?, false));
        }
        let count = tx
            .prepare_cached("SELECT count(*) FROM members WHERE conversation = $1")
            .await
            .map_err(map_pg)?;
        let n: i64 = tx
            .query_one(&count, &[&conversation.0])
            .await
            .map_err(map_pg)?
            .try_get(0)
            .map_err(map_pg)?;
        if n >= i64::from(max_members) {
            return Err(CoreError::conflict(format!(
                "the conversation has the maximum of {max_members} members"
            )));
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO members (conversation, user_id, role, joined_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .await
            .map_err(map_pg)?;
        tx.execute(
            &insert,
            &[&conversation.0, &user.as_str(), &role.as_str(), &joined_at],
        )
        .await
        .map_err(map_pg)?;
        tx.commit().await.map_err(map_pg)?;
        Ok((
            Member {
                conversation,
                user: user.clone(),
                role,
                watermarks: Watermarks::default(),
                joined_at: pg_time(joined_at),
            },
            true,
        ))
    }

    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> CoreResult<bool> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("DELETE FROM members WHERE conversation = $1 AND user_id = $2")
            .await
            .map_err(map_pg)?;
        if c.execute(&stmt, &[&conversation.0, &user.as_str()])
            .await
            .map_err(map_pg)?
            > 0
        {
            return Ok(true);
        }
        self.require_conversation(&c, conversation).await?;
        Ok(false)
    }

    async fn member(
        &self,
        conversation: ConversationId,
        user: &UserId,
    ) -> CoreResult<Option<Member>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {MEMBER_COLS} FROM members WHERE conversation = $1 AND user_id = $2"
            ))
            .await
            .map_err(map_pg)?;
        c.query_opt(&stmt, &[&conversation.0, &user.as_str()])
            .await
            .map_err(map_pg)?
            .map(|r| rows::member(&r))
            .transpose()
    }

    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Member>> {
        let c = self.client().await?;
        // "" sorts before every user id (they are never empty).
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {MEMBER_COLS} FROM members WHERE conversation = $1 AND user_id > $2
                 ORDER BY user_id LIMIT $3"
            ))
            .await
            .map_err(map_pg)?;
        let after = after.map_or("", UserId::as_str);
        let found = c
            .query(&stmt, &[&conversation.0, &after, &limit_param(limit)])
            .await
            .map_err(map_pg)?
            .iter()
            .map(rows::member)
            .collect::<CoreResult<Vec<_>>>()?;
        if found.is_empty() {
            self.require_conversation(&c, conversation).await?;
        }
        Ok(found)
    }

    async fn conversations_of(&self, user: &UserId) -> CoreResult<Vec<ConversationId>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT conversation FROM members WHERE user_id = $1 ORDER BY conversation",
            )
            .await
            .map_err(map_pg)?;
        c.query(&stmt, &[&user.as_str()])
            .await
            .map_err(map_pg)?
            .iter()
            .map(|r| r.try_get(0).map(ConversationId).map_err(map_pg))
            .collect()
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> CoreResult<Vec<ConversationSummary>> {
        let c = self.client().await?;
        let conv_cols = qualified(CONVERSATION_COLS, "c");
        let msg_cols = qualified(MESSAGE_COLS, "l");
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {conv_cols}, m.role, m.delivered_seq, m.read_seq, {msg_cols},
                   (SELECT count(*) FROM messages u
                     WHERE u.conversation = c.id AND u.seq > m.read_seq
                       AND u.sender <> m.user_id AND u.deleted_at IS NULL) AS unread
                 FROM members m
                 JOIN conversations c ON c.id = m.conversation
                 LEFT JOIN messages l ON l.conversation = c.id AND l.seq = c.last_seq
                 WHERE m.user_id = $1
                 ORDER BY COALESCE(l.created_at, c.created_at) DESC, c.id
                 LIMIT $2"
            ))
            .await
            .map_err(map_pg)?;
        let found = c
            .query(&stmt, &[&user.as_str(), &limit_param(limit)])
            .await
            .map_err(map_pg)?;
        found
            .iter()
            .map(|r| {
                let get = |i: usize| r.try_get::<_, i64>(i).map_err(map_pg);
                Ok(ConversationSummary {
                    conversation: rows::conversation_at(r, 0)?,
                    role: Role::parse(r.try_get(9).map_err(map_pg)?)?,
                    watermarks: Watermarks {
                        delivered_seq: rows::seq(get(10)?)?,
                        read_seq: rows::seq(get(11)?)?,
                    },
                    last_message: rows::message_at(r, 12)?,
                    unread: rows::seq(get(22)?)?,
                })
            })
            .collect()
    }

    async fn append(&self, message: NewMessage) -> CoreResult<Appended> {
        self.appender.append(message).await
    }

    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> CoreResult<Vec<Message>> {
        let c = self.client().await?;
        let (sql, from, newest_first) = match page {
            HistoryPage::Before(before) => (
                "seq < $2 ORDER BY seq DESC",
                before.map_or(i64::MAX, seq_param),
                true,
            ),
            HistoryPage::After(after) => ("seq > $2 ORDER BY seq", seq_param(after), false),
        };
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM messages WHERE conversation = $1 AND {sql} LIMIT $3"
            ))
            .await
            .map_err(map_pg)?;
        let mut found = c
            .query(&stmt, &[&conversation.0, &from, &limit_param(limit)])
            .await
            .map_err(map_pg)?
            .iter()
            .map(rows::message)
            .collect::<CoreResult<Vec<_>>>()?;
        if newest_first {
            found.reverse();
        }
        if found.is_empty() {
            self.require_conversation(&c, conversation).await?;
        }
        Ok(found)
    }

    async fn message(&self, conversation: ConversationId, seq: Seq) -> CoreResult<Option<Message>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM messages WHERE conversation = $1 AND seq = $2"
            ))
            .await
            .map_err(map_pg)?;
        c.query_opt(&stmt, &[&conversation.0, &seq_param(seq)])
            .await
            .map_err(map_pg)?
            .map(|r| rows::message(&r))
            .transpose()
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        if body.contains('\0') {
            return Err(CoreError::invalid("a message body must not contain NUL"));
        }
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "UPDATE messages SET body = $3, edited_at = $4
                 WHERE conversation = $1 AND seq = $2 AND deleted_at IS NULL
                 RETURNING {MESSAGE_COLS}"
            ))
            .await
            .map_err(map_pg)?;
        if let Some(row) = c
            .query_opt(&stmt, &[&conversation.0, &seq_param(seq), &body, &at])
            .await
            .map_err(map_pg)?
        {
            return rows::message(&row);
        }
        match self.message(conversation, seq).await? {
            Some(_) => Err(CoreError::conflict("a deleted message cannot be edited")),
            None => Err(CoreError::not_found(format!("message {seq}"))),
        }
    }

    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "UPDATE messages SET body = '', deleted_at = $3
                 WHERE conversation = $1 AND seq = $2 AND deleted_at IS NULL
                 RETURNING {MESSAGE_COLS}"
            ))
            .await
            .map_err(map_pg)?;
        if let Some(row) = c
            .query_opt(&stmt, &[&conversation.0, &seq_param(seq), &at])
            .await
            .map_err(map_pg)?
        {
            return rows::message(&row);
        }
        // Already a tombstone (returned unchanged), or missing.
        self.message(conversation, seq)
            .await?
            .ok_or_else(|| CoreError::not_found(format!("message {seq}")))
    }

    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> CoreResult<Watermarks> {
        let c = self.client().await?;
        // Watermarks::advance in one statement: forward only, clamped to the last seq,
        // read implies delivered. SET expressions see the old row.
        let stmt = c
            .prepare_cached(
                "UPDATE members m SET
                   read_seq = GREATEST(m.read_seq, LEAST($4, c.last_seq)),
                   delivered_seq = GREATEST(m.delivered_seq, LEAST($3, c.last_seq),
                                            m.read_seq, LEAST($4, c.last_seq))
                 FROM conversations c
                 WHERE m.conversation = $1 AND m.user_id = $2 AND c.id = m.conversation
                 RETURNING m.delivered_seq, m.read_seq",
            )
            .await
            .map_err(map_pg)?;
        let row = c
            .query_opt(
                &stmt,
                &[
                    &conversation.0,
                    &user.as_str(),
                    &seq_param(delivered.unwrap_or(0)),
                    &seq_param(read.unwrap_or(0)),
                ],
            )
            .await
            .map_err(map_pg)?
            .ok_or_else(|| CoreError::not_found("not a member"))?;
        Ok(Watermarks {
            delivered_seq: rows::seq(row.try_get(0).map_err(map_pg)?)?,
            read_seq: rows::seq(row.try_get(1).map_err(map_pg)?)?,
        })
    }

    async fn unread(&self, conversation: ConversationId, user: &UserId) -> CoreResult<u64> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT (SELECT count(*) FROM messages u
                          WHERE u.conversation = m.conversation AND u.seq > m.read_seq
                            AND u.sender <> m.user_id AND u.deleted_at IS NULL)
                 FROM members m WHERE m.conversation = $1 AND m.user_id = $2",
            )
            .await
            .map_err(map_pg)?;
        let row = c
            .query_opt(&stmt, &[&conversation.0, &user.as_str()])
            .await
            .map_err(map_pg)?
            .ok_or_else(|| CoreError::not_found("not a member"))?;
        rows::seq(row.try_get(0).map_err(map_pg)?)
    }

    async fn unread_total(&self, user: &UserId) -> CoreResult<u64> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT COALESCE(sum((SELECT count(*) FROM messages u
                          WHERE u.conversation = m.conversation AND u.seq > m.read_seq
                            AND u.sender <> m.user_id AND u.deleted_at IS NULL)), 0)::bigint
                 FROM members m WHERE m.user_id = $1",
            )
            .await
            .map_err(map_pg)?;
        let row = c
            .query_one(&stmt, &[&user.as_str()])
            .await
            .map_err(map_pg)?;
        rows::seq(row.try_get(0).map_err(map_pg)?)
    }

    async fn friendship(&self, x: &UserId, y: &UserId) -> CoreResult<Option<Friendship>> {
        let (a, b) = direct_pair(x, y)?;
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {FRIENDSHIP_COLS} FROM friendships WHERE a = $1 AND b = $2"
            ))
            .await
            .map_err(map_pg)?;
        c.query_opt(&stmt, &[&a.as_str(), &b.as_str()])
            .await
            .map_err(map_pg)?
            .map(|r| rows::friendship(&r))
            .transpose()
    }

    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> CoreResult<Friendship> {
        let (a, b) = direct_pair(actor, other)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_pg)?;
        // The pair may have no row to lock yet: a transaction-scoped advisory lock on the
        // pair (in this schema) serializes every change to it, present or not.
        let lock = tx
            .prepare_cached(
                "SELECT pg_advisory_xact_lock(
                   hashtextextended(current_schema() || chr(1) || $1 || chr(1) || $2, 0))",
            )
            .await
            .map_err(map_pg)?;
        tx.execute(&lock, &[&a.as_str(), &b.as_str()])
            .await
            .map_err(map_pg)?;
        let find = tx
            .prepare_cached(&format!(
                "SELECT {FRIENDSHIP_COLS} FROM friendships WHERE a = $1 AND b = $2"
            ))
            .await
            .map_err(map_pg)?;
        let current = match tx
            .query_opt(&find, &[&a.as_str(), &b.as_str()])
            .await
            .map_err(map_pg)?
        {
            Some(row) => rows::friendship(&row)?,
            None => Friendship::empty(actor, other, at)?,
        };
        let next = current.apply(actor, action, at)?;
        if next.is_empty() {
            let delete = tx
                .prepare_cached("DELETE FROM friendships WHERE a = $1 AND b = $2")
                .await
                .map_err(map_pg)?;
            tx.execute(&delete, &[&a.as_str(), &b.as_str()])
                .await
                .map_err(map_pg)?;
        } else {
            let (state, from) = rows::friend_state(&next.state);
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO friendships
                       (a, b, state, pending_from, a_blocks_b, b_blocks_a, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (a, b) DO UPDATE SET
                       state = EXCLUDED.state, pending_from = EXCLUDED.pending_from,
                       a_blocks_b = EXCLUDED.a_blocks_b, b_blocks_a = EXCLUDED.b_blocks_a,
                       updated_at = EXCLUDED.updated_at",
                )
                .await
                .map_err(map_pg)?;
            tx.execute(
                &upsert,
                &[
                    &next.a.as_str(),
                    &next.b.as_str(),
                    &state,
                    &from,
                    &next.a_blocks_b,
                    &next.b_blocks_a,
                    &next.updated_at,
                ],
            )
            .await
            .map_err(map_pg)?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(Friendship {
            updated_at: pg_time(next.updated_at),
            ..next
        })
    }

    async fn friendships(&self, user: &UserId, limit: u32) -> CoreResult<Vec<Friendship>> {
        let c = self.client().await?;
        // Two index walks (a, b) and (b, a), merged by the other user's id.
        let stmt = c
            .prepare_cached(&format!(
                "(SELECT {FRIENDSHIP_COLS}, b AS other FROM friendships WHERE a = $1
                   ORDER BY b LIMIT $2)
                 UNION ALL
                 (SELECT {FRIENDSHIP_COLS}, a AS other FROM friendships WHERE b = $1
                   ORDER BY a LIMIT $2)
                 ORDER BY other LIMIT $2"
            ))
            .await
            .map_err(map_pg)?;
        c.query(&stmt, &[&user.as_str(), &limit_param(limit)])
            .await
            .map_err(map_pg)?
            .iter()
            .map(rows::friendship)
            .collect()
    }
}

/// `a, b` → `m.a, m.b`.
pub(crate) fn qualified(cols: &str, alias: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
