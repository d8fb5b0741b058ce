//! Presence leases in a JetStream key-value bucket, and this client's view of them.
//!
//! Writes go to the bucket: one key per (user, node), put on every renewal (concurrently,
//! [`PUT_CONCURRENCY`] at a time) and deleted when the user's last connection on that
//! node closes. The bucket's `max_age` removes the keys of a node that died.
//!
//! Deleted, not purged: a purge is a rollup, and on nats-server before 2.9.12 a subject
//! purge moves every consumer of the stream past messages it has not delivered yet
//! (nats-io/nats-server#3838), so two concurrent purges made the watches skip one of
//! them. A delete is a plain marker that replaces the value (history 1) and ends with
//! `max_age` like any entry.
//!
//! Reads come from memory: a task watches the whole bucket (`watch_with_history(">")`:
//! the newest entry of every key, then every change) into a [`View`] that holds, per user, each
//! node's lease and when it ends (the entry's server time plus the lease, since an entry
//! that `max_age` removes leaves no marker behind). Before answering, [`Presence::online`]
//! asks the server for the bucket's last sequence and waits until the view has applied
//! it: one round trip for any number of users, and a renewal that returned on another
//! node is seen. After a reconnect the watch is made again and replays the bucket; until
//! it has caught up, `online` waits for it (bounded), so a stale view is never trusted
//! past the server's word.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream;
use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use bytes::Bytes;
use chat_core::ids::{NodeId, UserId};
use chat_core::{Error, Result};
use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::NatsBusConfig;
use crate::subject::{lease_key, parse_lease_key, user_token};
use crate::wire;

/// How many lease writes of one renewal are in flight at once.
pub(crate) const PUT_CONCURRENCY: usize = 256;

/// Every key of the bucket, as a watch filter.
const ALL_KEYS: &str = ">";

/// The longest pause between two attempts to (re)make the watch.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(2);

/// Per user token, each node's lease end.
#[derive(Debug, Default)]
pub(crate) struct View {
    leases: HashMap<String, HashMap<NodeId, Instant>>,
}

impl View {
    /// Applies one entry of the bucket, seen at `now` (monotonic) and `wall` (the clock
    /// the server's timestamps are compared with).
    fn apply(&mut self, entry: &kv::Entry, max_age: Duration, now: Instant, wall: SystemTime) {
        let Some((user, node)) = parse_lease_key(&entry.key) else {
            return;
        };
        let ends = match entry.operation {
            Operation::Put => {
                let lease = wire::decode_lease(&entry.value).map_or(max_age, |t| t.min(max_age));
                // A timestamp ahead of this clock counts as written now.
                let age = wall
                    .duration_since(SystemTime::from(entry.created))
                    .unwrap_or_default();
                lease
                    .checked_sub(age)
                    .filter(|left| !left.is_zero())
                    .map(|left| now + left)
            }
            Operation::Delete | Operation::Purge => None,
        };
        match ends {
            Some(ends) => {
                self.leases
                    .entry(user.to_owned())
                    .or_default()
                    .insert(node, ends);
            }
            None => {
                if let Some(nodes) = self.leases.get_mut(user) {
                    nodes.remove(&node);
                    if nodes.is_empty() {
                        self.leases.remove(user);
                    }
                }
            }
        }
    }

    fn is_online(&self, user: &UserId, now: Instant) -> bool {
        self.leases
            .get(&user_token(user))
            .is_some_and(|nodes| nodes.values().any(|ends| *ends > now))
    }

    /// Forgets ended leases (memory only; answers never count them).
    fn sweep(&mut self, now: Instant) {
        self.leases.retain(|_, nodes| {
            nodes.retain(|_, ends| *ends > now);
            !nodes.is_empty()
        });
    }
}

/// The bucket, the view, and the task that keeps the view.
pub(crate) struct Presence {
    kv: kv::Store,
    /// The bucket's `max_age`, as the server has it.
    max_age: Duration,
    timeout: Duration,
    view: Arc<Mutex<View>>,
    /// The highest stream sequence the current watch has applied (0 while it is made).
    applied: watch::Sender<u64>,
    /// Asks the watch task to make a new watch (after a reconnect).
    rewatch: Arc<Notify>,
    watcher: JoinHandle<()>,
    /// The users each node of this client holds leases for, to delete on detach.
    own: Mutex<HashMap<NodeId, HashSet<UserId>>>,
    warned_ttl: AtomicBool,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("bucket", &self.kv.name)
            .field("max_age", &self.max_age)
            .field("users", &self.view.lock().leases.len())
            .field("applied", &*self.applied.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

fn unavailable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::unavailable(format!("NATS presence bucket: {what}")).with_source(e)
}

/// Opens the bucket, creating it when it does not exist.
///
/// The bucket's stream is created directly, with the settings `create_key_value` would
/// give it: that call first reads the account's info, which async-nats 0.51 cannot parse
/// from a 2.9 server (it requires `reserved_memory`, added in 2.10).
async fn open_bucket(js: &jetstream::Context, config: &NatsBusConfig) -> Result<kv::Store> {
    let bucket = config.presence_bucket.as_str();
    if let Ok(kv) = js.get_key_value(bucket).await {
        return Ok(kv);
    }
    let created = js
        .create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("chat presence leases: {user}.{node}".to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: config.presence_ttl,
            storage: StorageType::File,
            num_replicas: config.presence_replicas,
            allow_rollup: true,
            deny_delete: true,
            deny_purge: false,
            allow_direct: true,
            discard: DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    // Created, or another node created it meanwhile (perhaps with other settings).
    let opened = js.get_key_value(bucket).await;
    match (created, opened) {
        (_, Ok(kv)) => Ok(kv),
        (Err(e), Err(_)) => Err(unavailable("cannot create the bucket", e)),
        (Ok(_), Err(e)) => Err(unavailable("cannot open the bucket", e)),
    }
}

impl Presence {
    /// Opens (or creates) the bucket and starts watching it.
    pub(crate) async fn open(js: &jetstream::Context, config: &NatsBusConfig) -> Result<Self> {
        let kv = open_bucket(js, config).await?;
        let max_age = match kv.stream.cached_info().config.max_age {
            // A bucket without max_age (made by hand) keeps dead nodes' leases for ever;
            // the configured TTL then bounds them in the view.
            d if d.is_zero() => {
                tracing::warn!(
                    bucket = %config.presence_bucket,
                    "the presence bucket has no max_age: leases of dead nodes stay in it"
                );
                config.presence_ttl
            }
            d => d,
        };
        if max_age != config.presence_ttl {
            tracing::warn!(
                bucket = %config.presence_bucket,
                ?max_age,
                configured = ?config.presence_ttl,
                "the presence bucket exists with another max_age, which rules"
            );
        }
        let view = Arc::new(Mutex::new(View::default()));
        let (applied, _) = watch::channel(0);
        let rewatch = Arc::new(Notify::new());
        let watcher = tokio::spawn(watch_loop(
            kv.clone(),
            max_age,
            view.clone(),
            applied.clone(),
            rewatch.clone(),
        ));
        Ok(Presence {
            kv,
            max_age,
            timeout: config.request_timeout,
            view,
            applied,
            rewatch,
            watcher,
            own: Mutex::new(HashMap::new()),
            warned_ttl: AtomicBool::new(false),
        })
    }

    /// Makes the watch again (the connection came back).
    pub(crate) fn rewatch(&self) {
        self.rewatch.notify_one();
    }

    /// Puts `users`' leases on `node`, all at once.
    pub(crate) async fn renew(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        if ttl > self.max_age && !self.warned_ttl.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                ?ttl,
                max_age = ?self.max_age,
                "presence leases asked for longer than the bucket's max_age end at max_age; \
                 renew more often than that (this is logged once)"
            );
        }
        {
            let mut own = self.own.lock();
            own.entry(node).or_default().extend(users.iter().cloned());
        }
        let value = Bytes::from(wire::encode_lease(ttl));
        // Owned keys: a stream of futures borrowing the caller's slice is not `Send`
        // for every lifetime, which the `async-trait` future needs.
        let keys: Vec<String> = users.iter().map(|u| lease_key(u, node)).collect();
        let kv = &self.kv;
        let puts = futures::stream::iter(keys)
            .map(|key| kv.put(key, value.clone()))
            .buffer_unordered(PUT_CONCURRENCY)
            .collect::<Vec<_>>();
        let results = tokio::time::timeout(self.timeout, puts)
            .await
            .map_err(|e| unavailable("renewing leases timed out", e))?;
        match results.into_iter().find_map(Result::err) {
            Some(e) => Err(unavailable("renewing leases", e)),
            None => Ok(()),
        }
    }

    /// Deletes `user`'s lease on `node`.
    pub(crate) async fn drop_lease(&self, node: NodeId, user: &UserId) -> Result<()> {
        {
            let mut own = self.own.lock();
            if let Some(users) = own.get_mut(&node) {
                users.remove(user);
                if users.is_empty() {
                    own.remove(&node);
                }
            }
        }
        tokio::time::timeout(self.timeout, self.kv.delete(lease_key(user, node)))
            .await
            .map_err(|e| unavailable("dropping a lease timed out", e))?
            .map_err(|e| unavailable("dropping a lease", e))
    }

    /// Deletes every lease `node` holds through this client (it detaches). Best effort:
    /// what fails ends with `max_age`.
    pub(crate) async fn drop_node(&self, node: NodeId) {
        let users = self.own.lock().remove(&node).unwrap_or_default();
        let keys: Vec<String> = users.iter().map(|u| lease_key(u, node)).collect();
        let kv = &self.kv;
        let deletes = futures::stream::iter(keys)
            .map(|key| kv.delete(key))
            .buffer_unordered(PUT_CONCURRENCY)
            .collect::<Vec<_>>();
        match tokio::time::timeout(self.timeout, deletes).await {
            Ok(results) => {
                if let Some(e) = results.into_iter().find_map(Result::err) {
                    tracing::debug!(error = %e, %node, "deleting a detached node's leases");
                }
            }
            Err(_) => tracing::debug!(%node, "deleting a detached node's leases timed out"),
        }
    }

    /// Which of `users` hold a live lease, once the view has caught up with the bucket
    /// as the server had it when asked (`connected`: whether to ask at all).
    pub(crate) async fn online(&self, users: &[UserId], connected: bool) -> Vec<UserId> {
        if users.is_empty() {
            return Vec::new();
        }
        if connected {
            self.catch_up().await;
        }
        let now = Instant::now();
        let view = self.view.lock();
        users
            .iter()
            .filter(|u| view.is_online(u, now))
            .cloned()
            .collect()
    }

    /// Waits until the view holds everything the bucket held a moment ago. On a failure
    /// (server gone, slow) the view answers as it is: leases still end by themselves.
    async fn catch_up(&self) {
        let info = match tokio::time::timeout(self.timeout, self.kv.stream.get_info()).await {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "presence: the bucket's state; answering from the view");
                return;
            }
            Err(_) => {
                tracing::debug!("presence: the bucket's state timed out; answering from the view");
                return;
            }
        };
        if info.state.messages == 0 {
            return; // nothing left to see: every lease ended
        }
        let target = info.state.last_sequence;
        tracing::trace!(
            target,
            messages = info.state.messages,
            applied = *self.applied.borrow(),
            "presence: catching up"
        );
        let mut applied = self.applied.subscribe();
        if tokio::time::timeout(self.timeout, applied.wait_for(|a| *a >= target))
            .await
            .is_err()
        {
            tracing::debug!(
                target,
                "presence: the watch did not catch up; answering from the view"
            );
        }
    }

    /// Whether the bucket answers (one round trip).
    pub(crate) async fn ping(&self) -> Result<()> {
        tokio::time::timeout(self.timeout, self.kv.stream.get_info())
            .await
            .map_err(|e| unavailable("no answer", e))?
            .map(|_| ())
            .map_err(|e| unavailable("no answer", e))
    }
}

/// Keeps `view` in step with the bucket: a watch of every key, made again on request
/// or when it ends, with ended leases swept once per `max_age`.
async fn watch_loop(
    kv: kv::Store,
    max_age: Duration,
    view: Arc<Mutex<View>>,
    applied: watch::Sender<u64>,
    rewatch: Arc<Notify>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        // Until the new watch has replayed the bucket, `online` waits for it.
        applied.send_replace(0);
        // With history: the newest entry of every key, then every change (`watch_all`
        // would deliver new changes only, and a client would miss the leases already
        // in the bucket).
        let mut entries = match kv.watch_with_history(ALL_KEYS).await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, "presence: watching the bucket; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = rewatch.notified() => {}
                }
                backoff = (backoff * 2).min(MAX_WATCH_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let mut sweep = tokio::time::interval(max_age.max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                () = rewatch.notified() => break,
                _ = sweep.tick() => view.lock().sweep(Instant::now()),
                entry = entries.next() => match entry {
                    Some(Ok(entry)) => {
                        tracing::trace!(key = %entry.key, revision = entry.revision, op = ?entry.operation, "presence: applied");
                        view.lock().apply(&entry, max_age, Instant::now(), SystemTime::now());
                        applied.send_if_modified(|a| {
                            let newer = entry.revision > *a;
                            if newer {
                                *a = entry.revision;
                            }
                            newer
                        });
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "presence: the watch failed; watching again");
                        break;
                    }
                    None => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_core::ids::NodeId;
    use uuid::Uuid;

    use super::*;

    fn entry(key: &str, op: Operation, value: &[u8], created: SystemTime) -> kv::Entry {
        kv::Entry {
            bucket: "b".to_owned(),
            key: key.to_owned(),
            value: Bytes::copy_from_slice(value),
            revision: 1,
            delta: 0,
            created: created.into(),
            operation: op,
            seen_current: true,
        }
    }

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn a_lease_ends_at_its_write_time_plus_the_shorter_of_its_ttl_and_max_age() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let max_age = Duration::from_secs(30);
        let (alice, a, b) = (
            user("alice"),
            NodeId(Uuid::from_u128(1)),
            NodeId(Uuid::from_u128(2)),
        );
        let mut view = View::default();
        // Written 1 s ago for 2 s: ends in 1 s.
        let short = wire::encode_lease(Duration::from_secs(2));
        view.apply(
            &entry(
                &lease_key(&alice, a),
                Operation::Put,
                &short,
                wall - Duration::from_secs(1),
            ),
            max_age,
            now,
            wall,
        );
        assert!(view.is_online(&alice, now + Duration::from_millis(900)));
        assert!(!view.is_online(&alice, now + Duration::from_millis(1100)));
        // Asked for 60 s on a 30 s bucket: ends with max_age.
        let long = wire::encode_lease(Duration::from_secs(60));
        view.apply(
            &entry(&lease_key(&alice, b), Operation::Put, &long, wall),
            max_age,
            now,
            wall,
        );
        assert!(view.is_online(&alice, now + Duration::from_secs(29)));
        assert!(!view.is_online(&alice, now + Duration::from_secs(31)));
        // Already over when seen (replayed after a long disconnect): not online.
        let bob = user("bob");
        view.apply(
            &entry(
                &lease_key(&bob, a),
                Operation::Put,
                &short,
                wall - Duration::from_secs(5),
            ),
            max_age,
            now,
            wall,
        );
        assert!(!view.is_online(&bob, now));
        // A purge ends one node's lease only.
        view.apply(
            &entry(&lease_key(&alice, a), Operation::Purge, b"", wall),
            max_age,
            now,
            wall,
        );
        assert!(view.is_online(&alice, now));
        view.apply(
            &entry(&lease_key(&alice, b), Operation::Delete, b"", wall),
            max_age,
            now,
            wall,
        );
        assert!(!view.is_online(&alice, now));
        assert!(view.leases.is_empty(), "{view:?}");
        // Keys this crate did not write are ignored.
        view.apply(
            &entry("stranger", Operation::Put, &short, wall),
            max_age,
            now,
            wall,
        );
        assert!(view.leases.is_empty());
    }

    #[test]
    fn sweeping_forgets_ended_leases_only() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let max_age = Duration::from_secs(30);
        let mut view = View::default();
        for (name, secs) in [("a", 1), ("b", 10)] {
            let value = wire::encode_lease(Duration::from_secs(secs));
            let key = lease_key(&user(name), NodeId(Uuid::from_u128(1)));
            view.apply(
                &entry(&key, Operation::Put, &value, wall),
                max_age,
                now,
                wall,
            );
        }
        view.sweep(now + Duration::from_secs(2));
        assert_eq!(view.leases.len(), 1);
        assert!(view.is_online(&user("b"), now + Duration::from_secs(2)));
    }
}
