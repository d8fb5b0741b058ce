//! Payloads this crate writes besides chat-core's delivery envelope: the resync control
//! message on `{prefix}.all`, and the value of a presence lease. Pure, no I/O.
//!
//! A delivery is chat-core's [`envelope`]: `{"v":1,"origin":<node>,"delivery":{…}}`.
//! The control message is `{"v":1,"resync":<bus id>}`: no `origin`, no `delivery`, so it
//! never decodes as an envelope, and an older node that does not know it logs it as
//! malformed and goes on.

use std::sync::Arc;
use std::time::Duration;

use chat_core::event::Delivery;
use chat_core::ids::NodeId;
use chat_core::ports::envelope;
use chat_core::{Error, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of the control message and of the lease value.
const VERSION: u8 = 1;

/// What arrived on a subscribed subject.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A delivery published by `origin`.
    Delivery {
        origin: NodeId,
        delivery: Arc<Delivery>,
    },
    /// The bus client `from` reconnected: its publications while away may be lost.
    Resync { from: Uuid },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    v: u8,
    resync: Uuid,
}

/// Encodes the control message of the bus client `from`.
pub(crate) fn encode_resync(from: Uuid) -> Vec<u8> {
    // A struct of a number and a UUID always serializes.
    serde_json::to_vec(&Control {
        v: VERSION,
        resync: from,
    })
    .unwrap_or_default()
}

/// Decodes a payload: a delivery envelope, or (only on `{prefix}.all`) a control message.
///
/// # Errors
/// `invalid` for anything else.
pub(crate) fn decode(bytes: &[u8], broadcast: bool) -> Result<Inbound> {
    match envelope::decode(bytes) {
        Ok((origin, delivery)) => Ok(Inbound::Delivery {
            origin,
            delivery: Arc::new(delivery),
        }),
        Err(e) if broadcast => match serde_json::from_slice::<Control>(bytes) {
            Ok(c) if c.v == VERSION => Ok(Inbound::Resync { from: c.resync }),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The value of a presence lease: `{"v":1,"ttl_ms":N}`, the lease the node asked for.
#[derive(Serialize, Deserialize)]
struct Lease {
    v: u8,
    ttl_ms: u64,
}

/// Encodes a lease value of `ttl`.
pub(crate) fn encode_lease(ttl: Duration) -> Vec<u8> {
    serde_json::to_vec(&Lease {
        v: VERSION,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    })
    .unwrap_or_default()
}

/// The lease a value asks for; `None` for a value this crate cannot read (the entry then
/// counts for the bucket's whole `max_age`).
pub(crate) fn decode_lease(bytes: &[u8]) -> Option<Duration> {
    serde_json::from_slice::<Lease>(bytes)
        .ok()
        .map(|l| Duration::from_millis(l.ttl_ms))
}

/// `invalid` with the payload's size, for a log line.
pub(crate) fn malformed(subject: &str, len: usize, e: &Error) -> String {
    format!("ignoring a malformed payload of {len} bytes on {subject}: {e}")
}

#[cfg(test)]
mod tests {
    use chat_core::event::{Audience, Event, Skip};
    use chat_core::ids::ConversationId;

    use super::*;

    fn delivery() -> Delivery {
        let conversation = ConversationId(Uuid::from_u128(3));
        Delivery {
            audience: Audience::Conversation { conversation },
            skip: Skip::Nobody,
            event: Event::ConversationRemoved { conversation },
        }
    }

    #[test]
    fn the_control_message_has_its_documented_shape() {
        let from = Uuid::from_u128(9);
        assert_eq!(
            String::from_utf8(encode_resync(from)).unwrap(),
            r#"{"v":1,"resync":"00000000-0000-0000-0000-000000000009"}"#
        );
    }

    #[test]
    fn control_and_delivery_are_told_apart() {
        let from = Uuid::from_u128(9);
        match decode(&encode_resync(from), true).unwrap() {
            Inbound::Resync { from: f } => assert_eq!(f, from),
            other => panic!("{other:?}"),
        }
        // Only the broadcast subject carries control messages.
        assert!(decode(&encode_resync(from), false).is_err());

        let origin = NodeId(Uuid::from_u128(5));
        let bytes = envelope::encode(origin, &delivery()).unwrap();
        // The envelope never reads as a control message, on any subject.
        assert!(serde_json::from_slice::<Control>(&bytes).is_err());
        for broadcast in [false, true] {
            match decode(&bytes, broadcast).unwrap() {
                Inbound::Delivery {
                    origin: o,
                    delivery: d,
                } => {
                    assert_eq!(o, origin);
                    assert_eq!(*d, delivery());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(decode(b"{}", true).is_err());
        assert!(decode(
            br#"{"v":2,"resync":"00000000-0000-0000-0000-000000000009"}"#,
            true
        )
        .is_err());
    }

    #[test]
    fn lease_values_round_trip() {
        let ttl = Duration::from_millis(1500);
        assert_eq!(
            String::from_utf8(encode_lease(ttl)).unwrap(),
            r#"{"v":1,"ttl_ms":1500}"#
        );
        assert_eq!(decode_lease(&encode_lease(ttl)), Some(ttl));
        assert_eq!(decode_lease(b"junk"), None);
    }
}
