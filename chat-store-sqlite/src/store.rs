//! [`SqliteStore`]: the `Store` implementation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chat_core::model::{
    direct_pair, Appended, Conversation, ConversationKind, FriendAction, Friendship, HistoryPage,
    Member, Message, NewDirect, NewMessage, NewRoom, Role, Watermarks,
};
use chat_core::ports::{ConversationSummary, Store, UserProfile};
use chat_core::{ConversationId, Error as CoreError, Result as CoreResult, Seq, UserId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Location};
use crate::error::{self, Error, Result};
use crate::pool::{Opener, ReadPool};
use crate::row::{self, map_err, ms, seq_sql};
use crate::writer::{self, Ctx, Job};
use crate::{schema, sql};

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the
/// writer after it has committed what was queued.
pub struct SqliteStore {
    writes: mpsc::Sender<Job>,
    reads: Arc<ReadPool>,
    /// Keeps an in-memory database alive for as long as the store.
    _keep: Option<Arc<std::sync::Mutex<Connection>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// A name and the flags for every connection of one store.
struct Target {
    /// What errors name.
    path: PathBuf,
    /// What SQLite opens (a URI for in-memory databases).
    open_as: String,
    uri: bool,
    wal: bool,
}

impl Target {
    fn flags(&self, write: bool) -> OpenFlags {
        let mut f = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        f |= if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        if self.uri {
            f |= OpenFlags::SQLITE_OPEN_URI;
        }
        f
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database described by `config`, applies pending
    /// migrations, and starts the writer thread and the read pool.
    ///
    /// Nothing is written before the file is known to be a database of a version this
    /// code understands.
    ///
    /// # Errors
    /// - [`Error::MissingDirectory`]: the file's directory does not exist.
    /// - [`Error::ReadOnly`]: the file (or its directory) cannot be written.
    /// - [`Error::NotADatabase`]: the file exists and is not a SQLite database.
    /// - [`Error::SchemaTooNew`]: the database was written by a newer version.
    /// - [`Error::Config`]: a pool size or batch size of zero.
    /// - [`Error::Sqlite`]: any other failure of SQLite.
    pub async fn open(config: Config) -> Result<SqliteStore> {
        if config.read_pool_size == 0 || config.max_batch == 0 {
            return Err(Error::Config(
                "read_pool_size and max_batch must be at least 1".into(),
            ));
        }
        let opened = tokio::task::spawn_blocking(move || open_blocking(config))
            .await
            .map_err(|e| Error::Config(format!("the open task failed: {e}")))??;
        Ok(opened)
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> CoreResult<T> + Send + 'static,
    ) -> CoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(writer::job(f, tx))
            .await
            .map_err(|_| CoreError::unavailable("the sqlite writer has stopped"))?;
        rx.await
            .map_err(|_| CoreError::unavailable("the sqlite writer has stopped"))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> CoreResult<T> + Send + 'static,
    ) -> CoreResult<T> {
        self.reads.read(f).await
    }
}

fn open_blocking(config: Config) -> Result<SqliteStore> {
    let target = match &config.location {
        Location::Path(p) => {
            precheck(p)?;
            Target {
                path: p.clone(),
                open_as: p.to_string_lossy().into_owned(),
                uri: false,
                wal: true,
            }
        }
        Location::Memory => Target {
            path: PathBuf::from(":memory:"),
            open_as: format!("file:/chat-memory-{}?vfs=memdb", uuid::Uuid::new_v4()),
            uri: true,
            wal: false,
        },
    };
    let fail = |e: rusqlite::Error| -> Error {
        if error::is_not_a_database(&e) {
            Error::NotADatabase {
                path: target.path.clone(),
            }
        } else if error::is_read_only(&e) {
            Error::ReadOnly {
                path: target.path.clone(),
            }
        } else {
            Error::sqlite(&target.path, e)
        }
    };
    let mut conn =
        Connection::open_with_flags(&target.open_as, target.flags(true)).map_err(fail)?;
    if conn
        .is_readonly(rusqlite::DatabaseName::Main)
        .map_err(fail)?
    {
        return Err(Error::ReadOnly {
            path: target.path.clone(),
        });
    }
    conn.busy_timeout(config.busy_timeout).map_err(fail)?;
    // The first read of the file: garbage fails here, before anything is written.
    let version = schema::version(&conn).map_err(fail)?;
    if version > schema::SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            path: target.path.clone(),
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    if target.wal {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::sqlite(
                &target.path,
                rusqlite::Error::InvalidParameterName(format!("journal_mode stayed {mode}")),
            ));
        }
    }
    conn.pragma_update(None, "synchronous", config.synchronous.as_sql())
        .map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn, version).map_err(fail)?;

    let busy = config.busy_timeout;
    let open_as = target.open_as.clone();
    let flags = target.flags(false);
    let opener: Opener = Box::new(move || {
        let c = Connection::open_with_flags(&open_as, flags)?;
        c.busy_timeout(busy)?;
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    });
    let readers = (0..config.read_pool_size)
        .map(|_| opener())
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(fail)?;
    // An in-memory database lives while a connection holds it; the writer's goes away
    // with its thread, so keep one more.
    let keep = match config.location {
        Location::Memory => Some(Arc::new(std::sync::Mutex::new(opener().map_err(fail)?))),
        Location::Path(_) => None,
    };

    let (tx, rx) = mpsc::channel(config.max_batch.saturating_mul(4).max(16));
    let max_batch = config.max_batch;
    std::thread::Builder::new()
        .name("chat-sqlite-writer".into())
        .spawn(move || writer::run(conn, rx, max_batch))
        .map_err(|e| {
            Error::sqlite(
                &target.path,
                rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            )
        })?;
    Ok(SqliteStore {
        writes: tx,
        reads: Arc::new(ReadPool::new(readers, opener)),
        _keep: keep,
    })
}

/// Checks the path before SQLite sees it, so that a bad path is named precisely and
/// nothing is created: the directory must exist; an existing file must be a writable file.
fn precheck(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::MissingDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::NotADatabase {
            path: path.to_owned(),
        }),
        // Checked by permission bits too, because a privileged process could still
        // write the file: read-only means read-only.
        Ok(m) if m.permissions().readonly() => Err(Error::ReadOnly {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly()) {
                return Err(Error::ReadOnly {
                    path: path.to_owned(),
                });
            }
            Ok(())
        }
        Err(e) => Err(Error::sqlite(
            path,
            rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        )),
    }
}

/// A time as the store gives it back: whole milliseconds.
fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(t)).unwrap_or(t)
}

fn missing(id: ConversationId) -> CoreError {
    CoreError::not_found(format!("conversation {id}"))
}

fn exists(conn: &Connection, id: ConversationId) -> CoreResult<()> {
    let found = conn
        .prepare_cached(sql::CONVERSATION_EXISTS)
        .and_then(|mut s| s.exists([id.0.as_bytes()]))
        .map_err(map_err)?;
    if found {
        Ok(())
    } else {
        Err(missing(id))
    }
}

fn load_conversation(conn: &Connection, id: ConversationId) -> CoreResult<Option<Conversation>> {
    conn.prepare_cached(sql::CONVERSATION)
        .and_then(|mut s| {
            s.query_row([id.0.as_bytes()], |r| row::conversation(r, 0))
                .optional()
        })
        .map_err(map_err)
}

fn load_message(conn: &Connection, id: ConversationId, seq: Seq) -> CoreResult<Option<Message>> {
    conn.prepare_cached(sql::MESSAGE)
        .and_then(|mut s| {
            s.query_row(params![id.0.as_bytes(), seq_sql(seq)], row::message)
                .optional()
        })
        .map_err(map_err)
}

fn load_member(conn: &Connection, id: ConversationId, user: &UserId) -> CoreResult<Option<Member>> {
    conn.prepare_cached(sql::MEMBER)
        .and_then(|mut s| {
            s.query_row(params![id.0.as_bytes(), user.as_str()], row::member)
                .optional()
        })
        .map_err(map_err)
}

fn insert_member(
    conn: &Connection,
    id: ConversationId,
    user: &UserId,
    role: Role,
    at: DateTime<Utc>,
) -> CoreResult<Member> {
    conn.prepare_cached(sql::INSERT_MEMBER)
        .and_then(|mut s| {
            s.execute(params![
                id.0.as_bytes(),
                user.as_str(),
                role.as_str(),
                ms(at)
            ])
        })
        .map_err(map_err)?;
    Ok(Member {
        conversation: id,
        user: user.clone(),
        role,
        watermarks: Watermarks::default(),
        joined_at: trunc(at),
    })
}

fn count_unread(
    conn: &Connection,
    id: ConversationId,
    user: &UserId,
    read: Seq,
) -> CoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(sql::UNREAD)
        .and_then(|mut s| {
            s.query_row(
                params![id.0.as_bytes(), seq_sql(read), user.as_str()],
                |r| r.get(0),
            )
        })
        .map_err(map_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn load_friendship(conn: &Connection, a: &UserId, b: &UserId) -> CoreResult<Option<Friendship>> {
    conn.prepare_cached(sql::FRIENDSHIP)
        .and_then(|mut s| {
            s.query_row([a.as_str(), b.as_str()], row::friendship)
                .optional()
        })
        .map_err(map_err)
}

/// Runs a read of several statements in one read transaction, so it sees one snapshot.
fn snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> CoreResult<T>) -> CoreResult<T> {
    let tx = conn.unchecked_transaction().map_err(map_err)?;
    let out = f(&tx)?;
    tx.finish().map_err(map_err)?;
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> CoreResult<()> {
        let (user, name) = (user.clone(), display_name.map(str::to_owned));
        self.write(move |ctx| {
            ctx.conn
                .prepare_cached(sql::UPSERT_USER)
                .and_then(|mut s| s.execute(params![user.as_str(), name]))
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, user: &UserId) -> CoreResult<Option<UserProfile>> {
        let user = user.clone();
        self.read(move |conn| {
            let row: Option<(Option<String>, Option<i64>)> = conn
                .prepare_cached(sql::USER)
                .and_then(|mut s| {
                    s.query_row([user.as_str()], |r| Ok((r.get(1)?, r.get(2)?)))
                        .optional()
                })
                .map_err(map_err)?;
            Ok(row.map(|(display_name, last_seen)| UserProfile {
                user,
                display_name,
                last_seen: last_seen.and_then(DateTime::from_timestamp_millis),
            }))
        })
        .await
    }

    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> CoreResult<()> {
        let user = user.clone();
        self.write(move |ctx| {
            ctx.conn
                .prepare_cached(sql::SET_LAST_SEEN)
                .and_then(|mut s| s.execute(params![user.as_str(), ms(at)]))
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn create_room(&self, room: NewRoom) -> CoreResult<Conversation> {
        self.write(move |ctx| {
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
                    Err(e) if e.code() == chat_core::ErrorCode::Conflict => {
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
        })
        .await
    }

    async fn open_direct(&self, d: NewDirect) -> CoreResult<(Conversation, bool)> {
        let (a, b) = direct_pair(&d.user, &d.peer)?;
        self.write(move |ctx| {
            ctx.atomic(|ctx| {
                let existing = ctx
                    .conn
                    .prepare_cached(sql::DIRECT_BY_PAIR)
                    .and_then(|mut s| {
                        s.query_row([a.as_str(), b.as_str()], |r| row::conversation(r, 0))
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
        })
        .await
    }

    async fn conversation(&self, id: ConversationId) -> CoreResult<Option<Conversation>> {
        self.read(move |conn| load_conversation(conn, id)).await
    }

    async fn room_by_name(&self, name: &str) -> CoreResult<Option<Conversation>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(sql::ROOM_BY_NAME)
                .and_then(|mut s| s.query_row([name], |r| row::conversation(r, 0)).optional())
                .map_err(map_err)
        })
        .await
    }

    async fn delete_conversation(&self, id: ConversationId) -> CoreResult<()> {
        self.write(move |ctx| {
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
        })
        .await
    }

    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> CoreResult<(Member, bool)> {
        let user = user.clone();
        self.write(move |ctx| {
            ctx.last_seq(conversation)?;
            if let Some(m) = load_member(ctx.conn, conversation, &user)? {
                return Ok((m, false));
            }
            let n: i64 = ctx
                .conn
                .prepare_cached(sql::MEMBER_COUNT)
                .and_then(|mut s| s.query_row([conversation.0.as_bytes()], |r| r.get(0)))
                .map_err(map_err)?;
            if n >= i64::from(max_members) {
                return Err(CoreError::conflict(format!(
                    "the conversation has the maximum of {max_members} members"
                )));
            }
            Ok((
                insert_member(ctx.conn, conversation, &user, role, joined_at)?,
                true,
            ))
        })
        .await
    }

    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> CoreResult<bool> {
        let user = user.clone();
        self.write(move |ctx| {
            ctx.last_seq(conversation)?;
            let n = ctx
                .conn
                .prepare_cached(sql::DELETE_MEMBER)
                .and_then(|mut s| s.execute(params![conversation.0.as_bytes(), user.as_str()]))
                .map_err(map_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn member(
        &self,
        conversation: ConversationId,
        user: &UserId,
    ) -> CoreResult<Option<Member>> {
        let user = user.clone();
        self.read(move |conn| load_member(conn, conversation, &user))
            .await
    }

    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Member>> {
        let after = after.map_or_else(String::new, |u| u.as_str().to_owned());
        self.read(move |conn| {
            snapshot(conn, |conn| {
                exists(conn, conversation)?;
                conn.prepare_cached(sql::MEMBERS_PAGE)
                    .and_then(|mut s| {
                        s.query_map(
                            params![conversation.0.as_bytes(), after, i64::from(limit)],
                            row::member,
                        )?
                        .collect()
                    })
                    .map_err(map_err)
            })
        })
        .await
    }

    async fn conversations_of(&self, user: &UserId, limit: u32) -> CoreResult<Vec<ConversationId>> {
        let user = user.clone();
        self.read(move |conn| {
            let ids: Vec<Vec<u8>> = conn
                .prepare_cached(sql::CONVERSATIONS_OF)
                .and_then(|mut s| {
                    s.query_map(params![user.as_str(), i64::from(limit)], |r| r.get(0))?
                        .collect()
                })
                .map_err(map_err)?;
            ids.iter()
                .map(|b| {
                    uuid::Uuid::from_slice(b)
                        .map(ConversationId)
                        .map_err(|_| CoreError::internal("stored id cannot be read"))
                })
                .collect()
        })
        .await
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> CoreResult<Vec<ConversationSummary>> {
        let user = user.clone();
        self.read(move |conn| {
            snapshot(conn, |conn| {
                let mine: Vec<(Conversation, String, i64, i64)> = conn
                    .prepare_cached(sql::MY_CONVERSATIONS)
                    .and_then(|mut s| {
                        s.query_map([user.as_str()], |r| {
                            Ok((row::conversation(r, 0)?, r.get(9)?, r.get(10)?, r.get(11)?))
                        })?
                        .collect()
                    })
                    .map_err(map_err)?;
                let mut out = Vec::with_capacity(mine.len());
                for (conversation, role, delivered, read) in mine {
                    let bad = || CoreError::internal("stored watermark cannot be read");
                    let watermarks = Watermarks {
                        delivered_seq: Seq::try_from(delivered).map_err(|_| bad())?,
                        read_seq: Seq::try_from(read).map_err(|_| bad())?,
                    };
                    let last_message = if conversation.last_seq > 0 {
                        load_message(conn, conversation.id, conversation.last_seq)?
                    } else {
                        None
                    };
                    let unread = count_unread(conn, conversation.id, &user, watermarks.read_seq)?;
                    out.push(ConversationSummary {
                        role: Role::parse(&role)?,
                        conversation,
                        watermarks,
                        last_message,
                        unread,
                    });
                }
                out.sort_by(|x, y| {
                    y.last_activity()
                        .cmp(&x.last_activity())
                        .then(x.conversation.id.cmp(&y.conversation.id))
                });
                out.truncate(limit as usize);
                Ok(out)
            })
        })
        .await
    }

    async fn append(&self, m: NewMessage) -> CoreResult<Appended> {
        self.write(move |ctx| {
            if let Some(cid) = &m.client_id {
                let original = ctx
                    .conn
                    .prepare_cached(sql::BY_CLIENT_ID)
                    .and_then(|mut s| {
                        s.query_row([m.sender.as_str(), cid.as_str()], row::message)
                            .optional()
                    })
                    .map_err(map_err)?;
                if let Some(message) = original {
                    return Ok(Appended {
                        message,
                        duplicate: true,
                    });
                }
            }
            let seq = ctx.last_seq(m.conversation)? + 1;
            ctx.conn
                .prepare_cached(sql::INSERT_MESSAGE)
                .and_then(|mut s| {
                    s.execute(params![
                        m.conversation.0.as_bytes(),
                        seq_sql(seq),
                        m.id.0.as_bytes(),
                        m.sender.as_str(),
                        m.client_id,
                        m.kind.as_str(),
                        m.body,
                        ms(m.created_at)
                    ])
                })
                .map_err(map_err)?;
            ctx.appended(m.conversation, seq);
            Ok(Appended {
                message: Message {
                    id: m.id,
                    conversation: m.conversation,
                    seq,
                    sender: m.sender,
                    client_id: m.client_id,
                    kind: m.kind,
                    body: m.body,
                    created_at: trunc(m.created_at),
                    edited_at: None,
                    deleted_at: None,
                },
                duplicate: false,
            })
        })
        .await
    }

    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> CoreResult<Vec<Message>> {
        self.read(move |conn| {
            snapshot(conn, |conn| {
                exists(conn, conversation)?;
                let (stmt, from) = match page {
                    HistoryPage::Before(b) => (sql::HISTORY_BEFORE, b.map_or(i64::MAX, seq_sql)),
                    HistoryPage::After(a) => (sql::HISTORY_AFTER, seq_sql(a)),
                };
                conn.prepare_cached(stmt)
                    .and_then(|mut s| {
                        s.query_map(
                            params![conversation.0.as_bytes(), from, i64::from(limit)],
                            row::message,
                        )?
                        .collect()
                    })
                    .map_err(map_err)
            })
        })
        .await
    }

    async fn message(&self, conversation: ConversationId, seq: Seq) -> CoreResult<Option<Message>> {
        self.read(move |conn| load_message(conn, conversation, seq))
            .await
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        let body = body.to_owned();
        self.write(move |ctx| {
            let mut m = load_message(ctx.conn, conversation, seq)?
                .ok_or_else(|| CoreError::not_found(format!("message {seq}")))?;
            if m.is_deleted() {
                return Err(CoreError::conflict("a deleted message cannot be edited"));
            }
            ctx.conn
                .prepare_cached(sql::EDIT_MESSAGE)
                .and_then(|mut s| {
                    s.execute(params![
                        conversation.0.as_bytes(),
                        seq_sql(seq),
                        body,
                        ms(at)
                    ])
                })
                .map_err(map_err)?;
            m.body = body;
            m.edited_at = Some(trunc(at));
            Ok(m)
        })
        .await
    }

    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        self.write(move |ctx| {
            let mut m = load_message(ctx.conn, conversation, seq)?
                .ok_or_else(|| CoreError::not_found(format!("message {seq}")))?;
            if m.is_deleted() {
                return Ok(m);
            }
            ctx.conn
                .prepare_cached(sql::DELETE_MESSAGE)
                .and_then(|mut s| {
                    s.execute(params![conversation.0.as_bytes(), seq_sql(seq), ms(at)])
                })
                .map_err(map_err)?;
            m.body.clear();
            m.deleted_at = Some(trunc(at));
            Ok(m)
        })
        .await
    }

    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> CoreResult<Watermarks> {
        let user = user.clone();
        self.write(move |ctx| {
            let last = ctx.last_seq(conversation)?;
            let current: Option<(i64, i64)> = ctx
                .conn
                .prepare_cached(sql::WATERMARKS)
                .and_then(|mut s| {
                    s.query_row(params![conversation.0.as_bytes(), user.as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .map_err(map_err)?;
            let (d, r) = current.ok_or_else(|| CoreError::not_found("not a member"))?;
            let bad = || CoreError::internal("stored watermark cannot be read");
            let now = Watermarks {
                delivered_seq: Seq::try_from(d).map_err(|_| bad())?,
                read_seq: Seq::try_from(r).map_err(|_| bad())?,
            };
            let next = now.advance(delivered, read, last);
            if next != now {
                ctx.conn
                    .prepare_cached(sql::SET_WATERMARKS)
                    .and_then(|mut s| {
                        s.execute(params![
                            conversation.0.as_bytes(),
                            user.as_str(),
                            seq_sql(next.delivered_seq),
                            seq_sql(next.read_seq)
                        ])
                    })
                    .map_err(map_err)?;
            }
            Ok(next)
        })
        .await
    }

    async fn unread(&self, conversation: ConversationId, user: &UserId) -> CoreResult<u64> {
        let user = user.clone();
        self.read(move |conn| {
            snapshot(conn, |conn| {
                let m = load_member(conn, conversation, &user)?
                    .ok_or_else(|| CoreError::not_found("not a member"))?;
                count_unread(conn, conversation, &user, m.watermarks.read_seq)
            })
        })
        .await
    }

    async fn unread_total(&self, user: &UserId) -> CoreResult<u64> {
        let user = user.clone();
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached(sql::UNREAD_TOTAL)
                .and_then(|mut s| s.query_row([user.as_str()], |r| r.get(0)))
                .map_err(map_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn friendship(&self, x: &UserId, y: &UserId) -> CoreResult<Option<Friendship>> {
        let (a, b) = direct_pair(x, y)?;
        self.read(move |conn| load_friendship(conn, &a, &b)).await
    }

    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> CoreResult<Friendship> {
        let (a, b) = direct_pair(actor, other)?;
        let actor = actor.clone();
        let at = trunc(at);
        self.write(move |ctx| {
            let current = match load_friendship(ctx.conn, &a, &b)? {
                Some(f) => f,
                None => Friendship::empty(&a, &b, at)?,
            };
            let next = current.apply(&actor, action, at)?;
            if next.is_empty() {
                ctx.conn
                    .prepare_cached(sql::DELETE_FRIENDSHIP)
                    .and_then(|mut s| s.execute([a.as_str(), b.as_str()]))
                    .map_err(map_err)?;
            } else {
                let (state, from) = row::friend_state(&next.state);
                ctx.conn
                    .prepare_cached(sql::SAVE_FRIENDSHIP)
                    .and_then(|mut s| {
                        s.execute(params![
                            a.as_str(),
                            b.as_str(),
                            state,
                            from,
                            next.a_blocks_b,
                            next.b_blocks_a,
                            ms(next.updated_at)
                        ])
                    })
                    .map_err(map_err)?;
            }
            Ok(next)
        })
        .await
    }

    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Friendship>> {
        let user = user.clone();
        let after = after.map(|a| a.as_str().to_owned()).unwrap_or_default();
        self.read(move |conn| {
            conn.prepare_cached(sql::FRIENDSHIPS_OF)
                .and_then(|mut s| {
                    let p = params![user.as_str(), after, i64::from(limit)];
                    s.query_map(p, row::friendship)?.collect()
                })
                .map_err(map_err)
        })
        .await
    }
}
