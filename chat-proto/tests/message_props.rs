//! Any message the engine can hold reads back from its protobuf encoding unchanged:
//! replies, threads, reply counts and attachments included.

use std::str::FromStr;

use chat_core::model::{Attachment, Message, MessageKind};
use chat_core::{ConversationId, MessageId, UserId};
use chat_proto::{convert, proto};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use prost::Message as _;

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range"))
}

fn attachment() -> impl Strategy<Value = Attachment> {
    (
        ".{0,40}",
        "[a-z]{1,8}/[a-z0-9.+-]{1,12}",
        any::<u64>(),
        ".{0,20}",
    )
        .prop_map(|(url, mime_type, size, name)| Attachment {
            url,
            mime_type,
            size,
            name,
        })
}

prop_compose! {
    fn message()(
        id in any::<u128>(),
        conversation in any::<u128>(),
        seq in 1u64..u64::MAX,
        sender in "[a-z0-9_]{1,16}",
        client_id in proptest::option::of("[a-z0-9-]{1,64}"),
        system in any::<bool>(),
        body in ".{0,64}",
        created_at in time(),
        edited_at in proptest::option::of(time()),
        deleted_at in proptest::option::of(time()),
        reply_to in proptest::option::of(any::<u64>()),
        thread in proptest::option::of(any::<u64>()),
        reply_count in any::<u32>(),
        attachments in proptest::collection::vec(attachment(), 0..12),
    ) -> Message {
        let uuid = |n: u128| format!("{:032x}", n);
        Message {
            id: MessageId::from_str(&uuid(id)).expect("id"),
            conversation: ConversationId::from_str(&uuid(conversation)).expect("id"),
            seq,
            sender: UserId::new(sender).expect("user"),
            client_id,
            kind: if system { MessageKind::System } else { MessageKind::User },
            body,
            created_at,
            edited_at,
            deleted_at,
            reply_to,
            thread,
            reply_count,
            attachments,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn a_message_reads_back_from_its_encoding(m in message()) {
        let bytes = convert::message(m.clone()).encode_to_vec();
        let decoded = proto::Message::decode(bytes.as_slice()).expect("decode");
        prop_assert_eq!(Message::try_from(decoded), Ok(m));
    }
}
