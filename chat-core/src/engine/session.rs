//! A session: one authenticated connection's view of the engine.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::command::{self, Command, Ctx, Reply};
use super::{Engine, SessionEntry};
use crate::error::{Error, Result};
use crate::ids::{SessionId, UserId};
use crate::model::RateLimiter;
use crate::ports::Identity;

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
        let ctx = Ctx {
            engine: &self.engine,
            user: &self.entry.user,
            session: Some(self.entry.id),
        };
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
