//! [`PgStore`]: the [`Store`] on a pooled PostgreSQL connection.
//!
//! The `impl Store` below takes a pooled connection and hands each method to the module
//! of its section of the trait — `users`, `conversations`, `members`, `messages`,
//! `watermarks`, `friendships` — where each is a function over that connection. Appends
//! go to the batched writer (`crate::append`).

use async_trait::async_trait;
use chat_core::ids::{ConversationId, Seq, UserId};
use chat_core::model::{
    direct_pair, Appended, Conversation, FriendAction, Friendship, HistoryPage, Member, Message,
    NewDirect, NewMessage, NewRoom, Role, Watermarks,
};
use chat_core::ports::{ConversationSummary, Store, UserProfile};
use chat_core::{Error as CoreError, Result as CoreResult};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

use crate::append::{self, Appender};
use crate::config::PgConfig;
use crate::error::{map_pool, Error, Result};
use crate::migrate;

mod conversations;
mod friendships;
mod members;
mod messages;
mod users;
mod watermarks;

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
    #[cfg(feature = "test-util")]
    drop_on_drop: Option<(tokio_postgres::Config, crate::tls::Tls)>,
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
    /// - [`Error::Unreachable`]: connection refused, unknown host, no answer within the
    ///   connect time-out;
    /// - [`Error::Tls`]: the TLS the URL's `sslmode` asks for failed (the server offers
    ///   none, or its certificate is not trusted or not for this host);
    /// - [`Error::DatabaseMissing`]: the database in the URL does not exist;
    /// - [`Error::Authentication`]: the server refused the credentials;
    /// - [`Error::SchemaTooNew`]: the schema was written by a newer version of this crate;
    /// - [`Error::Database`]: a migration failed.
    pub async fn open(config: PgConfig) -> Result<Self> {
        let (driver, tls) = config.driver_config()?;
        migrate::migrate(&driver, &tls, config.connect_timeout, &config.schema).await?;
        let manager = Manager::from_config(
            driver.clone(),
            tls.connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let connect = Some(config.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.pool_wait))
            .create_timeout(connect)
            .recycle_timeout(connect)
            .build()
            .map_err(|e| Error::InvalidConfig(format!("pool: {e}")))?;
        let appender = Appender::spawn(pool.clone(), config.max_batch, config.append_writers);
        Ok(PgStore {
            pool,
            appender,
            schema: config.schema.clone(),
            #[cfg(feature = "test-util")]
            drop_on_drop: config.drop_schema_on_drop.then_some((driver, tls)),
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

    /// A connection from the pool.
    async fn client(&self) -> CoreResult<Object> {
        self.pool.get().await.map_err(|e| map_pool(&self.pool, e))
    }
}

/// Drops the schema, with [`PgConfig::drop_schema_on_drop`] (feature `test-util`).
#[cfg(feature = "test-util")]
impl Drop for PgStore {
    fn drop(&mut self) {
        let Some((cfg, tls)) = self.drop_on_drop.take() else {
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
                let (client, conn) = cfg
                    .connect(tls.connector)
                    .await
                    .map_err(|e| e.to_string())?;
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

#[async_trait]
impl Store for PgStore {
    // ---- users ----

    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> CoreResult<()> {
        users::upsert(&self.client().await?, user, display_name).await
    }

    async fn user(&self, user: &UserId) -> CoreResult<Option<UserProfile>> {
        users::load(&self.client().await?, user).await
    }

    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> CoreResult<()> {
        users::set_last_seen(&self.client().await?, user, at).await
    }

    // ---- conversations ----

    async fn create_room(&self, room: NewRoom) -> CoreResult<Conversation> {
        conversations::create_room(&self.client().await?, room).await
    }

    async fn open_direct(&self, d: NewDirect) -> CoreResult<(Conversation, bool)> {
        let pair = direct_pair(&d.user, &d.peer)?;
        conversations::open_direct(&self.client().await?, d, pair).await
    }

    async fn conversation(&self, id: ConversationId) -> CoreResult<Option<Conversation>> {
        conversations::load(&self.client().await?, id).await
    }

    async fn room_by_name(&self, name: &str) -> CoreResult<Option<Conversation>> {
        conversations::room_by_name(&self.client().await?, name).await
    }

    async fn delete_conversation(&self, id: ConversationId) -> CoreResult<()> {
        conversations::delete(&self.client().await?, id).await
    }

    // ---- members ----

    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> CoreResult<(Member, bool)> {
        let mut c = self.client().await?;
        members::add(&mut c, conversation, user, role, joined_at, max_members).await
    }

    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> CoreResult<bool> {
        members::remove(&self.client().await?, conversation, user).await
    }

    async fn member(
        &self,
        conversation: ConversationId,
        user: &UserId,
    ) -> CoreResult<Option<Member>> {
        members::load(&self.client().await?, conversation, user).await
    }

    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Member>> {
        // "" sorts before every user id (they are never empty).
        let after = after.map_or("", UserId::as_str);
        members::page(&self.client().await?, conversation, after, limit).await
    }

    async fn conversations_of(&self, user: &UserId, limit: u32) -> CoreResult<Vec<ConversationId>> {
        members::conversations_of(&self.client().await?, user, limit).await
    }

    async fn conversations_of_many(
        &self,
        users: &[UserId],
        limit: u32,
    ) -> CoreResult<Vec<Vec<ConversationId>>> {
        members::conversations_of_many(&self.client().await?, users, limit).await
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> CoreResult<Vec<ConversationSummary>> {
        members::list(&self.client().await?, user, limit).await
    }

    // ---- messages ----

    async fn append(&self, message: NewMessage) -> CoreResult<Appended> {
        self.appender.append(message).await
    }

    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> CoreResult<Vec<Message>> {
        messages::history(&self.client().await?, conversation, page, limit).await
    }

    async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: HistoryPage,
        limit: u32,
    ) -> CoreResult<Vec<Message>> {
        messages::thread(&self.client().await?, conversation, root, page, limit).await
    }

    async fn message(&self, conversation: ConversationId, seq: Seq) -> CoreResult<Option<Message>> {
        messages::load(&self.client().await?, conversation, seq).await
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        messages::edit(&self.client().await?, conversation, seq, body, at).await
    }

    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> CoreResult<Message> {
        messages::delete(&self.client().await?, conversation, seq, at).await
    }

    // ---- watermarks ----

    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> CoreResult<Watermarks> {
        let c = self.client().await?;
        watermarks::advance(&c, conversation, user, delivered, read).await
    }

    async fn unread(&self, conversation: ConversationId, user: &UserId) -> CoreResult<u64> {
        watermarks::unread(&self.client().await?, conversation, user).await
    }

    async fn unread_total(&self, user: &UserId) -> CoreResult<u64> {
        watermarks::unread_total(&self.client().await?, user).await
    }

    // ---- friendships ----

    async fn friendship(&self, x: &UserId, y: &UserId) -> CoreResult<Option<Friendship>> {
        let (a, b) = direct_pair(x, y)?;
        friendships::load(&self.client().await?, &a, &b).await
    }

    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> CoreResult<Friendship> {
        let pair = direct_pair(actor, other)?;
        let mut c = self.client().await?;
        friendships::apply(&mut c, pair, actor, other, action, at).await
    }

    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> CoreResult<Vec<Friendship>> {
        let after = after.map_or("", |a| a.as_str());
        friendships::list(&self.client().await?, user, after, limit).await
    }

    async fn friends_of_many(&self, users: &[UserId], limit: u32) -> CoreResult<Vec<Vec<UserId>>> {
        friendships::friends_of_many(&self.client().await?, users, limit).await
    }
}

/// Runs a `(user_id, value)` statement over the distinct ids of `users` (`$1`, with the
/// per-user `limit` as `$2`) and hands back each user's values, in the order of `users`.
async fn per_user<T: Clone>(
    c: &Object,
    stmt: &tokio_postgres::Statement,
    users: &[UserId],
    limit: u32,
    value: impl Fn(&tokio_postgres::Row) -> CoreResult<T>,
) -> CoreResult<Vec<Vec<T>>> {
    let mut index: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(users.len());
    let mut distinct: Vec<&str> = Vec::with_capacity(users.len());
    for u in users {
        index.entry(u.as_str()).or_insert_with(|| {
            distinct.push(u.as_str());
            distinct.len() - 1
        });
    }
    let mut found: Vec<Vec<T>> = vec![Vec::new(); distinct.len()];
    for row in c
        .query(stmt, &[&distinct, &crate::rows::limit_param(limit)])
        .await
        .map_err(crate::error::map_pg)?
    {
        let user: &str = row
            .try_get("user_id")
            .map_err(|e| CoreError::internal(format!("reading user_id: {e}")))?;
        let at = *index
            .get(user)
            .ok_or_else(|| CoreError::internal("the store answered for a user not asked"))?;
        found[at].push(value(&row)?);
    }
    Ok(users
        .iter()
        .map(|u| found[index[u.as_str()]].clone())
        .collect())
}
