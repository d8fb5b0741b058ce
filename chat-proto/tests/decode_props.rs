//! Whatever bytes arrive as a binary frame, decoding never panics: it yields a command or
//! an `invalid` error, and a request id it echoes is one the client sent (at most 64
//! bytes).

use chat_core::ErrorCode;
use chat_proto::proto::{self, client_frame::Command as Cmd};
use chat_proto::{decode_client_frame, MAX_REQUEST_ID_BYTES};
use proptest::prelude::*;
use prost::Message as _;

fn check(bytes: &[u8]) {
    match decode_client_frame(bytes) {
        Ok((id, _)) => assert!(id.len() <= MAX_REQUEST_ID_BYTES),
        Err(e) => {
            assert_eq!(e.error.code(), ErrorCode::Invalid, "{e:?}");
            assert!(e.request_id.len() <= MAX_REQUEST_ID_BYTES);
        }
    }
}

/// A valid frame to mutate: a send with this id and body, replying to `reply_to` with
/// an attachment named `name`.
fn send(id: String, conversation: String, body: String, reply_to: u64, name: String) -> Vec<u8> {
    proto::ClientFrame {
        request_id: id,
        command: Some(Cmd::Send(proto::SendRequest {
            conversation,
            body,
            client_id: None,
            reply_to: Some(reply_to),
            attachments: vec![proto::Attachment {
                url: "https://files.example/a".into(),
                mime_type: "image/png".into(),
                size: 42,
                name,
            }],
        })),
    }
    .encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_decode_or_are_invalid(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn mutated_frames_decode_or_are_invalid(
        id in ".{0,80}",
        conversation in "[0-9a-f-]{0,40}",
        body in ".{0,64}",
        reply_to in any::<u64>(),
        name in ".{0,32}",
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = send(id, conversation, body, reply_to, name);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(1));
        check(&bytes);
    }
}
