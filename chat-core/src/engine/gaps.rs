//! The store is the truth; the bus is a fast path.
//!
//! For every conversation this node follows, the node keeps the highest seq it has passed
//! to its sessions (its *mark*). Every `message` delivery, local or from another node,
//! goes through the mark:
//!
//! - at or below the mark: a duplicate, dropped;
//! - right after it: passed on at once, then whatever was waiting behind it;
//! - further ahead: a gap. The delivery waits while the node lets an in-flight delivery
//!   arrive, then reads the missing messages from the store (a later seq is committed,
//!   so every earlier one is too) and passes them on in order.
//!
//! When the bus says deliveries may have been lost (a reconnect, an overflow), every
//! followed conversation is read from its mark onward the same way. When the store
//! cannot be read, the conversation's sessions get `resume_required` and the mark moves
//! on, so live traffic keeps flowing.
//!
//! Marks exist only while this node is subscribed to the conversation. When the bus can
//! lose deliveries, a new mark starts at the newest seq read just before subscribing, and
//! the store is read once more after subscribing for what was committed in between (so a
//! message right after a join is neither missed nor doubled); on an in-process bus the
//! first message passed sets it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use super::stats::BusCounters;
use super::Inner;
use crate::event::{Audience, Delivery, Event, Skip};
use crate::ids::{ConversationId, Seq};
use crate::model::HistoryPage;

/// How many times a gap's filler yields before reading the store: a delivery that is
/// merely late (two appends on this node racing to publish) usually lands meanwhile.
const GRACE_YIELDS: usize = 4;

/// How long a gap's filler then waits for a delivery that is late by a bus hop (another
/// node's message arrives 0.15–0.3 ms after this node's own, see BENCHMARKS.md "Several
/// nodes") before reading the store.
const GRACE_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// One followed conversation's mark.
#[derive(Debug, Default)]
struct Mark {
    /// The highest seq passed to this node's sessions, when known.
    passed: Option<Seq>,
    /// Deliveries ahead of a gap, by seq.
    waiting: BTreeMap<Seq, Arc<Delivery>>,
    /// A filler task runs for this conversation.
    filling: bool,
    /// The bus said deliveries may have been lost: read the store up to its newest seq.
    resync: bool,
}

/// The marks of every followed conversation.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    map: Mutex<HashMap<ConversationId, Arc<Mutex<Mark>>>>,
}

impl Marks {
    fn get(&self, conversation: ConversationId) -> Option<Arc<Mutex<Mark>>> {
        self.map.lock().get(&conversation).cloned()
    }

    /// Starts a mark (unknown) for a conversation this node now follows.
    pub(crate) fn start(&self, conversation: ConversationId) {
        self.map.lock().entry(conversation).or_default();
    }

    /// Forgets a conversation this node no longer follows.
    pub(crate) fn stop(&self, conversation: ConversationId) {
        self.map.lock().remove(&conversation);
    }

    fn all(&self) -> Vec<ConversationId> {
        self.map.lock().keys().copied().collect()
    }
}

/// What the filler does next for one conversation.
enum Next {
    /// Nothing is missing any more.
    Done,
    /// Read the store after `after`, up to `until` (or to the newest when `None`).
    Read { after: Seq, until: Option<Seq> },
}

impl Inner {
    /// Passes a delivery to this node's sessions, through the conversation's mark when it
    /// is a message of a followed conversation.
    pub(crate) fn deliver_ordered(&self, delivery: Arc<Delivery>) {
        let (Audience::Conversation { conversation }, Event::Message { message }) =
            (&delivery.audience, &delivery.event)
        else {
            self.deliver_local(&delivery);
            return;
        };
        let Some(mark) = self.marks.get(*conversation) else {
            self.deliver_local(&delivery);
            return;
        };
        let seq = message.seq;
        let conversation = *conversation;
        let mut m = mark.lock();
        let passed = m.passed.unwrap_or(seq.saturating_sub(1));
        if seq <= passed {
            BusCounters::add(&self.counters.bus.duplicates, 1);
            return;
        }
        if seq == passed + 1 && m.waiting.is_empty() && !m.filling {
            m.passed = Some(seq);
            self.deliver_local(&delivery);
            return;
        }
        m.waiting.insert(seq, delivery);
        if seq == passed + 1 {
            // It closes the gap a filler is working on: pass what now lines up.
            m.passed = Some(passed);
            self.drain(&mut m);
        }
        if !m.waiting.is_empty() && !m.filling {
            m.filling = true;
            drop(m);
            self.spawn_fill(conversation, mark);
        }
    }

    /// The bus may have lost deliveries: read every followed conversation from its mark.
    pub(crate) fn resync_all(&self) {
        BusCounters::add(&self.counters.bus.resyncs, 1);
        for conversation in self.marks.all() {
            let Some(mark) = self.marks.get(conversation) else {
                continue;
            };
            let mut m = mark.lock();
            if m.passed.is_none() {
                // Nothing passed yet and the newest seq not yet read: that read (or the
                // first message) sets the mark; nothing can be known missing before it.
                continue;
            }
            m.resync = true;
            if !m.filling {
                m.filling = true;
                drop(m);
                self.spawn_fill(conversation, mark);
            }
        }
    }

    /// A conversation's newest seq, read before this node subscribes to it (only when
    /// the bus can lose deliveries; `None` otherwise or when the store cannot say).
    pub(crate) async fn newest_seq_before_subscribing(
        &self,
        conversation: ConversationId,
    ) -> Option<Seq> {
        if self.bus.lossless() {
            return None;
        }
        match self.store.conversation(conversation).await {
            Ok(Some(c)) => Some(c.last_seq),
            _ => None,
        }
    }

    /// This node is now subscribed to `conversation`. Its mark starts at the newest seq
    /// read before subscribing (unless a message passed meanwhile), and whatever was
    /// committed between that read and the subscription is read from the store: its live
    /// copies, if any arrive, are then dropped as duplicates.
    pub(crate) fn mark_subscribed(&self, conversation: ConversationId, newest: Option<Seq>) {
        let Some(newest) = newest else { return };
        let Some(mark) = self.marks.get(conversation) else {
            return;
        };
        let mut m = mark.lock();
        if m.passed.is_none() {
            m.passed = Some(newest);
        }
        m.resync = true;
        if !m.filling {
            m.filling = true;
            drop(m);
            self.spawn_fill(conversation, mark);
        }
    }

    /// Passes on the waiting deliveries that now follow the mark.
    fn drain(&self, m: &mut Mark) {
        let Some(mut passed) = m.passed else { return };
        while let Some(entry) = m.waiting.first_entry() {
            let seq = *entry.key();
            if seq <= passed {
                entry.remove();
                BusCounters::add(&self.counters.bus.duplicates, 1);
            } else if seq == passed + 1 {
                let d = entry.remove();
                self.deliver_local(&d);
                passed = seq;
            } else {
                break;
            }
        }
        m.passed = Some(passed);
    }

    fn spawn_fill(&self, conversation: ConversationId, mark: Arc<Mutex<Mark>>) {
        let Some(inner) = self.me.upgrade() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { inner.fill(conversation, mark).await });
            }
            Err(_) => mark.lock().filling = false,
        }
    }

    /// Fills one conversation's gaps until nothing is missing.
    async fn fill(&self, conversation: ConversationId, mark: Arc<Mutex<Mark>>) {
        let mut graced = false;
        loop {
            let next = {
                let mut m = mark.lock();
                self.drain(&mut m);
                let passed = m.passed.unwrap_or(0);
                match (m.waiting.keys().next().copied(), m.resync) {
                    (Some(ahead), _) => Next::Read {
                        after: passed,
                        until: Some(ahead - 1),
                    },
                    (None, true) => Next::Read {
                        after: passed,
                        until: None,
                    },
                    (None, false) => Next::Done,
                }
            };
            let Next::Read { after, until } = next else {
                mark.lock().filling = false;
                return;
            };
            if until.is_some() && !graced {
                graced = true;
                for _ in 0..GRACE_YIELDS {
                    tokio::task::yield_now().await;
                }
                let still_missing = {
                    let m = mark.lock();
                    let passed = m.passed.unwrap_or(0);
                    m.waiting
                        .keys()
                        .next()
                        .is_some_and(|ahead| *ahead > passed + 1)
                };
                if still_missing && !self.bus.lossless() {
                    tokio::time::sleep(GRACE_WAIT).await;
                }
                continue;
            }
            graced = false;
            let resyncing = until.is_none();
            mark.lock().resync = false;
            if !self.read_gap(conversation, &mark, after, until).await {
                // The store failed: the sessions resume by themselves; move the mark past
                // the gap so live traffic flows on.
                self.resume_required(conversation);
                let mut m = mark.lock();
                if let Some(ahead) = m.waiting.keys().next().copied() {
                    m.passed = Some(ahead - 1);
                } else if resyncing {
                    // Nothing newer is known: the next message sets the mark.
                    m.passed = None;
                }
            }
        }
    }

    /// Reads `(after, until]` from the store and passes it on in order. False when the
    /// store could not be read or the gap is wider than a resume replays.
    async fn read_gap(
        &self,
        conversation: ConversationId,
        mark: &Mutex<Mark>,
        mut after: Seq,
        until: Option<Seq>,
    ) -> bool {
        let page = self.limits.resume_page.max(1);
        let max = self.limits.max_resume_gap;
        let start = after;
        let mut filled = 0u64;
        loop {
            if until.is_some_and(|u| after >= u) {
                break;
            }
            if after - start >= max {
                return false;
            }
            let chunk = match self
                .store
                .history(conversation, HistoryPage::After(after), page)
                .await
            {
                Ok(chunk) => chunk,
                Err(_) => return false,
            };
            let Some(last) = chunk.last().map(|m| m.seq) else {
                break;
            };
            let mut m = mark.lock();
            for message in chunk {
                if until.is_some_and(|u| message.seq > u) {
                    break;
                }
                if m.passed.is_some_and(|p| message.seq <= p) {
                    continue;
                }
                m.passed = Some(message.seq);
                filled += 1;
                self.deliver_local(&Delivery {
                    audience: Audience::Conversation { conversation },
                    skip: Skip::Nobody,
                    event: Event::Message { message },
                });
            }
            self.drain(&mut m);
            after = m.passed.unwrap_or(last).max(last);
        }
        if filled > 0 {
            BusCounters::add(&self.counters.bus.gap_fills, 1);
            BusCounters::add(&self.counters.bus.filled_messages, filled);
        }
        if let Some(u) = until {
            // The store has nothing up to `until` although a later seq committed: the
            // conversation was deleted meanwhile, or the store lost it.
            return mark.lock().passed.is_some_and(|p| p >= u);
        }
        true
    }

    /// Tells this node's sessions in `conversation` to resume it.
    fn resume_required(&self, conversation: ConversationId) {
        BusCounters::add(&self.counters.bus.resume_required, 1);
        tracing::warn!(%conversation, "a gap could not be filled from the store; sessions told to resume");
        self.deliver_local(&Delivery {
            audience: Audience::Conversation { conversation },
            skip: Skip::Nobody,
            event: Event::ResumeRequired { conversation },
        });
    }
}
