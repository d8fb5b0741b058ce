//! Property tests for the model's state machines.

use chat_core::model::{
    count_unread, derive_status, FriendAction, FriendState, Friendship, Message, MessageKind,
    MessageStatus, RateLimiter, TypingChange, TypingLeases, Watermarks,
};
use chat_core::{ConversationId, MessageId, UserId};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200, 0).expect("epoch")
}

fn users() -> [UserId; 3] {
    ["ann", "ben", "cid"].map(|n| UserId::new(n).expect("id"))
}

proptest! {
    /// Watermarks never move back, read never passes delivered, neither passes the log.
    #[test]
    fn watermarks_are_monotonic(steps in prop::collection::vec((any::<Option<u8>>(), any::<Option<u8>>(), 0u8..=255), 1..60)) {
        let mut w = Watermarks::default();
        let mut last_seq = 0u64;
        for (d, r, grow) in steps {
            last_seq += u64::from(grow % 8);
            let next = w.advance(d.map(u64::from), r.map(u64::from), last_seq);
            prop_assert!(next.delivered_seq >= w.delivered_seq);
            prop_assert!(next.read_seq >= w.read_seq);
            prop_assert!(next.read_seq <= next.delivered_seq, "read implies delivered");
            prop_assert!(next.delivered_seq <= last_seq.max(w.delivered_seq));
            w = next;
        }
    }

    /// Any sequence of friendship actions keeps the record coherent: a pending request
    /// comes from one of the pair, a block ends friendship, and illegal actions change
    /// nothing.
    #[test]
    fn friendship_stays_coherent(actions in prop::collection::vec((0usize..2, 0usize..7), 1..40)) {
        let [a, b, _] = users();
        let mut f = Friendship::empty(&a, &b, t0()).expect("pair");
        for (who, act) in actions {
            let actor = if who == 0 { &a } else { &b };
            let action = FriendAction::ALL[act];
            // An illegal action returns an error and leaves `f` as it was (apply takes &self).
            if let Ok(next) = f.apply(actor, action, t0()) {
                if action == FriendAction::Block {
                    prop_assert!(next.blocks(actor) && !next.is_friends());
                }
                f = next;
            }
            if let FriendState::Pending { from } = &f.state {
                prop_assert!(from == &a || from == &b);
            }
            if f.is_blocked() {
                prop_assert!(!f.is_friends(), "blocked users are never friends");
                prop_assert!(f.state == FriendState::None);
            }
        }
    }

    /// A typing lease is live exactly within its ttl after the last renewal, and "started"
    /// is reported only when it was not live.
    #[test]
    fn typing_leases_expire(ops in prop::collection::vec((any::<bool>(), 0i64..8000), 1..50)) {
        let ttl = Duration::milliseconds(5000);
        let mut leases = TypingLeases::new(ttl);
        let conv = ConversationId(uuid::Uuid::nil());
        let [u, _, _] = users();
        let mut now = t0();
        let mut until: Option<DateTime<Utc>> = None;
        for (start, wait) in ops {
            now += Duration::milliseconds(wait);
            let live = until.is_some_and(|x| x > now);
            prop_assert_eq!(leases.is_typing(conv, &u, now), live);
            if start {
                let change = leases.start(conv, &u, now);
                prop_assert_eq!(change, if live { TypingChange::Renewed } else { TypingChange::Started });
                until = Some(now + ttl);
            } else {
                let change = leases.stop(conv, &u, now);
                prop_assert_eq!(change, if live { TypingChange::Stopped } else { TypingChange::Unchanged });
                until = None;
            }
        }
        let expired = leases.expire(now + ttl);
        prop_assert_eq!(expired.len(), usize::from(until.is_some()));
        prop_assert!(leases.is_empty());
    }

    /// Status is read only if delivered would be too, and is monotonic in the watermarks.
    #[test]
    fn status_follows_the_slowest_member(marks in prop::collection::vec((0u64..20, 0u64..20), 1..6), seq in 1u64..20) {
        let sender = UserId::new("sender").expect("id");
        let members: Vec<(UserId, Watermarks)> = marks
            .iter()
            .enumerate()
            .map(|(i, (d, r))| (UserId::new(format!("m{i}")).expect("id"), Watermarks { delivered_seq: (*d).max(*r), read_seq: *r }))
            .collect();
        let status = derive_status(seq, &sender, members.iter().map(|(u, w)| (u, *w)));
        let all_read = members.iter().all(|(_, w)| w.read_seq >= seq);
        let all_delivered = members.iter().all(|(_, w)| w.delivered_seq >= seq);
        let expected = if all_read { MessageStatus::Read } else if all_delivered { MessageStatus::Delivered } else { MessageStatus::Sent };
        prop_assert_eq!(status, expected);
        // The sender's own watermarks never count.
        let with_sender = members.iter().map(|(u, w)| (u, *w)).chain(std::iter::once((&sender, Watermarks::default())));
        prop_assert_eq!(derive_status(seq, &sender, with_sender), expected);
    }

    /// Unread counts others' live messages after the read watermark.
    #[test]
    fn unread_excludes_own_and_deleted(msgs in prop::collection::vec((any::<bool>(), any::<bool>()), 0..40), read in 0u64..45) {
        let me = UserId::new("me").expect("id");
        let other = UserId::new("other").expect("id");
        let messages: Vec<Message> = msgs.iter().enumerate().map(|(i, (mine, deleted))| Message {
            id: MessageId(uuid::Uuid::from_u128(i as u128)),
            conversation: ConversationId(uuid::Uuid::nil()),
            seq: i as u64 + 1,
            sender: if *mine { me.clone() } else { other.clone() },
            client_id: None,
            kind: MessageKind::User,
            body: if *deleted { String::new() } else { "x".into() },
            created_at: t0(),
            edited_at: None,
            deleted_at: deleted.then(t0), reply_to: None, thread: None, reply_count: 0, attachments: Vec::new(), }).collect();
        let expected = msgs.iter().enumerate().filter(|(i, (mine, deleted))| (*i as u64 + 1) > read && !mine && !deleted).count() as u64;
        prop_assert_eq!(count_unread(&me, read, &messages), expected);
    }

    /// The rate limiter never allows more than burst + rate × elapsed.
    #[test]
    fn rate_limiter_bounds_throughput(rate in 1u32..20, burst in 1u32..20, gaps in prop::collection::vec(0i64..300, 1..200)) {
        let mut limiter = RateLimiter::new(rate, burst);
        let mut now = t0();
        let mut allowed = 0u64;
        for gap in gaps {
            now += Duration::milliseconds(gap);
            if limiter.try_take(now) { allowed += 1; }
        }
        let elapsed = (now - t0()).num_milliseconds() as f64 / 1000.0;
        prop_assert!(allowed as f64 <= f64::from(burst) + elapsed * f64::from(rate) + 1e-9);
    }
}
