//! `Connect`: one live connection over a bidirectional stream, with the WebSocket's rules.
//!
//! - `hello` is queued before the session opens, so it is always the first frame.
//! - One task reads client frames and runs their commands one at a time, in order;
//!   replies and events share one bounded [`Outbox`] that the response stream drains.
//! - A durable event or a reply that does not fit, or a queued frame the client does not
//!   take within `write_timeout`, ends the stream with `RESOURCE_EXHAUSTED` /
//!   `slow_consumer` at once (the backlog is dropped; the client resumes by seq).
//! - At the credential's expiry the stream ends with `UNAUTHENTICATED` / `token_expired`,
//!   unless `refresh_token` (answered here, never by the engine) handed it a newer one.
//! - A shutdown delivers what is queued, then ends with `UNAVAILABLE` / `shutdown`.
//! - When the client half-closes its side, the replies already queued go out and the
//!   stream ends with `OK`.

pub(crate) mod codec;
mod outbox;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_core::ports::{CloseReason, Credential, Encoder, Identity, SendError, Transport};
use chat_core::{Command, Error, Reply, Session};
use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::error::{status_of, StreamEnd};
use crate::proto;
use crate::state::{GrpcState, LiveGuard};
use crate::PROTOCOL_VERSION;
use chat_proto::{error_frame, reply_frame};
use outbox::{Outbox, Refused};

/// The response stream of `Connect`: encoded server frames, then the status that ends it.
pub(crate) type FrameStream = BoxStream<'static, Result<Bytes, Status>>;

/// How a stream ends.
#[derive(Debug, Clone)]
enum Ending {
    /// The client half-closed, or went away: what is queued goes out, then `OK`.
    Normal,
    /// The server ends it for a reason of its own.
    End(StreamEnd),
    /// The client's side failed (a frame that does not decode, too large): this status.
    Failed(Status),
}

impl Ending {
    /// True when the queued frames go out before the end.
    fn delivers_backlog(&self) -> bool {
        match self {
            Ending::Normal => true,
            Ending::End(end) => end.delivers_backlog(),
            Ending::Failed(_) => false,
        }
    }

    /// The last item of the response stream (none for a normal end: `OK`).
    fn last_item(&self) -> Option<Status> {
        match self {
            Ending::Normal => None,
            Ending::End(end) => Some(end.status()),
            Ending::Failed(status) => Some(status.clone()),
        }
    }
}

/// A first-wins end shared by the engine, the reader and the response stream.
#[derive(Default)]
struct Closer {
    ending: Mutex<Option<Ending>>,
    notify: Notify,
}

impl Closer {
    fn set(&self, ending: Ending) {
        let mut slot = self.ending.lock();
        if slot.is_none() {
            *slot = Some(ending);
            drop(slot);
            self.notify.notify_waiters();
        }
    }

    fn get(&self) -> Option<Ending> {
        self.ending.lock().clone()
    }

    fn is_set(&self) -> bool {
        self.ending.lock().is_some()
    }

    /// Returns once an end was set (at once when it already was).
    async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

/// The stream as the engine sees it: a bounded queue and a close signal.
struct GrpcTransport {
    encoder: Arc<dyn Encoder>,
    outbox: Arc<Outbox>,
    closer: Arc<Closer>,
}

impl Transport for GrpcTransport {
    fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    fn try_send(&self, frame: Bytes) -> Result<(), SendError> {
        if self.closer.is_set() {
            return Err(SendError::Closed);
        }
        self.outbox.try_send(frame).map_err(|e| match e {
            Refused::Full => SendError::Full,
            Refused::Closed => SendError::Closed,
        })
    }

    fn close(&self, reason: CloseReason) {
        self.closer.set(Ending::End(StreamEnd::Engine(reason)));
    }
}

/// Opens a `Connect` stream: authenticates, queues `hello`, opens the session and starts
/// the reader.
///
/// # Errors
/// The refusal, as a status: no valid credential, the server shutting down, the session
/// could not open.
pub(crate) async fn open(
    state: GrpcState,
    request: Request<Streaming<proto::ClientFrame>>,
) -> Result<Response<FrameStream>, Status> {
    let caller = auth::authenticate(&state, request.metadata(), request.extensions())
        .await
        .map_err(|e| status_of(&e))?;
    let Some(guard) = state.enter() else {
        return Err(status_of(&Error::unavailable(
            "the server is shutting down",
        )));
    };
    let inbound = request.into_inner();
    let cfg = state.inner.config.clone();
    let outbox = Arc::new(Outbox::new(cfg.queue_capacity));
    let closer = Arc::new(Closer::default());
    let transport = Arc::new(GrpcTransport {
        encoder: state.inner.encoder.clone(),
        outbox: outbox.clone(),
        closer: closer.clone(),
    });
    let identity = caller.identity;
    // Queued before the session opens, so it is always the first frame.
    let _ = outbox.try_send(hello_frame(&state, &identity));
    let expires = identity.expires_at.map(deadline);
    let session = state
        .inner
        .engine
        .open_session(identity, transport)
        .await
        .map_err(|e| status_of(&e))?;
    let reader = Reader {
        state,
        session,
        outbox: outbox.clone(),
        closer: closer.clone(),
        expires,
    };
    tokio::spawn(reader.run(inbound, guard));
    Ok(Response::new(response_stream(outbox, closer)))
}

fn hello_frame(state: &GrpcState, identity: &Identity) -> Bytes {
    let cfg = &state.inner.config;
    let l = state.inner.engine.limits();
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let hello = proto::Hello {
        protocol: PROTOCOL_VERSION,
        user: identity.user.to_string(),
        display_name: identity.display_name.clone(),
        limits: Some(proto::Limits {
            max_frame_bytes: as_u64(cfg.max_message_bytes),
            max_body_bytes: as_u64(l.max_body_bytes),
            max_history_page: l.max_history_page,
            max_list_page: l.max_list_page,
            max_resume_gap: l.max_resume_gap,
            max_resume_conversations: as_u64(l.max_resume_conversations),
            status_member_limit: l.status_member_limit,
            presence_room_limit: as_u64(l.presence_room_limit),
            max_live_conversations: l.max_live_conversations,
            typing_ttl_ms: l.typing_ttl_ms,
            commands_per_second: l.commands_per_second,
            command_burst: l.command_burst,
            queue_capacity: as_u64(cfg.queue_capacity),
            ping_interval_ms: millis(cfg.ping_interval),
            write_timeout_ms: millis(cfg.write_timeout),
            // The WebSocket's only.
            idle_timeout_ms: 0,
            max_frames_per_window: 0,
            flood_window_ms: 0,
        }),
    };
    chat_proto::hello_frame(hello)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The tokio instant of a wall-clock time (now, when it has passed).
fn deadline(at: chrono::DateTime<chrono::Utc>) -> Instant {
    let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let now = Instant::now();
    // Far beyond any real expiry: a year is as good as never.
    now.checked_add(left)
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

/// The response stream: the queued frames, then the end's status.
fn response_stream(outbox: Arc<Outbox>, closer: Arc<Closer>) -> FrameStream {
    let state = Drain {
        _gone: Gone {
            outbox: outbox.clone(),
            closer: closer.clone(),
        },
        outbox,
        closer,
        draining: false,
        done: false,
    };
    futures::stream::unfold(state, Drain::next).boxed()
}

/// The response stream's state.
struct Drain {
    outbox: Arc<Outbox>,
    closer: Arc<Closer>,
    /// Ends the session when the stream is dropped (the client went away).
    _gone: Gone,
    /// An end that delivers the backlog was set: the rest is drained, then the end.
    draining: bool,
    done: bool,
}

impl Drain {
    async fn next(mut self) -> Option<(Result<Bytes, Status>, Drain)> {
        if self.done {
            return None;
        }
        while !self.draining {
            tokio::select! {
                biased;
                () = self.closer.wait() => {
                    let ending = self.closer.get().unwrap_or(Ending::Normal);
                    if ending.delivers_backlog() {
                        self.draining = true;
                    } else {
                        // Ahead of the backlog, which is dropped: the client resumes.
                        self.outbox.discard();
                        self.done = true;
                        return ending.last_item().map(|s| (Err(s), self));
                    }
                }
                frame = self.outbox.recv() => match frame {
                    Some(frame) => return Some((Ok(frame), self)),
                    None => self.draining = true,
                },
            }
        }
        if let Some(frame) = self.outbox.try_recv() {
            return Some((Ok(frame), self));
        }
        self.done = true;
        let last = self.closer.get().and_then(|e| e.last_item());
        last.map(|s| (Err(s), self))
    }
}

/// Dropped with the response stream: the session ends, later frames are refused.
struct Gone {
    outbox: Arc<Outbox>,
    closer: Arc<Closer>,
}

impl Drop for Gone {
    fn drop(&mut self) {
        self.closer.set(Ending::Normal);
        self.outbox.receiver_gone();
    }
}

/// The task that reads client frames and runs their commands, one at a time.
struct Reader {
    state: GrpcState,
    session: Session,
    outbox: Arc<Outbox>,
    closer: Arc<Closer>,
    /// When the credential expires, if it does.
    expires: Option<Instant>,
}

impl Reader {
    async fn run(mut self, mut inbound: Streaming<proto::ClientFrame>, _guard: LiveGuard) {
        let write_timeout = self.state.inner.config.write_timeout;
        // How often a stalled client is looked for: a quarter of the timeout.
        let mut stall_check =
            tokio::time::interval((write_timeout / 4).max(Duration::from_millis(10)));
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Armed only while the credential expires; moved by `refresh_token`.
        let expiry = tokio::time::sleep_until(self.expires.unwrap_or_else(Instant::now));
        tokio::pin!(expiry);
        loop {
            if self.closer.is_set() {
                break;
            }
            if let Some(at) = self.expires {
                if expiry.deadline() != at {
                    expiry.as_mut().reset(at);
                }
            }
            tokio::select! {
                () = self.closer.wait() => break,
                () = &mut expiry, if self.expires.is_some() => {
                    self.closer.set(Ending::End(StreamEnd::TokenExpired));
                    break;
                }
                _ = stall_check.tick() => {
                    if self.outbox.stalled_for(Instant::now()) >= write_timeout {
                        self.closer.set(Ending::End(StreamEnd::Engine(CloseReason::SlowConsumer)));
                        break;
                    }
                }
                next = inbound.next() => match next {
                    None => {
                        self.closer.set(Ending::Normal);
                        break;
                    }
                    Some(Err(status)) => {
                        self.closer.set(Ending::Failed(status));
                        break;
                    }
                    Some(Ok(frame)) => {
                        if !self.on_frame(frame).await {
                            break;
                        }
                    }
                },
            }
        }
        if !self.closer.get().is_some_and(|e| e.delivers_backlog()) {
            self.outbox.discard();
        }
        // Leaving the fan-out (and maybe going offline) need not hold up the end.
        self.session.close().await;
        self.outbox.finish();
    }

    /// Runs one frame's command and queues its answer; false ends the stream.
    async fn on_frame(&mut self, frame: proto::ClientFrame) -> bool {
        // The timer may not have fired yet: an expired credential runs nothing more.
        if self.expires.is_some_and(|at| at <= Instant::now()) {
            self.closer.set(Ending::End(StreamEnd::TokenExpired));
            return false;
        }
        let (id, command) = match chat_proto::client_command(frame) {
            Ok(decoded) => decoded,
            Err(e) => return self.queue(error_frame(e.request_id, &e.error)),
        };
        let result = match command {
            Command::RefreshToken { token } => self.refresh(&token).await,
            command => self.session.execute(command).await,
        };
        let frame = match result {
            Ok(reply) => reply_frame(id, reply),
            Err(e) => error_frame(id, &e),
        };
        self.queue(frame)
    }

    /// `refresh_token`: the same check as at the start, for the same user; the stream
    /// then lasts until the new credential expires. A refusal changes nothing.
    async fn refresh(&mut self, token: &Credential) -> chat_core::Result<Reply> {
        let check = auth::check(&self.state, token.expose());
        // A slow check does not stretch the old credential past its expiry.
        let identity = match self.expires {
            Some(at) => tokio::time::timeout_at(at, check)
                .await
                .unwrap_or_else(|_| {
                    self.closer.set(Ending::End(StreamEnd::TokenExpired));
                    Err(Error::unauthenticated("the token expired during the check"))
                }),
            None => check.await,
        }?;
        if identity.user != *self.session.user() {
            return Err(Error::forbidden(
                "the token is for another user than this stream's",
            ));
        }
        self.expires = identity.expires_at.map(deadline);
        Ok(Reply::TokenRefreshed {
            expires_at: identity.expires_at,
        })
    }

    /// Queues a reply; one that does not fit cuts the client off (a reply is never
    /// dropped).
    fn queue(&self, frame: Bytes) -> bool {
        if self.session.is_closed() {
            return false;
        }
        match self.outbox.try_send(frame) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.closer
                    .set(Ending::End(StreamEnd::Engine(CloseReason::SlowConsumer)));
                false
            }
            Err(Refused::Closed) => false,
        }
    }
}
