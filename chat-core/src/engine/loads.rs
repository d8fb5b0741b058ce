//! Coalesced store reads: a connect storm's session opens become a few store calls.
//!
//! Every session that opens asks the store for the user's conversations, and (to tell
//! co-members and friends that the user came online) for their friends. Asked one by one,
//! ten thousand sessions arriving together are twenty thousand round trips, each on a
//! pooled connection of its own: the pool runs dry and sessions are refused while the
//! database idles between tiny queries.
//!
//! Here each kind of read has one queue. The first caller to find no batch running starts
//! one in a task of its own; it takes up to [`MAX_BATCH`] callers off the queue, asks the
//! store for all of them in one call (`conversations_of_many`, `friends_of_many`), hands
//! each caller its answer, and goes on while callers are waiting. So each kind holds at
//! most one pooled connection at a time, a batch fills while the previous one runs, and
//! a lone session pays one task hand-off.
//!
//! The wait is bounded: a caller still queued [`MAX_WAIT`] after it asked gets
//! `unavailable` with a retry hint, as a pool that cannot serve in time would answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, UserId};
use crate::ports::Store;

/// The most callers answered by one store call.
pub(crate) const MAX_BATCH: usize = 512;

/// How long a caller may wait in the queue before it is refused.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(10);

/// The future of a batched store read.
type Batch<'a, V> = Pin<Box<dyn Future<Output = Result<Vec<V>>> + Send + 'a>>;

/// A batched store read: the answers for `users`, in their order.
type Fetch<V> = for<'a> fn(&'a dyn Store, &'a [UserId], u32) -> Batch<'a, V>;

/// The engine's coalesced reads.
pub(crate) struct Loads {
    conversations: Arc<Coalesced<Vec<ConversationId>>>,
    friends: Arc<Coalesced<Vec<UserId>>>,
}

impl std::fmt::Debug for Loads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loads").finish_non_exhaustive()
    }
}

impl Loads {
    /// Queues for `store`; `conversations` and `friends` cap each user's list.
    pub(crate) fn new(store: Arc<dyn Store>, conversations: u32, friends: u32) -> Self {
        Loads {
            conversations: Arc::new(Coalesced::new(
                store.clone(),
                conversations,
                |s, users, limit| s.conversations_of_many(users, limit),
            )),
            friends: Arc::new(Coalesced::new(store, friends, |s, users, limit| {
                s.friends_of_many(users, limit)
            })),
        }
    }

    /// The user's conversations (as `Store::conversations_of`), coalesced.
    pub(crate) async fn conversations_of(&self, user: &UserId) -> Result<Vec<ConversationId>> {
        Coalesced::load(&self.conversations, user).await
    }

    /// The user's friends (accepted only), coalesced.
    pub(crate) async fn friends_of(&self, user: &UserId) -> Result<Vec<UserId>> {
        Coalesced::load(&self.friends, user).await
    }
}

struct Waiting<V> {
    user: UserId,
    since: Instant,
    answer: oneshot::Sender<Result<V>>,
}

struct Queue<V> {
    waiting: Vec<Waiting<V>>,
    /// A task is taking batches off the queue.
    running: bool,
}

struct Coalesced<V> {
    store: Arc<dyn Store>,
    limit: u32,
    fetch: Fetch<V>,
    queue: Mutex<Queue<V>>,
}

impl<V: Clone + Send + 'static> Coalesced<V> {
    fn new(store: Arc<dyn Store>, limit: u32, fetch: Fetch<V>) -> Self {
        Coalesced {
            store,
            limit,
            fetch,
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                running: false,
            }),
        }
    }

    async fn load(this: &Arc<Self>, user: &UserId) -> Result<V> {
        let (answer, rx) = oneshot::channel();
        let start = {
            let mut q = this.queue.lock();
            q.waiting.push(Waiting {
                user: user.clone(),
                since: Instant::now(),
                answer,
            });
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            tokio::spawn(Self::drain(this.clone()));
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::unavailable("the store read was abandoned")))
    }

    /// Answers batches until the queue is empty.
    ///
    /// If the task is dropped before it finishes (runtime shutdown), even before its
    /// first poll, the guard clears `running` and drops the queued callers' senders:
    /// they get `unavailable`, and a later caller starts a new task instead of waiting
    /// for nobody.
    fn drain(this: Arc<Self>) -> impl Future<Output = ()> + Send {
        struct Stop<V>(Option<Arc<Coalesced<V>>>);
        impl<V> Stop<V> {
            fn disarm(&mut self) {
                self.0 = None;
            }
        }
        impl<V> Drop for Stop<V> {
            fn drop(&mut self) {
                if let Some(this) = self.0.take() {
                    let mut q = this.queue.lock();
                    q.running = false;
                    q.waiting.clear();
                }
            }
        }
        let mut stop = Stop(Some(this.clone()));
        async move {
            Self::answer_batches(&this).await;
            // Finished normally: `answer_batches` cleared `running` under the lock.
            stop.disarm();
        }
    }

    async fn answer_batches(this: &Arc<Self>) {
        loop {
            let batch: Vec<Waiting<V>> = {
                let mut q = this.queue.lock();
                if q.waiting.is_empty() {
                    q.running = false;
                    return;
                }
                let n = q.waiting.len().min(MAX_BATCH);
                q.waiting.drain(..n).collect()
            };
            let now = Instant::now();
            let (late, batch): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .partition(|w| now.duration_since(w.since) > MAX_WAIT);
            for w in late {
                let _ = w.answer.send(Err(Error::unavailable(
                    "the store is too busy to load this session; try again",
                )
                .with_retry_after(Duration::from_secs(1))));
            }
            if batch.is_empty() {
                continue;
            }
            let users: Vec<UserId> = batch.iter().map(|w| w.user.clone()).collect();
            match (this.fetch)(this.store.as_ref(), &users, this.limit).await {
                Ok(lists) if lists.len() == batch.len() => {
                    for (w, list) in batch.into_iter().zip(lists) {
                        let _ = w.answer.send(Ok(list));
                    }
                }
                Ok(lists) => {
                    let e = Error::internal(format!(
                        "the store answered {} of {} users",
                        lists.len(),
                        batch.len()
                    ));
                    for w in batch {
                        let _ = w.answer.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for w in batch {
                        let _ = w.answer.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::memory::MemoryStore;
    use crate::model::{NewRoom, Visibility};

    static BATCHES: AtomicUsize = AtomicUsize::new(0);

    /// `conversations_of_many`, counted, and slow enough (5 ms) for callers to pile up.
    fn counted<'a>(
        store: &'a dyn Store,
        users: &'a [UserId],
        limit: u32,
    ) -> Batch<'a, Vec<ConversationId>> {
        BATCHES.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            store.conversations_of_many(users, limit).await
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_loads_share_store_calls_and_each_gets_its_own_answer() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let user = |i: usize| UserId::new(format!("u{i}")).expect("user id");
        // User i is alone in room i.
        let mut rooms = Vec::new();
        for i in 0..300 {
            let c = store
                .create_room(NewRoom {
                    id: ConversationId(uuid::Uuid::now_v7()),
                    name: format!("room-{i}"),
                    visibility: Visibility::Public,
                    created_by: user(i),
                    created_at: chrono::Utc::now(),
                })
                .await
                .expect("room");
            rooms.push(c.id);
        }
        let queue = Arc::new(Coalesced::new(store, 10, counted));
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move { (i, Coalesced::load(&queue, &user(i)).await) })
            })
            .collect();
        for t in tasks {
            let (i, got) = t.await.expect("task");
            assert_eq!(got.expect("loaded"), vec![rooms[i]], "user u{i}");
        }
        let batches = BATCHES.load(Ordering::Relaxed);
        assert!(
            batches <= 300 / 10,
            "300 concurrent loads took {batches} store calls"
        );
        let q = queue.queue.lock();
        assert!(!q.running && q.waiting.is_empty(), "the drain task ended");
    }

    #[test]
    fn a_drain_task_dropped_with_its_runtime_leaves_the_queue_usable() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let queue = Arc::new(Coalesced::new(store, 10, |s, users, limit| {
            s.conversations_of_many(users, limit)
        }));
        let ann = UserId::new("ann").expect("user id");
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        first.block_on(async {
            // One poll queues the load and spawns the drain task, which never runs.
            let mut load = Box::pin(Coalesced::load(&queue, &ann));
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(load.as_mut().poll(cx))).await;
            assert!(polled.is_pending());
        });
        drop(first);
        {
            let q = queue.queue.lock();
            assert!(
                !q.running && q.waiting.is_empty(),
                "the guard cleared the queue"
            );
        }
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let got = second.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), Coalesced::load(&queue, &ann)).await
        });
        assert_eq!(got.expect("answered, not stuck").ok(), Some(Vec::new()));
    }
}
