//! # chat-proto
//!
//! Protocol v1 as protobuf: the messages of `proto/chat.proto` ([`proto`]), their
//! conversions to and from [`chat_core`]'s commands, replies and events ([`convert`]),
//! and the frames built from them.
//!
//! Two transports speak it: the gRPC `Connect` stream (`chat-transport-grpc`) and the
//! WebSocket's binary subprotocol `chat.v1.proto` (`chat-transport-ws`). Both write a
//! [`proto::ServerFrame`] per frame and read a [`proto::ClientFrame`] per frame, and both
//! use the one [`ProtoEncoder`], so an event is encoded once for every protobuf
//! connection of a fan-out, whichever transport it came through (invariant 8).
//!
//! No sockets, no I/O.

use bytes::Bytes;
use chat_core::error::ErrorBody;
use chat_core::ports::Encoder;
use chat_core::{Command, Error, Event, Reply};
use prost::Message as _;

pub mod convert;

/// The messages generated from `proto/chat.proto` (code generation in `build.rs`, with
/// the pure-Rust `protox`: no `protoc` needed).
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/chat.rs"));

    /// `proto/chat.proto` and its imports as an encoded `FileDescriptorSet` (what server
    /// reflection serves).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/chat_descriptor.bin"));
}

use proto::server_frame::Frame;

/// The most bytes a request id may have (as in the JSON protocol).
pub const MAX_REQUEST_ID_BYTES: usize = 64;

/// Encodes events as [`proto::ServerFrame`]s, the bytes a protobuf connection writes as
/// they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProtoEncoder;

impl Encoder for ProtoEncoder {
    fn format(&self) -> &'static str {
        "proto-v1"
    }

    fn encode(&self, event: &Event) -> chat_core::Result<Bytes> {
        Ok(frame(String::new(), Frame::Event(convert::event(event)?)))
    }
}

/// One server frame, encoded.
pub fn frame(request_id: String, frame: Frame) -> Bytes {
    let frame = proto::ServerFrame {
        request_id,
        frame: Some(frame),
    };
    Bytes::from(frame.encode_to_vec())
}

/// The `hello` frame.
pub fn hello_frame(hello: proto::Hello) -> Bytes {
    frame(String::new(), Frame::Hello(hello))
}

/// A command's answer (an `internal` error frame for a reply protobuf has no message
/// for).
pub fn reply_frame(request_id: String, reply: Reply) -> Bytes {
    match convert::reply(reply) {
        Ok(reply) => frame(request_id, Frame::Reply(reply)),
        Err(e) => error_frame(request_id, &e),
    }
}

/// A command's failure, or a frame that could not be decoded.
pub fn error_frame(request_id: String, e: &Error) -> Bytes {
    let body = ErrorBody::from(e);
    frame(
        request_id,
        Frame::Error(proto::ErrorFrame {
            code: body.code.as_str().to_owned(),
            message: body.message,
            retry_after_ms: body.retry_after_ms,
        }),
    )
}

/// A client frame that could not be turned into a command, with the request id when
/// one was read (empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The request id to echo; empty when the frame did not decode or its id was too
    /// long.
    pub request_id: String,
    /// Always `invalid`.
    pub error: Error,
}

/// Decodes one encoded [`proto::ClientFrame`] into its request id and command.
///
/// # Errors
/// `invalid` for bytes that are not a `chat.ClientFrame`, a request id longer than
/// [`MAX_REQUEST_ID_BYTES`], a frame without a command, or a command whose ids or enum
/// values do not parse.
pub fn decode_client_frame(bytes: &[u8]) -> Result<(String, Command), FrameError> {
    let frame = proto::ClientFrame::decode(bytes).map_err(|e| FrameError {
        request_id: String::new(),
        error: Error::invalid(format!("not a chat.ClientFrame: {e}")),
    })?;
    client_command(frame)
}

/// The request id and command of a decoded client frame.
///
/// # Errors
/// As [`decode_client_frame`], for a frame that did decode.
pub fn client_command(frame: proto::ClientFrame) -> Result<(String, Command), FrameError> {
    if frame.request_id.len() > MAX_REQUEST_ID_BYTES {
        return Err(FrameError {
            request_id: String::new(),
            error: Error::invalid(format!(
                "`request_id` has at most {MAX_REQUEST_ID_BYTES} bytes"
            )),
        });
    }
    let request_id = frame.request_id;
    let command = match frame.command {
        Some(c) => convert::command(c),
        None => Err(Error::invalid("a client frame holds a command")),
    };
    match command {
        Ok(command) => Ok((request_id, command)),
        Err(error) => Err(FrameError { request_id, error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::ErrorCode;

    #[test]
    fn a_client_frame_decodes_to_its_id_and_command_and_bad_ones_are_invalid() {
        let good = proto::ClientFrame {
            request_id: "r-1".into(),
            command: Some(proto::client_frame::Command::Join(proto::JoinRequest {
                room: "general".into(),
                create: true,
            })),
        };
        let (id, command) =
            decode_client_frame(&good.encode_to_vec()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(id, "r-1");
        assert_eq!(
            command,
            Command::Join {
                room: chat_core::model::RoomRef::from("general".to_owned()),
                create: true
            }
        );

        let garbage = decode_client_frame(b"\xff\xff\xff").expect_err("not protobuf");
        assert_eq!(garbage.error.code(), ErrorCode::Invalid);
        assert_eq!(garbage.request_id, "");

        let empty = proto::ClientFrame {
            request_id: "r-2".into(),
            command: None,
        };
        let e = decode_client_frame(&empty.encode_to_vec()).expect_err("no command");
        assert_eq!(
            (e.request_id.as_str(), e.error.code()),
            ("r-2", ErrorCode::Invalid)
        );

        let long = proto::ClientFrame {
            request_id: "x".repeat(MAX_REQUEST_ID_BYTES + 1),
            command: good.command.clone(),
        };
        let e = decode_client_frame(&long.encode_to_vec()).expect_err("long id");
        assert_eq!(
            (e.request_id.as_str(), e.error.code()),
            ("", ErrorCode::Invalid)
        );

        let bad_id = proto::ClientFrame {
            request_id: "r-3".into(),
            command: Some(proto::client_frame::Command::Leave(proto::LeaveRequest {
                conversation: "nope".into(),
            })),
        };
        let e = decode_client_frame(&bad_id.encode_to_vec()).expect_err("bad id");
        assert_eq!(
            (e.request_id.as_str(), e.error.code()),
            ("r-3", ErrorCode::Invalid)
        );
    }

    #[test]
    fn an_error_frame_carries_the_code_and_the_retry_hint() {
        let e = Error::unavailable("busy").with_retry_after(std::time::Duration::from_millis(5));
        let bytes = error_frame("r".into(), &e);
        let decoded = proto::ServerFrame::decode(bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.request_id, "r");
        match decoded.frame {
            Some(Frame::Error(f)) => {
                assert_eq!(f.code, "unavailable");
                assert_eq!(f.retry_after_ms, Some(5));
            }
            other => panic!("{other:?}"),
        }
    }
}
