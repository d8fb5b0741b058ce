//! A session: one authenticated connection's view of the engine, from open to close.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::command::{self, Command, Ctx, Reply};
use super::registry::Follower;
use super::{Engine, Inner};
use crate::error::{Error, Result};
use crate::ids::{SessionId, UserId};
use crate::model::RateLimiter;
use crate::ports::{CloseReason, Identity, Transport};

/// One open session, as the registry and the fan-out see it.
pub(crate) struct SessionEntry {
    pub(crate) id: SessionId,
    pub(crate) user: UserId,
    pub(crate) transport: Arc<dyn Transport>,
    /// Set once the session left the registry.
    pub(crate) detached: AtomicBool,
    /// Set when the engine closed the transport (slow consumer, shutdown).
    pub(crate) closed: AtomicBool,
}

impl std::fmt::Debug for SessionEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEntry")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Follower for Arc<SessionEntry> {
    fn session(&self) -> SessionId {
        self.id
    }
    fn user(&self) -> &UserId {
        &self.user
    }
}

impl Engine {
    /// Opens a session for an authenticated user on a connection.
    ///
    /// The user comes online (friends and co-members are told) when this is their first
    /// connection anywhere; events for them start flowing into `transport` at once.
    ///
    /// # Errors
    /// `unavailable` when the store cannot be reached or the engine is shutting down.
    pub async fn open_session(
        &self,
        identity: Identity,
        transport: Arc<dyn Transport>,
    ) -> Result<Session> {
        let inner = &self.inner;
        if inner.is_shutting_down() {
            return Err(Error::unavailable("the engine is shutting down"));
        }
        if identity.display_name.is_some() {
            inner
                .store
                .upsert_user(&identity.user, identity.display_name.as_deref())
                .await?;
        }
        let entry = Arc::new(SessionEntry {
            id: inner.next_session_id(),
            user: identity.user.clone(),
            transport,
            detached: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        // Register first, then load: a join that lands meanwhile finds the user here and
        // makes this session follow it too.
        let mut topics = inner.registry.write().add_session(entry.clone());
        // Coalesced with the other sessions opening now: one store call for many.
        let loaded = inner.loads.conversations_of(&identity.user).await;
        let conversations = match loaded {
            Ok(c) => c,
            Err(e) => {
                inner.detach_session(&entry).await;
                return Err(e);
            }
        };
        topics.extend(
            inner
                .registry
                .write()
                .attach(&entry, conversations.iter().copied()),
        );
        inner.reconcile(topics).await;
        if inner.is_shutting_down() {
            // Shutdown began while this session opened and did not see it.
            entry.closed.store(true, Ordering::Release);
            entry.transport.close(CloseReason::Shutdown);
            inner.detach_session(&entry).await;
            return Err(Error::unavailable("the engine is shutting down"));
        }
        inner.came_online(&identity.user, conversations).await;
        Ok(Session::new(self.clone(), entry, identity))
    }
}

impl Inner {
    /// Removes a session from the registry; when it was the user's last here, the user
    /// goes offline unless another node still holds them.
    pub(crate) async fn detach_session(&self, entry: &Arc<SessionEntry>) {
        if entry.detached.swap(true, Ordering::AcqRel) {
            return;
        }
        let removed = self.registry.write().remove_session(&entry.user, entry.id);
        self.reconcile(removed.topics).await;
        if removed.last {
            self.went_offline_here(&entry.user).await;
        }
    }
}

/// One open connection of one user. Commands go in through [`Session::execute`]; events
/// go out through the connection's transport.
///
/// Close it with [`Session::close`]; dropping it closes it in the background.
pub struct Session {
    engine: Engine,
    entry: Arc<SessionEntry>,
    identity: Identity,
    rate: Mutex<RateLimiter>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.entry.id)
            .field("user", &self.entry.user)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(engine: Engine, entry: Arc<SessionEntry>, identity: Identity) -> Self {
        let limits = &engine.inner.limits;
        let rate = RateLimiter::new(limits.commands_per_second, limits.command_burst);
        Session {
            engine,
            entry,
            identity,
            rate: Mutex::new(rate),
        }
    }

    /// This session's id (unique on this node).
    pub fn id(&self) -> SessionId {
        self.entry.id
    }

    /// The authenticated user.
    pub fn user(&self) -> &UserId {
        &self.entry.user
    }

    /// The identity the authenticator vouched for.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// True once the engine closed this session (slow consumer, shutdown).
    pub fn is_closed(&self) -> bool {
        self.entry.closed.load(Ordering::Acquire) || self.entry.detached.load(Ordering::Acquire)
    }

    /// Runs one command and returns its reply. Events it causes go to the other
    /// sessions concerned (and to this user's other sessions), not back to this one:
    /// the reply stands for them here.
    ///
    /// # Errors
    /// `rate_limited` when the session sends faster than the limits allow; otherwise
    /// the command's own error (`not_found`, `forbidden`, `not_friends`, `invalid`, …).
    /// An error changes nothing.
    pub async fn execute(&self, command: Command) -> Result<Reply> {
        if !self.rate.lock().try_take(self.engine.inner.clock.now()) {
            return Err(Error::rate_limited("too many commands; slow down"));
        }
        let ctx = Ctx::new(&self.engine.inner, &self.entry.user, Some(self.entry.id));
        // Boxed: the largest command's state would otherwise sit inline in every
        // connection's task, idle or not (about 3 KiB each).
        Box::pin(command::run(&ctx, command)).await
    }

    /// Closes the session: it leaves every fan-out list, and the user goes offline when
    /// this was their last connection anywhere.
    pub async fn close(self) {
        self.engine.inner.detach_session(&self.entry).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.entry.detached.load(Ordering::Acquire) {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = self.engine.inner.clone();
            let entry = self.entry.clone();
            handle.spawn(async move { inner.detach_session(&entry).await });
        }
    }
}
