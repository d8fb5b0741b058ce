//! What a channel carries: a delivery in chat-core's envelope, or the resync control
//! message.
//!
//! The control message is `{"v":1,"resync":"<uuid>"}`, the uuid naming the bus instance
//! (one [`RedisBus`](crate::RedisBus), normally one node) whose publisher connection came
//! back. It has no `origin` and no `delivery`, so a reader that knows only the delivery
//! envelope fails to decode it and drops it, as it drops any malformed payload; it is
//! never mistaken for a delivery.

use std::sync::Arc;

use chat_core::event::Delivery;
use chat_core::ports::envelope;
use chat_core::{NodeId, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A decoded payload.
#[derive(Debug)]
pub(crate) enum Payload {
    /// A delivery published by `origin`.
    Delivery(NodeId, Arc<Delivery>),
    /// The bus instance `0` reconnected: deliveries it failed to publish meanwhile are
    /// lost, so every other node re-reads what it follows from the store.
    Resync(Uuid),
}

#[derive(Serialize, Deserialize)]
struct Control {
    v: u8,
    resync: Uuid,
}

/// Encodes the control message of the bus instance `instance`.
pub(crate) fn resync(instance: Uuid) -> Vec<u8> {
    // A struct of a number and a uuid always serializes.
    serde_json::to_vec(&Control {
        v: envelope::VERSION,
        resync: instance,
    })
    .unwrap_or_default()
}

impl Payload {
    /// Decodes a delivery (the common case, tried first) or a control message.
    ///
    /// # Errors
    /// `invalid` for anything else (a malformed payload, another version).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Payload> {
        match envelope::decode(bytes) {
            Ok((origin, delivery)) => Ok(Payload::Delivery(origin, Arc::new(delivery))),
            Err(e) => match serde_json::from_slice::<Control>(bytes) {
                Ok(c) if c.v == envelope::VERSION => Ok(Payload::Resync(c.resync)),
                _ => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_core::event::{Audience, Event, Skip};
    use chat_core::ConversationId;

    use super::*;

    fn delivery() -> Delivery {
        let conversation = ConversationId(Uuid::from_u128(7));
        Delivery {
            audience: Audience::Conversation { conversation },
            skip: Skip::Nobody,
            event: Event::Typing {
                conversation,
                user: chat_core::UserId::new("ann").expect("user"),
                typing: true,
            },
        }
    }

    #[test]
    fn deliveries_and_control_messages_are_told_apart() {
        let origin = NodeId(Uuid::from_u128(1));
        let bytes = envelope::encode(origin, &delivery()).expect("encodes");
        match Payload::decode(&bytes).expect("decodes") {
            Payload::Delivery(o, d) => {
                assert_eq!(o, origin);
                assert_eq!(*d, delivery());
            }
            other => panic!("a delivery decoded as {other:?}"),
        }
        let instance = Uuid::from_u128(2);
        match Payload::decode(&resync(instance)).expect("decodes") {
            Payload::Resync(i) => assert_eq!(i, instance),
            other => panic!("a control message decoded as {other:?}"),
        }
    }

    #[test]
    fn the_control_message_has_its_documented_shape() {
        let bytes = resync(Uuid::from_u128(2));
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf-8"),
            r#"{"v":1,"resync":"00000000-0000-0000-0000-000000000002"}"#
        );
    }

    #[test]
    fn a_reader_of_deliveries_only_refuses_the_control_message() {
        // What a node of an older build does with it: an error, so it is dropped.
        let e = envelope::decode(&resync(Uuid::from_u128(2))).expect_err("not a delivery");
        assert_eq!(e.code(), chat_core::ErrorCode::Invalid);
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        for bad in [
            &b""[..],
            b"null",
            b"{}",
            br#"{"v":2,"resync":"00000000-0000-0000-0000-000000000002"}"#,
            br#"{"v":1,"resync":"not a uuid"}"#,
        ] {
            assert!(
                Payload::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
