//! Batched appends (group commit).
//!
//! Callers put their message on a channel and wait on a oneshot. A background task
//! drains the channel into batches of up to `max_batch` and writes each batch in one
//! transaction of five prepared statements whatever its size:
//!
//! 1. look up the batch's (sender, client id) pairs that already exist (retries);
//! 2. lock the batch's conversations, sorted by id, so two batches that share several
//!    conversations take the locks in the same order and cannot deadlock, and read
//!    their `last_seq`;
//! 3. assign seqs in arrival order;
//! 4. insert every new message with one `INSERT … SELECT FROM unnest(…)`;
//! 5. move every conversation's `last_seq` with one `UPDATE … FROM unnest(…)`;
//!
//! then commits, and only then answers each caller (invariant 2). Up to
//! `append_writers` batches (default one) are in flight at once; while they are, the next
//! batch fills.
//!
//! When another node commits the same (sender, client id) between steps 1 and 4, the
//! insert hits the unique index, the whole transaction rolls back (so no seq is lost)
//! and the batch is retried: step 1 now finds the original, returned as a duplicate.

use std::collections::HashMap;
use std::sync::Arc;

use chat_core::model::{Appended, Message, NewMessage};
use chat_core::{Error as CoreError, Result as CoreResult};
use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::error::{map_pg, map_pool};
use crate::{rows, sql};

/// How often a batch is retried after a lost race (client id, deadlock, serialization).
const MAX_ATTEMPTS: usize = 5;

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<CoreResult<Appended>>,
}

/// The handle callers use; the writer task stops when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("id", &self.message.id).finish()
    }
}

impl Appender {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn spawn(pool: Pool, max_batch: usize, writers: usize) -> Self {
        let (jobs, rx) = mpsc::channel(max_batch.saturating_mul(writers).saturating_mul(4));
        tokio::spawn(run(pool, rx, max_batch, writers));
        Appender { jobs }
    }

    /// Queues one message and waits for its commit.
    pub(crate) async fn append(&self, message: NewMessage) -> CoreResult<Appended> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { message, reply })
            .await
            .map_err(|_| CoreError::unavailable("the append writer has stopped"))?;
        answer
            .await
            .map_err(|_| CoreError::unavailable("the append writer stopped before answering"))?
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Job>, max_batch: usize, writers: usize) {
    let slots = Arc::new(Semaphore::new(writers));
    loop {
        // Take a writer slot first: while every writer is busy, jobs pile up in the
        // channel and the next batch is larger.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = Vec::with_capacity(max_batch.min(1024));
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            write(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Writes a batch and answers every job in it.
async fn write(pool: &Pool, jobs: Vec<Job>) {
    let (jobs, rejected): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| valid(&j.message).is_ok());
    for job in rejected {
        let answer = valid(&job.message).and_then(|()| Err(unreachable_append_err()));
        let _ = job.reply.send(answer);
    }
    if jobs.is_empty() {
        return;
    }
    let messages: Vec<&NewMessage> = jobs.iter().map(|j| &j.message).collect();
    match commit(pool, &messages).await {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
        }
        // A data error in one message must not fail the others: write them one by one.
        Err(e) if jobs.len() > 1 && !is_unavailable(&e) => {
            tracing::warn!(error = %e, size = jobs.len(), "append batch failed; retrying one by one");
            for job in jobs {
                let answer = match commit(pool, &[&job.message]).await {
                    Ok(mut a) => a.pop().unwrap_or_else(|| Err(unreachable_append_err())),
                    Err(e) => Err(e),
                };
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

fn unreachable_append_err() -> CoreError {
    CoreError::internal("append batch returned no answer")
}

fn is_unavailable(e: &CoreError) -> bool {
    e.code() == chat_core::ErrorCode::Unavailable
}

/// What PostgreSQL cannot store in `text`.
fn valid(m: &NewMessage) -> CoreResult<()> {
    if m.body.contains('\0') || m.client_id.as_deref().is_some_and(|c| c.contains('\0')) {
        return Err(CoreError::invalid(
            "a message body or client id must not contain NUL",
        ));
    }
    Ok(())
}

/// Writes `messages` in one transaction, on a pooled connection, retrying lost races.
/// One answer per message, in order.
///
/// # Errors
/// The error of the whole transaction (nothing of it was committed, or — when the
/// connection broke during COMMIT — it is unknown, and `unavailable` says so).
pub(crate) async fn commit(
    pool: &Pool,
    messages: &[&NewMessage],
) -> CoreResult<Vec<CoreResult<Appended>>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = pool.get().await.map_err(|e| map_pool(pool, e))?;
        match transaction(&mut client, messages).await {
            Ok(answers) => return Ok(answers),
            Err(TxError::Pg(e)) if attempt < MAX_ATTEMPTS && lost_race(&e) => {
                tracing::debug!(error = %e, attempt, "append batch lost a race; retrying");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A unique violation on the client-id index (another node committed the same retry),
/// a deadlock or a serialization failure: the transaction rolled back and may be rerun.
fn lost_race(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        (*db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("messages_client_id"))
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
            || *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Where one message of the batch ends up.
enum Slot {
    /// Already stored (a retry of a committed append).
    Existing(Box<Message>),
    /// New: its index in the insert arrays.
    Fresh(usize),
    /// A retry of a message earlier in this same batch: that message's index.
    SameAs(usize),
    /// Its conversation does not exist.
    Missing,
}

async fn transaction(
    client: &mut deadpool_postgres::Object,
    messages: &[&NewMessage],
) -> Result<Vec<CoreResult<Appended>>, TxError> {
    let tx = client.transaction().await?;

    // 1. Retries of committed appends.
    let mut senders: Vec<&str> = Vec::new();
    let mut client_ids: Vec<&str> = Vec::new();
    for m in messages {
        if let Some(c) = &m.client_id {
            senders.push(m.sender.as_str());
            client_ids.push(c);
        }
    }
    let mut existing: HashMap<(String, String), Message> = HashMap::new();
    if !senders.is_empty() {
        let stmt = tx.prepare_cached(sql::APPEND_FIND_RETRIES).await?;
        for row in tx.query(&stmt, &[&senders, &client_ids]).await? {
            let m = rows::message(&row).map_err(TxError::Core)?;
            if let Some(c) = m.client_id.clone() {
                existing.insert((m.sender.as_str().to_owned(), c), m);
            }
        }
    }

    // 2. Lock the conversations in id order and read their last seq.
    let mut conv_ids: Vec<Uuid> = messages.iter().map(|m| m.conversation.0).collect();
    conv_ids.sort_unstable();
    conv_ids.dedup();
    let stmt = tx.prepare_cached(sql::APPEND_LOCK_CONVERSATIONS).await?;
    let mut last: HashMap<Uuid, i64> = HashMap::with_capacity(conv_ids.len());
    for row in tx.query(&stmt, &[&conv_ids]).await? {
        last.insert(row.try_get("id")?, row.try_get("last_seq")?);
    }

    // 3. Assign seqs in arrival order.
    let n = messages.len();
    let mut slots = Vec::with_capacity(n);
    let mut fresh_keys: HashMap<(&str, &str), usize> = HashMap::new();
    let mut ins_conv = Vec::with_capacity(n);
    let mut ins_seq = Vec::with_capacity(n);
    let mut ins_id = Vec::with_capacity(n);
    let mut ins_sender = Vec::with_capacity(n);
    let mut ins_client = Vec::with_capacity(n);
    let mut ins_kind = Vec::with_capacity(n);
    let mut ins_body = Vec::with_capacity(n);
    let mut ins_at = Vec::with_capacity(n);
    let mut ins_reply_to = Vec::with_capacity(n);
    let mut ins_thread = Vec::with_capacity(n);
    let mut ins_attachments = Vec::with_capacity(n);
    let mut replies: (Vec<Uuid>, Vec<i64>) = (Vec::new(), Vec::new());
    for (i, m) in messages.iter().enumerate() {
        if let Some(c) = &m.client_id {
            if let Some(orig) = existing.get(&(m.sender.as_str().to_owned(), c.clone())) {
                slots.push(Slot::Existing(Box::new(orig.clone())));
                continue;
            }
            if let Some(first) = fresh_keys.get(&(m.sender.as_str(), c.as_str())) {
                slots.push(Slot::SameAs(*first));
                continue;
            }
        }
        let Some(seq) = last.get_mut(&m.conversation.0) else {
            slots.push(Slot::Missing);
            continue;
        };
        *seq += 1;
        if let Some(c) = &m.client_id {
            fresh_keys.insert((m.sender.as_str(), c.as_str()), i);
        }
        slots.push(Slot::Fresh(ins_seq.len()));
        ins_conv.push(m.conversation.0);
        ins_seq.push(*seq);
        ins_id.push(m.id.0);
        ins_sender.push(m.sender.as_str());
        ins_client.push(m.client_id.as_deref());
        ins_kind.push(m.kind.as_str());
        ins_body.push(m.body.as_str());
        ins_at.push(m.created_at);
        ins_reply_to.push(m.reply_to.map(rows::seq_param));
        ins_thread.push(m.thread.map(rows::seq_param));
        ins_attachments.push(rows::attachments_param(&m.attachments));
        if let Some(root) = m.thread {
            replies.0.push(m.conversation.0);
            replies.1.push(rows::seq_param(root));
        }
    }

    if !ins_seq.is_empty() {
        // 4. Insert every new message at once.
        let stmt = tx.prepare_cached(sql::APPEND_INSERT).await?;
        tx.execute(
            &stmt,
            &[
                &ins_conv,
                &ins_seq,
                &ins_id,
                &ins_sender,
                &ins_client,
                &ins_kind,
                &ins_body,
                &ins_at,
                &ins_reply_to,
                &ins_thread,
                &ins_attachments,
            ],
        )
        .await?;
        if !replies.0.is_empty() {
            let stmt = tx.prepare_cached(sql::APPEND_REPLY_COUNTS).await?;
            tx.execute(&stmt, &[&replies.0, &replies.1]).await?;
        }
        // 5. Move each conversation's last seq.
        let (ids, lasts): (Vec<Uuid>, Vec<i64>) = last.iter().map(|(k, v)| (*k, *v)).unzip();
        let stmt = tx.prepare_cached(sql::APPEND_SET_LAST_SEQ).await?;
        tx.execute(&stmt, &[&ids, &lasts]).await?;
    }
    tx.commit().await?;

    // Answer in order, only now that the batch is committed.
    let fresh = |i: usize| -> CoreResult<Message> {
        let m = messages[i];
        let Some(Slot::Fresh(k)) = slots.get(i) else {
            return Err(unreachable_append_err());
        };
        Ok(Message {
            id: m.id,
            conversation: m.conversation,
            seq: rows::seq(ins_seq[*k])?,
            sender: m.sender.clone(),
            client_id: m.client_id.clone(),
            kind: m.kind,
            body: m.body.clone(),
            created_at: rows::pg_time(m.created_at),
            edited_at: None,
            deleted_at: None,
            reply_to: m.reply_to,
            thread: m.thread,
            reply_count: 0,
            attachments: m.attachments.clone(),
        })
    };
    Ok(slots
        .iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Existing(orig) => Ok(Appended {
                message: Message::clone(orig),
                duplicate: true,
            }),
            Slot::Fresh(_) => fresh(i).map(|message| Appended {
                message,
                duplicate: false,
            }),
            Slot::SameAs(first) => fresh(*first).map(|message| Appended {
                message,
                duplicate: true,
            }),
            Slot::Missing => Err(CoreError::not_found(format!(
                "conversation {}",
                messages[i].conversation
            ))),
        })
        .collect())
}

/// Why a transaction failed: the driver, or a row we could not read back.
#[derive(Debug)]
enum TxError {
    Pg(tokio_postgres::Error),
    Core(CoreError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

impl From<TxError> for CoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Pg(e) => map_pg(e),
            TxError::Core(e) => e,
        }
    }
}
