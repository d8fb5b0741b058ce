//! Per-conversation ordering: `have`, the messages held back behind a gap, and when a gap
//! is due to be filled from `history`. No I/O: the driver feeds it and acts on what it
//! returns.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chat_core::engine::ResumePoint;
use chat_core::model::Message;
use chat_core::{ConversationId, Seq};

#[derive(Debug, Default)]
struct Conv {
    /// Every message up to this seq was delivered (or lies before the point the client
    /// started following the conversation).
    have: Seq,
    /// Messages past a gap, waiting for it to close.
    ahead: BTreeMap<Seq, Message>,
    /// Since when the gap in front of `ahead` has been open.
    gap_since: Option<Instant>,
    /// A `history` request for the gap is on its way.
    filling: bool,
}

/// A gap to fill: ask `history` for `limit` messages after `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fill {
    pub(crate) conversation: ConversationId,
    pub(crate) after: Seq,
    pub(crate) limit: u32,
}

/// Every followed conversation's ordering state.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    convs: HashMap<ConversationId, Conv>,
}

impl Tracker {
    /// Starts following `conversation` from `have` (messages after it are delivered).
    /// One already followed keeps its place: a reply or event naming the conversation's
    /// newest seq must not skip messages still on their way.
    pub(crate) fn follow(&mut self, conversation: ConversationId, have: Seq) {
        self.convs.entry(conversation).or_insert_with(|| Conv {
            have,
            ..Conv::default()
        });
    }

    /// A held message (past a gap) changed (edited, deleted): the held copy takes the
    /// change. Returns the message when it is not held (deliver the change as it is).
    pub(crate) fn update_held(&mut self, message: Message) -> Option<Message> {
        match self
            .convs
            .get_mut(&message.conversation)
            .and_then(|c| c.ahead.get_mut(&message.seq))
        {
            Some(held) => {
                *held = message;
                None
            }
            None => Some(message),
        }
    }

    /// Stops following `conversation`.
    pub(crate) fn forget(&mut self, conversation: &ConversationId) {
        self.convs.remove(conversation);
    }

    /// True when `conversation` is followed.
    pub(crate) fn knows(&self, conversation: &ConversationId) -> bool {
        self.convs.contains_key(conversation)
    }

    /// The highest seq up to which every message of `conversation` was delivered.
    pub(crate) fn have(&self, conversation: &ConversationId) -> Option<Seq> {
        self.convs.get(conversation).map(|c| c.have)
    }

    /// Takes a message (live, replayed, filled or acknowledged) and returns those now
    /// deliverable, in seq order: none for a duplicate or one past a gap. A message of a
    /// conversation not followed yet starts following it at that message.
    pub(crate) fn offer(&mut self, message: Message, now: Instant) -> Vec<Message> {
        let seq = message.seq;
        let conv = self
            .convs
            .entry(message.conversation)
            .or_insert_with(|| Conv {
                have: seq.saturating_sub(1),
                ..Conv::default()
            });
        if seq <= conv.have || conv.ahead.contains_key(&seq) {
            return Vec::new();
        }
        if seq > conv.have + 1 {
            conv.ahead.insert(seq, message);
            conv.gap_since.get_or_insert(now);
            return Vec::new();
        }
        conv.have = seq;
        let mut out = vec![message];
        drain(conv, &mut out);
        out
    }

    /// The conversation's messages up to `to` cannot be had (`too_far_behind`): move
    /// `have` there, and return what that releases.
    pub(crate) fn jump(&mut self, conversation: ConversationId, to: Seq) -> Vec<Message> {
        match self.convs.get_mut(&conversation) {
            Some(conv) if to > conv.have => jump(conv, to),
            Some(_) => Vec::new(),
            None => {
                self.follow(conversation, to);
                Vec::new()
            }
        }
    }

    /// The gaps open for at least `wait` with no fill on the way; each is marked as
    /// being filled. `max_page` bounds each request.
    pub(crate) fn due(&mut self, now: Instant, wait: Duration, max_page: u32) -> Vec<Fill> {
        let mut fills = Vec::new();
        for (id, conv) in &mut self.convs {
            let (Some(since), Some((&first, _))) = (conv.gap_since, conv.ahead.first_key_value())
            else {
                continue;
            };
            if conv.filling || now.saturating_duration_since(since) < wait {
                continue;
            }
            conv.filling = true;
            let missing = first - conv.have - 1;
            fills.push(Fill {
                conversation: *id,
                after: conv.have,
                limit: u32::try_from(missing)
                    .unwrap_or(u32::MAX)
                    .clamp(1, max_page.max(1)),
            });
        }
        fills
    }

    /// A fill answered (or failed): a gap still open waits `wait` again from `now`.
    pub(crate) fn filled(&mut self, conversation: &ConversationId, now: Instant) {
        if let Some(conv) = self.convs.get_mut(conversation) {
            conv.filling = false;
            if conv.gap_since.is_some() {
                conv.gap_since = Some(now);
            }
        }
    }

    /// The connection dropped: fills on their way are lost.
    pub(crate) fn disconnected(&mut self) {
        for conv in self.convs.values_mut() {
            conv.filling = false;
        }
    }

    /// When the next gap falls due.
    pub(crate) fn next_due(&self, wait: Duration) -> Option<Instant> {
        self.convs
            .values()
            .filter(|c| !c.filling)
            .filter_map(|c| c.gap_since)
            .min()
            .map(|t| t + wait)
    }

    /// Where each followed conversation stands: the `resume` points.
    pub(crate) fn points(&self) -> Vec<ResumePoint> {
        let mut points: Vec<ResumePoint> = self
            .convs
            .iter()
            .map(|(id, c)| ResumePoint {
                conversation: *id,
                last_seq: c.have,
            })
            .collect();
        points.sort_by_key(|p| p.conversation);
        points
    }
}

fn jump(conv: &mut Conv, to: Seq) -> Vec<Message> {
    conv.have = to;
    conv.ahead = conv.ahead.split_off(&(to + 1));
    let mut out = Vec::new();
    drain(conv, &mut out);
    if conv.ahead.is_empty() {
        conv.gap_since = None;
    }
    out
}

/// Moves the run of messages that now follow `have` from `ahead` to `out`.
fn drain(conv: &mut Conv, out: &mut Vec<Message>) {
    while let Some(entry) = conv.ahead.first_entry() {
        if *entry.key() != conv.have + 1 {
            break;
        }
        let message = entry.remove();
        conv.have = message.seq;
        out.push(message);
    }
    if conv.ahead.is_empty() {
        conv.gap_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::model::MessageKind;
    use chat_core::{MessageId, UserId};

    fn conv() -> ConversationId {
        ConversationId(uuid::Uuid::from_u128(1))
    }

    fn msg(seq: Seq) -> Message {
        Message {
            id: MessageId(uuid::Uuid::from_u128(u128::from(seq))),
            conversation: conv(),
            seq,
            sender: UserId::new("bob").unwrap_or_else(|e| panic!("{e:?}")),
            client_id: None,
            kind: MessageKind::User,
            body: format!("m{seq}"),
            created_at: chrono::DateTime::UNIX_EPOCH,
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            thread: None,
            reply_count: 0,
            attachments: Vec::new(),
        }
    }

    fn seqs(messages: &[Message]) -> Vec<Seq> {
        messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn messages_come_out_in_seq_order_once() {
        let now = Instant::now();
        let mut t = Tracker::default();
        t.follow(conv(), 4);
        assert!(
            t.offer(msg(4), now).is_empty(),
            "at or below have: a duplicate"
        );
        assert_eq!(seqs(&t.offer(msg(5), now)), [5]);
        assert!(t.offer(msg(7), now).is_empty(), "past a gap: held back");
        assert!(t.offer(msg(8), now).is_empty());
        assert!(
            t.offer(msg(7), now).is_empty(),
            "held back already: a duplicate"
        );
        assert_eq!(seqs(&t.offer(msg(6), now)), [6, 7, 8]);
        assert!(t.offer(msg(6), now).is_empty());
        assert_eq!(t.have(&conv()), Some(8));
        assert_eq!(t.next_due(Duration::ZERO), None, "no gap left");
    }

    #[test]
    fn a_gap_falls_due_after_the_wait_and_once() {
        let start = Instant::now();
        let wait = Duration::from_millis(300);
        let mut t = Tracker::default();
        t.follow(conv(), 2);
        t.offer(msg(9), start);
        assert_eq!(t.next_due(wait), Some(start + wait));
        assert!(t.due(start + wait / 2, wait, 100).is_empty(), "not yet");
        let fills = t.due(start + wait, wait, 100);
        assert_eq!(
            fills,
            [Fill {
                conversation: conv(),
                after: 2,
                limit: 6
            }]
        );
        assert!(
            t.due(start + wait * 5, wait, 100).is_empty(),
            "a fill is on its way"
        );
        assert_eq!(t.due(start, wait, 3).len(), 0);
        // The fill brings 3..=5 only: the gap stays, and waits again.
        for s in 3..=5 {
            t.offer(msg(s), start + wait);
        }
        t.filled(&conv(), start + wait);
        assert_eq!(t.have(&conv()), Some(5));
        assert_eq!(t.next_due(wait), Some(start + wait * 2));
        assert_eq!(
            t.due(start + wait * 2, wait, 2)[0].limit,
            2,
            "bounded by the page"
        );
    }

    #[test]
    fn a_jump_skips_what_cannot_be_had_and_releases_what_follows() {
        let now = Instant::now();
        let mut t = Tracker::default();
        t.follow(conv(), 1);
        t.offer(msg(900), now);
        t.offer(msg(902), now);
        assert_eq!(seqs(&t.jump(conv(), 899)), [900]);
        assert_eq!(t.have(&conv()), Some(900));
        assert_eq!(seqs(&t.jump(conv(), 901)), [902]);
        assert!(t.jump(conv(), 10).is_empty(), "never backwards");
        assert_eq!(t.have(&conv()), Some(902));
    }

    #[test]
    fn an_unknown_conversation_is_followed_from_its_first_message() {
        let now = Instant::now();
        let mut t = Tracker::default();
        assert_eq!(seqs(&t.offer(msg(40), now)), [40]);
        assert_eq!(
            t.points(),
            [ResumePoint {
                conversation: conv(),
                last_seq: 40
            }]
        );
        t.forget(&conv());
        assert!(!t.knows(&conv()));
    }

    #[test]
    fn following_again_keeps_the_place_and_a_held_message_takes_an_edit() {
        let now = Instant::now();
        let mut t = Tracker::default();
        t.follow(conv(), 3);
        t.offer(msg(6), now);
        // A join or open_direct reply naming the newest seq must not skip 4 and 5.
        t.follow(conv(), 6);
        assert_eq!(t.have(&conv()), Some(3));
        let mut edited = msg(6);
        edited.body = "edited".into();
        assert!(
            t.update_held(edited).is_none(),
            "held: the held copy takes the edit"
        );
        assert!(
            t.update_held(msg(9)).is_some(),
            "not held: deliver the edit as it is"
        );
        t.offer(msg(4), now);
        let out = t.offer(msg(5), now);
        assert_eq!(seqs(&out), [5, 6]);
        assert_eq!(out[1].body, "edited");
    }
}
