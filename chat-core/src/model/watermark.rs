//! Status as a pair of watermarks (invariant 4).
//!
//! Each member has `delivered_seq` and `read_seq`. They only move forward and read
//! implies delivered. A message's status is derived from the *other* members'
//! watermarks; nothing is stored per message.

use serde::{Deserialize, Serialize};

use crate::ids::{Seq, UserId};

/// A member's position in a conversation's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Watermarks {
    /// Everything up to here reached one of the member's devices.
    pub delivered_seq: Seq,
    /// Everything up to here was read.
    pub read_seq: Seq,
}

impl Watermarks {
    /// Moves the watermarks forward, never back, clamped to `last_seq`, keeping
    /// `read_seq <= delivered_seq`. Returns the new watermarks.
    pub fn advance(self, delivered: Option<Seq>, read: Option<Seq>, last_seq: Seq) -> Watermarks {
        let read_seq = self.read_seq.max(read.unwrap_or(0).min(last_seq));
        let delivered_seq = self
            .delivered_seq
            .max(delivered.unwrap_or(0).min(last_seq))
            .max(read_seq);
        Watermarks {
            delivered_seq,
            read_seq,
        }
    }
}

/// The status of a message as its sender sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Committed; not yet on every other member's device.
    Sent,
    /// On every other member's device.
    Delivered,
    /// Read by every other member.
    Read,
}

/// Derives the status of message `seq` sent by `sender`, from every member's watermarks.
///
/// The sender's own watermarks do not count. With no other member the message is `Sent`.
pub fn derive_status<'a>(
    seq: Seq,
    sender: &UserId,
    members: impl IntoIterator<Item = (&'a UserId, Watermarks)>,
) -> MessageStatus {
    let mut others = 0usize;
    let mut all_delivered = true;
    let mut all_read = true;
    for (user, w) in members {
        if user == sender {
            continue;
        }
        others += 1;
        all_delivered &= w.delivered_seq >= seq;
        all_read &= w.read_seq >= seq;
    }
    if others == 0 {
        MessageStatus::Sent
    } else if all_read {
        MessageStatus::Read
    } else if all_delivered {
        MessageStatus::Delivered
    } else {
        MessageStatus::Sent
    }
}

/// Counts unread messages for `me`: after `read_seq`, sent by others, not deleted.
///
/// Stores compute the same with a query; this is the reference definition the
/// conformance suite checks them against.
pub fn count_unread<'a>(
    me: &UserId,
    read_seq: Seq,
    messages: impl IntoIterator<Item = &'a crate::model::Message>,
) -> u64 {
    messages
        .into_iter()
        .filter(|m| m.seq > read_seq && &m.sender != me && !m.is_deleted())
        .count() as u64
}
