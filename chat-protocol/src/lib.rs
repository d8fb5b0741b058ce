//! Protocol v1: the frames a client sends and the frames the server sends, and the
//! close codes. The server transport (`chat-transport-ws`) and the clients
//! (`chat-client`) share these types.
//!
//! Decoding works on text and never touches a socket. `docs/protocol.md` is the
//! reference; a test parses every example there into these types.

use bytes::Bytes;
use chat_core::error::ErrorBody;
use chat_core::{Command, Error, ErrorCode, Event, Reply, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol of protocol v1 as JSON text frames. A client that names no
/// subprotocol (or none the server speaks) gets JSON too.
pub const SUBPROTOCOL_JSON: &str = "chat.v1.json";

/// The WebSocket subprotocol of protocol v1 as protobuf binary frames: each client frame
/// is one encoded `chat.ClientFrame`, each server frame one `chat.ServerFrame`, from
/// `proto/chat.proto` (the gRPC `Connect` stream's messages).
pub const SUBPROTOCOL_PROTO: &str = "chat.v1.proto";

/// The most bytes a request id may have.
pub const MAX_REQUEST_ID_BYTES: usize = 64;

/// A client-chosen request id: a string (at most 64 bytes) or an integer, echoed as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A string id.
    Text(String),
    /// A numeric id.
    Number(i64),
}

impl RequestId {
    fn from_value(v: Value) -> Option<RequestId> {
        match v {
            Value::String(s) if s.len() <= MAX_REQUEST_ID_BYTES => Some(RequestId::Text(s)),
            Value::Number(n) => n.as_i64().map(RequestId::Number),
            _ => None,
        }
    }
}

/// A decoded client frame: a core command with an optional request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Echoed in the reply or error.
    pub id: Option<RequestId>,
    /// The command.
    pub command: Command,
}

/// A client frame that could not be decoded, with the request id when one was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The request id, when the frame was a JSON object with a valid `id`.
    pub id: Option<RequestId>,
    /// Always `invalid`.
    pub error: Error,
}

impl ClientFrame {
    /// Decodes one text frame.
    ///
    /// # Errors
    /// `invalid` (with the request id when it could be read) for text that is not a JSON
    /// object, a bad `id`, an unknown `type`, a missing or unknown field.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
            id: None,
            error: Error::invalid(format!("not JSON: {e}")),
        })?;
        let Value::Object(mut map) = value else {
            return Err(FrameError {
                id: None,
                error: Error::invalid("a frame is a JSON object"),
            });
        };
        let id = match map.remove("id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(RequestId::from_value(v).ok_or_else(|| FrameError {
                id: None,
                error: Error::invalid(format!(
                    "`id` is a string of at most {MAX_REQUEST_ID_BYTES} bytes or an integer"
                )),
            })?),
        };
        let command = serde_json::from_value(Value::Object(map)).map_err(|e| FrameError {
            id: id.clone(),
            error: Error::invalid(format!("bad command: {e}")),
        })?;
        Ok(ClientFrame { id, command })
    }
}

impl ClientFrame {
    /// Encodes this frame as protocol v1 text: the command's JSON object with `id` added
    /// when there is one. [`ClientFrame::parse`] reads it back unchanged.
    pub fn encode(&self) -> String {
        let mut value = match serde_json::to_value(&self.command) {
            Ok(v) => v,
            Err(e) => {
                // Commands hold only strings, numbers and ids: serializing cannot fail.
                tracing::error!(error = %e, "encoding a command");
                return String::new();
            }
        };
        if let (Value::Object(map), Some(id)) = (&mut value, &self.id) {
            let id = match id {
                RequestId::Text(s) => Value::String(s.clone()),
                RequestId::Number(n) => Value::from(*n),
            };
            map.insert("id".to_owned(), id);
        }
        value.to_string()
    }
}

/// Limits announced in the `hello` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloLimits {
    /// Largest frame the client may send, in bytes (larger closes with 1009).
    pub max_frame_bytes: usize,
    /// Largest message body, in bytes.
    pub max_body_bytes: usize,
    /// Largest history page.
    pub max_history_page: u32,
    /// Largest `limit` of `list_conversations` and `members` (more is `invalid`).
    pub max_list_page: u32,
    /// A resume missing more than this in one conversation is `too_far_behind`.
    pub max_resume_gap: u64,
    /// Most conversations in one resume.
    pub max_resume_conversations: usize,
    /// Rooms with more members than this have no per-message `status` and no member
    /// watermarks in `history`: the client derives status from `receipt` events.
    pub status_member_limit: u32,
    /// Rooms with more live members (on one server) than this carry no `presence`
    /// events between co-members; friends are still told. Do not build a room's online
    /// list from presence when it is larger.
    pub presence_room_limit: usize,
    /// Conversations whose events reach a session live: the first this many by id, plus
    /// any joined while connected. A client in more catches up on the others with
    /// `resume` (or `history`) when it opens them.
    pub max_live_conversations: u32,
    /// Typing lease, in milliseconds: renew `typing` before it ends.
    pub typing_ttl_ms: u64,
    /// Commands per second, sustained (0: no limit); above it, `rate_limited` errors.
    pub commands_per_second: u32,
    /// Commands a client may burst above the rate.
    pub command_burst: u32,
    /// Frames per `flood_window_ms` above which the server closes with 4029.
    pub max_frames_per_window: u32,
    /// The flood window, in milliseconds.
    pub flood_window_ms: u64,
    /// Frames the server queues for this client before closing it with 4008.
    pub queue_capacity: usize,
    /// How often the server pings, in milliseconds.
    pub ping_interval_ms: u64,
    /// Silence after which the server closes with 4000, in milliseconds.
    pub idle_timeout_ms: u64,
    /// A write the client does not take within this time (it stopped reading) closes
    /// the connection with 4008, in milliseconds.
    pub write_timeout_ms: u64,
}

/// The first frame on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Always 1.
    pub protocol: u32,
    /// The authenticated user.
    pub user: UserId,
    /// The display name from the token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The limits in force.
    pub limits: HelloLimits,
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame {
    /// Sent by the server only: `hello`, `reply`, `error`.
    Control(Control),
    /// A pushed event, exactly the core's JSON event.
    Event(Event),
}

/// The frames that are not events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// The first frame.
    Hello(Hello),
    /// A command's answer.
    Reply {
        /// The request id, when the command had one.
        #[serde(default)]
        id: Option<RequestId>,
        /// The core reply.
        reply: Reply,
    },
    /// A command's failure, or a frame that could not be decoded.
    Error {
        /// The request id, when one could be read.
        #[serde(default)]
        id: Option<RequestId>,
        /// The stable code.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
        /// When to retry, in milliseconds, when the server knows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl Control {
    /// Every `type` tag of a control frame: with `Command::KINDS`, `Event::KINDS` and
    /// `Reply::KINDS` in chat-core, the wire kinds of protocol v1.
    pub const KINDS: &'static [&'static str] = &["hello", "reply", "error"];

    /// This frame's `type` tag (an entry of [`Control::KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Control::Hello(_) => "hello",
            Control::Reply { .. } => "reply",
            Control::Error { .. } => "error",
        }
    }
}

fn encode(frame: &Control) -> Bytes {
    match serde_json::to_vec(frame) {
        Ok(v) => Bytes::from(v),
        Err(e) => {
            tracing::error!(error = %e, "encoding a frame");
            Bytes::from_static(
                br#"{"type":"error","id":null,"code":"internal","message":"encoding failed"}"#,
            )
        }
    }
}

/// Encodes a reply frame.
pub fn reply_frame(id: Option<RequestId>, reply: Reply) -> Bytes {
    encode(&Control::Reply { id, reply })
}

/// Encodes an error frame.
pub fn error_frame(id: Option<RequestId>, error: &Error) -> Bytes {
    let body = ErrorBody::from(error);
    encode(&Control::Error {
        id,
        code: body.code,
        message: body.message,
        retry_after_ms: body.retry_after_ms,
    })
}

/// Encodes the hello frame.
pub fn hello_frame(hello: Hello) -> Bytes {
    encode(&Control::Hello(hello))
}

/// WebSocket close codes the server uses.
///
/// A read error is never reported as a normal close: each kind has its own code. Closes
/// caused by the client's behaviour, or ending its access, put the close frame ahead of
/// what is still queued (dropped: the client resumes by seq); the others deliver the
/// queue first ([`delivers_backlog`](close::delivers_backlog)).
pub mod close {
    /// The client closed, or the server closed normally.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down: reconnect (elsewhere) and resume.
    pub const SHUTDOWN: u16 = 1001;
    /// The client broke the WebSocket protocol (e.g. reserved bits, an unmasked or
    /// fragmented control frame).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A message or frame larger than the announced maximum.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed (e.g. the store was unavailable when the session opened, or
    /// reading the connection failed).
    pub const INTERNAL: u16 = 1011;
    /// Nothing received for the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4000;
    /// The credential the connection runs on expired, and no `refresh_token` replaced it.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The embedder revoked this user's access.
    pub const KICKED: u16 = 4003;
    /// The client did not read fast enough: reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The client sent more frames than the hard cap allows.
    pub const FLOOD: u16 = 4029;

    /// True when frames already queued for the client are written before a close frame
    /// with this code; false when the close frame goes out next and they are dropped.
    ///
    /// Dropped for closes the client caused (slow reading, flooding, silence, a bad
    /// frame) or that end its access: it would wait on the very client that is the
    /// problem, or send what it may no longer see. The client resumes by seq.
    pub const fn delivers_backlog(code: u16) -> bool {
        matches!(code, NORMAL | SHUTDOWN | INTERNAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_client_frame_parses_back_to_itself() {
        let conversation: chat_core::ConversationId = "0190f0c0-0000-7000-8000-000000000001"
            .parse()
            .unwrap_or_else(|e| panic!("{e:?}"));
        for id in [
            None,
            Some(RequestId::Text("a-1".into())),
            Some(RequestId::Number(-7)),
        ] {
            let frame = ClientFrame {
                id,
                command: Command::Send {
                    conversation,
                    body: "hi \"there\"".into(),
                    client_id: Some("c-1".into()),
                    reply_to: None,
                    attachments: Vec::new(),
                },
            };
            assert_eq!(ClientFrame::parse(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn an_error_frame_carries_the_retry_hint_only_when_there_is_one() {
        let hinted = Error::unavailable("overloaded")
            .with_retry_after(std::time::Duration::from_millis(1000));
        let frame: Value =
            serde_json::from_slice(&error_frame(Some(RequestId::Text("9".into())), &hinted))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frame["type"], "error");
        assert_eq!(frame["code"], "unavailable");
        assert_eq!(frame["retry_after_ms"], 1000);
        let plain: Value = serde_json::from_slice(&error_frame(None, &Error::invalid("no")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(plain.get("retry_after_ms").is_none(), "{plain}");
    }
}
