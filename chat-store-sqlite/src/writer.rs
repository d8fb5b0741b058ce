//! The single writer: one std thread owns the write connection and commits queued
//! writes in groups.
//!
//! A write is a [`Job`]: a closure that runs inside the batch transaction and returns a
//! [`Reply`], which the writer calls once the batch has committed (or failed). So a
//! caller's future resolves only after its write is durable, and `seq` is assigned in
//! the transaction that appends (invariants 1 and 2).
//!
//! The writer is the only one writing, so it keeps each conversation's last `seq` in a
//! [`SeqCache`]: an append needs no read-modify-write of `conversations.last_seq`, only
//! one update of it per conversation per batch. When a batch fails the cache is cleared
//! and reloads lazily from disk, so it is never ahead of what is committed.

use std::collections::HashMap;

use chat_core::{ConversationId, Error, Result, Seq};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::row::{map_err, seq_sql};

/// What the writer calls after the commit: `Ok` when the batch committed.
pub(crate) type Reply = Box<dyn FnOnce(Result<(), &Error>) + Send>;
/// One write, run inside the batch transaction.
pub(crate) type Job = Box<dyn FnOnce(&mut Ctx<'_>) -> Reply + Send>;

/// Conversations whose last seq the writer remembers before it starts over.
const SEQ_CACHE_MAX: usize = 100_000;

/// The conversations' last seqs as of the open transaction.
#[derive(Debug, Default)]
pub(crate) struct SeqCache {
    last: HashMap<ConversationId, Seq>,
}

/// What a job sees: the connection (inside the batch transaction) and the seq cache.
pub(crate) struct Ctx<'c> {
    /// The write connection, inside the batch's transaction.
    pub(crate) conn: &'c Connection,
    seqs: &'c mut SeqCache,
    /// Conversations whose `last_seq` this batch moved, written once before commit.
    dirty: &'c mut HashMap<ConversationId, Seq>,
    /// Set when SQLite rolled the whole transaction back by itself: the rest is skipped.
    broken: bool,
}

impl Ctx<'_> {
    /// The conversation's last seq, from the cache or the disk. `not_found` when missing.
    pub(crate) fn last_seq(&mut self, id: ConversationId) -> Result<Seq> {
        if let Some(s) = self.seqs.last.get(&id) {
            return Ok(*s);
        }
        let s: Option<i64> = self
            .conn
            .prepare_cached(crate::sql::LAST_SEQ)
            .and_then(|mut st| {
                st.query_row([id.0.as_bytes()], |r| r.get("last_seq"))
                    .optional()
            })
            .map_err(map_err)?;
        let s = s.ok_or_else(|| Error::not_found(format!("conversation {id}")))?;
        let s = Seq::try_from(s).map_err(|_| Error::internal("negative last_seq"))?;
        self.seqs.last.insert(id, s);
        Ok(s)
    }

    /// Records that `seq` was appended to `id` in this transaction.
    pub(crate) fn appended(&mut self, id: ConversationId, seq: Seq) {
        self.seqs.last.insert(id, seq);
        self.dirty.insert(id, seq);
    }

    /// Forgets a conversation that this transaction deleted.
    pub(crate) fn forget(&mut self, id: ConversationId) {
        self.seqs.last.remove(&id);
        self.dirty.remove(&id);
    }

    /// Runs `f` under a savepoint, so a multi-statement write applies whole or not at all
    /// without failing the rest of the batch.
    pub(crate) fn atomic<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.conn
            .prepare_cached("SAVEPOINT job")
            .and_then(|mut s| s.execute([]))
            .map_err(map_err)?;
        match f(self) {
            Ok(v) => {
                let released = self
                    .conn
                    .prepare_cached("RELEASE job")
                    .and_then(|mut s| s.execute([]));
                if let Err(e) = released {
                    // The job's writes could not be settled: fail the whole batch rather
                    // than commit them under an error reply.
                    self.broken = true;
                    return Err(map_err(e));
                }
                Ok(v)
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    // Undo the job's partial writes; the batch goes on.
                    let undo = self.conn.execute_batch("ROLLBACK TO job; RELEASE job");
                    if let Err(u) = undo {
                        tracing::error!("rolling back a failed write: {u}");
                        self.broken = true;
                    }
                }
                Err(e)
            }
        }
    }
}

/// Wraps a write closure as a [`Job`] whose result reaches `tx` after the commit.
pub(crate) fn job<T: Send + 'static>(
    f: impl FnOnce(&mut Ctx<'_>) -> Result<T> + Send + 'static,
    tx: oneshot::Sender<Result<T>>,
) -> Job {
    Box::new(move |ctx: &mut Ctx<'_>| -> Reply {
        let out = if ctx.broken {
            Err(Error::unavailable("the batch transaction failed"))
        } else {
            let out = f(ctx);
            if out.is_err() && ctx.conn.is_autocommit() {
                // SQLite rolled back the whole transaction (I/O error, full disk, …).
                ctx.broken = true;
            }
            out
        };
        Box::new(move |commit: Result<(), &Error>| {
            let result = match commit {
                Ok(()) => out,
                Err(e) => Err(e.clone()),
            };
            // The caller may have gone away; its write is committed (or not) regardless.
            let _ = tx.send(result);
        })
    })
}

/// Runs the writer until every sender is dropped: waits for one job, takes whatever else
/// is queued up to `max_batch`, runs them all in one transaction, commits, then replies.
pub(crate) fn run(mut conn: Connection, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut seqs = SeqCache::default();
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    let mut replies: Vec<Reply> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&mut conn, &mut seqs, &mut jobs, &mut replies);
        if outcome.is_err() || seqs.last.len() > SEQ_CACHE_MAX {
            // Never let the cache run ahead of the disk, nor grow without bound; it
            // reloads lazily.
            seqs.last.clear();
        }
        let commit = outcome.as_ref().map(|_| ());
        for reply in replies.drain(..) {
            reply(commit);
        }
    }
    tracing::debug!("sqlite writer stopped");
}

fn run_batch(
    conn: &mut Connection,
    seqs: &mut SeqCache,
    jobs: &mut Vec<Job>,
    replies: &mut Vec<Reply>,
) -> Result<()> {
    let begun = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
        .map_err(map_err);
    let mut dirty = HashMap::new();
    let mut ctx = Ctx {
        conn,
        seqs,
        dirty: &mut dirty,
        broken: begun.is_err(),
    };
    for job in jobs.drain(..) {
        replies.push(job(&mut ctx));
    }
    let broken = ctx.broken;
    begun?;
    let result = if broken {
        Err(Error::unavailable("the write transaction was rolled back"))
    } else {
        finish(conn, &dirty)
    };
    if result.is_err() && !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!("rollback after a failed batch: {e}");
        }
    }
    result
}

fn finish(conn: &Connection, dirty: &HashMap<ConversationId, Seq>) -> Result<()> {
    let mut up = conn
        .prepare_cached(crate::sql::SET_LAST_SEQ)
        .map_err(map_err)?;
    for (id, seq) in dirty {
        up.execute(rusqlite::params![id.0.as_bytes(), seq_sql(*seq)])
            .map_err(map_err)?;
    }
    conn.prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map_err(map_err)?;
    Ok(())
}
