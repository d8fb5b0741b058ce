//! The wire protocols the load generator speaks: ours (protocol v1, as JSON or as
//! protobuf over the subprotocol `chat.v1.proto`), Socket.IO v4 over a plain WebSocket,
//! and the tiny JSON shape of the Python `websockets` peer.
//!
//! Everything here is pure frames in, frames out: no sockets.

use chat_proto::proto::{self as pb, client_frame::Command as Cmd, server_frame::Frame};
use prost::Message as _;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

/// Which server the load generator talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    /// Our server, protocol v1 (`/ws?token=…`, JSON commands with a `type`).
    Chat,
    /// Our server, protocol v1 as protobuf binary frames (subprotocol `chat.v1.proto`).
    ChatProto,
    /// Socket.IO v4 (Engine.IO 4) over a WebSocket: events `join` and `message`.
    SocketIo,
    /// The Python `websockets` peer: `{"op":"join"|"msg","room":…,"body":…}`.
    PyWs,
}

impl Proto {
    /// Parses `chat`, `chat-proto`, `socketio` or `pyws`.
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "chat" | "ours" => Some(Proto::Chat),
            "chat-proto" | "proto" => Some(Proto::ChatProto),
            "socketio" | "socket.io" | "socketioxide" => Some(Proto::SocketIo),
            "pyws" | "python-websockets" | "websockets" => Some(Proto::PyWs),
            _ => None,
        }
    }

    /// The URL to connect to; `token` only matters for ours.
    pub fn url(self, addr: &str, token: &str) -> String {
        match self {
            Proto::Chat | Proto::ChatProto => format!("ws://{addr}/ws?token={token}"),
            Proto::SocketIo => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
            Proto::PyWs => format!("ws://{addr}/"),
        }
    }

    /// Our server, in either encoding.
    pub fn is_ours(self) -> bool {
        matches!(self, Proto::Chat | Proto::ChatProto)
    }

    /// The WebSocket subprotocol to ask for, if any.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Proto::ChatProto => Some("chat.v1.proto"),
            _ => None,
        }
    }

    /// The message that joins (and, for ours, creates) a room by name, asking for an
    /// answer.
    pub fn join_message(self, room: &str) -> Message {
        match self {
            Proto::ChatProto => binary(
                "join",
                Cmd::Join(pb::JoinRequest {
                    room: room.to_owned(),
                    create: true,
                }),
            ),
            _ => Message::text(self.join_frame(room)),
        }
    }

    /// The message that sends `body` to a room (as [`Proto::send_frame`]).
    pub fn send_message(self, room: &str, body: &str) -> Message {
        match self {
            Proto::ChatProto => binary(
                "",
                Cmd::Send(pb::SendRequest {
                    conversation: room.to_owned(),
                    body: body.to_owned(),
                    client_id: None,
                    ..Default::default()
                }),
            ),
            _ => Message::text(self.send_frame(room, body)),
        }
    }

    /// Classifies a data message from the server (`None` for pings, pongs and closes).
    pub fn classify_message(self, msg: &Message) -> Option<Incoming> {
        match msg {
            Message::Text(t) => Some(self.classify(t.as_str())),
            Message::Binary(b) => Some(self.classify_binary(b)),
            _ => None,
        }
    }

    /// Classifies a binary frame: ours over `chat.v1.proto` decodes a `ServerFrame`.
    pub fn classify_binary(self, bytes: &[u8]) -> Incoming {
        if self != Proto::ChatProto {
            return Incoming::Other;
        }
        let Ok(frame) = pb::ServerFrame::decode(bytes) else {
            return Incoming::Error("a binary frame that is not a chat.ServerFrame".into());
        };
        match frame.frame {
            Some(Frame::Event(pb::Event {
                event: Some(pb::event::Event::Message(pb::MessageEvent { message: Some(m) })),
            })) => match Stamp::parse(&m.body) {
                Some(stamp) => Incoming::Delivery {
                    stamp,
                    seq: Some(m.seq),
                },
                None => Incoming::Other,
            },
            Some(Frame::Reply(pb::Reply { reply: Some(r) })) => match r {
                pb::reply::Reply::Sent(s) => Incoming::Sent {
                    seq: s.message.map(|m| m.seq),
                },
                pb::reply::Reply::Room(room) if frame.request_id == "join" => {
                    match room.conversation {
                        Some(c) => Incoming::Joined(c.id),
                        None => Incoming::Other,
                    }
                }
                _ => Incoming::Reply,
            },
            Some(Frame::Hello(_)) => Incoming::Ready,
            Some(Frame::Error(e)) => Incoming::Error(
                format!("{}: {}", e.code, e.message)
                    .chars()
                    .take(200)
                    .collect(),
            ),
            _ => Incoming::Other,
        }
    }

    /// The frame that joins (and, for ours, creates) a room by name, asking for an answer.
    pub fn join_frame(self, room: &str) -> String {
        match self {
            Proto::Chat | Proto::ChatProto => {
                format!(r#"{{"id":"join","type":"join","room":"{room}","create":true}}"#)
            }
            Proto::SocketIo => format!(r#"420["join","{room}"]"#),
            Proto::PyWs => format!(r#"{{"op":"join","room":"{room}"}}"#),
        }
    }

    /// The frame that sends `body` to a room (`room` is our conversation id, or the name
    /// for the peers).
    pub fn send_frame(self, room: &str, body: &str) -> String {
        match self {
            Proto::Chat | Proto::ChatProto => {
                format!(r#"{{"type":"send","conversation":"{room}","body":"{body}"}}"#)
            }
            Proto::SocketIo => format!(r#"42["message",{{"room":"{room}","body":"{body}"}}]"#),
            Proto::PyWs => format!(r#"{{"op":"msg","room":"{room}","body":"{body}"}}"#),
        }
    }

    /// Classifies a frame from the server.
    pub fn classify(self, text: &str) -> Incoming {
        match self {
            Proto::Chat | Proto::ChatProto => {
                if text.starts_with(r#"{"type":"message""#) {
                    match body_of(text) {
                        Some(stamp) => Incoming::Delivery {
                            stamp,
                            seq: number_after(text, r#""seq":"#),
                        },
                        None => Incoming::Other,
                    }
                } else if text.starts_with(r#"{"type":"reply""#) {
                    if find(text, r#""reply":{"type":"sent""#).is_some() {
                        Incoming::Sent {
                            seq: number_after(text, r#""seq":"#),
                        }
                    } else if find(text, r#""id":"join""#).is_some() {
                        match string_after(text, r#""conversation":{"id":""#) {
                            Some(id) => Incoming::Joined(id.to_owned()),
                            None => Incoming::Other,
                        }
                    } else {
                        Incoming::Reply
                    }
                } else if text.starts_with(r#"{"type":"hello""#) {
                    Incoming::Ready
                } else if text.starts_with(r#"{"type":"error""#) {
                    Incoming::Error(text.chars().take(200).collect())
                } else {
                    Incoming::Other
                }
            }
            Proto::SocketIo => {
                if text.starts_with(r#"42["message""#) {
                    match body_of(text) {
                        Some(stamp) => Incoming::Delivery { stamp, seq: None },
                        None => Incoming::Other,
                    }
                } else if text == "2" {
                    Incoming::Ping
                } else if text.starts_with("430") {
                    Incoming::Joined(String::new())
                } else if text.starts_with("0{") {
                    Incoming::Open
                } else if text.starts_with("40") {
                    Incoming::Ready
                } else if text.starts_with("44") {
                    Incoming::Error(text.chars().take(200).collect())
                } else {
                    Incoming::Other
                }
            }
            Proto::PyWs => {
                if text.starts_with(r#"{"op":"msg""#) {
                    match body_of(text) {
                        Some(stamp) => Incoming::Delivery { stamp, seq: None },
                        None => Incoming::Other,
                    }
                } else if text.starts_with(r#"{"op": "joined""#)
                    || text.starts_with(r#"{"op":"joined""#)
                {
                    Incoming::Joined(String::new())
                } else {
                    Incoming::Other
                }
            }
        }
    }
}

/// A protobuf client frame as a binary message.
fn binary(request_id: &str, command: Cmd) -> Message {
    let frame = pb::ClientFrame {
        request_id: request_id.to_owned(),
        command: Some(command),
    };
    Message::binary(frame.encode_to_vec())
}

/// What a server frame means to the load generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Socket.IO's Engine.IO open packet: answer `40`.
    Open,
    /// Ready for commands (our `hello`, Socket.IO's namespace connect).
    Ready,
    /// A join was answered; for ours, the conversation id.
    Joined(String),
    /// A message from another member, with its stamp (and, for ours, its seq).
    Delivery {
        /// The stamp the sender put in the body.
        stamp: Stamp,
        /// Our seq.
        seq: Option<u64>,
    },
    /// Ours: the sender's acknowledgement of a send, with the seq the store gave it.
    Sent {
        /// The seq.
        seq: Option<u64>,
    },
    /// Ours: another reply (resume, friends, …).
    Reply,
    /// Socket.IO ping: answer `3`.
    Ping,
    /// An error frame (the start of it).
    Error(String),
    /// Anything else (member joined, presence, …).
    Other,
}

/// What every 64-byte message body carries: when it was sent (nanoseconds since the load
/// generator's epoch), by which client, and its number from that client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Nanoseconds since the epoch of the load generator.
    pub sent_ns: u64,
    /// The sending client.
    pub sender: u32,
    /// The client's message counter.
    pub n: u32,
}

/// The body length of every benchmark message.
pub const BODY_BYTES: usize = 64;

impl Stamp {
    /// The 64-byte body: `T<16 hex>S<8 hex>N<8 hex>` padded with `.`.
    pub fn body(&self) -> String {
        let mut s = format!("T{:016x}S{:08x}N{:08x}", self.sent_ns, self.sender, self.n);
        while s.len() < BODY_BYTES {
            s.push('.');
        }
        s
    }

    /// Reads a body written by [`Stamp::body`].
    pub fn parse(body: &str) -> Option<Stamp> {
        let b = body.as_bytes();
        if b.len() < 35 || b[0] != b'T' || b[17] != b'S' || b[26] != b'N' {
            return None;
        }
        Some(Stamp {
            sent_ns: u64::from_str_radix(body.get(1..17)?, 16).ok()?,
            sender: u32::from_str_radix(body.get(18..26)?, 16).ok()?,
            n: u32::from_str_radix(body.get(27..35)?, 16).ok()?,
        })
    }
}

fn body_of(text: &str) -> Option<Stamp> {
    Stamp::parse(string_after(text, r#""body":""#)?)
}

/// Where `key` starts in `text` (memchr's SIMD search: this runs once per delivery).
pub(crate) fn find(text: &str, key: &str) -> Option<usize> {
    memchr::memmem::find(text.as_bytes(), key.as_bytes())
}

/// The string value that follows `key` (which ends with the opening quote).
fn string_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = find(text, key)? + key.len();
    let rest = text.get(start..)?;
    let end = memchr::memchr(b'"', rest.as_bytes())?;
    rest.get(..end)
}

/// The unsigned number that follows `key`.
pub(crate) fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = find(text, key)? + key.len();
    let digits: &str = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_round_trips_in_64_bytes() {
        let s = Stamp {
            sent_ns: 123_456_789_012,
            sender: 77,
            n: 5,
        };
        assert_eq!(s.body().len(), BODY_BYTES);
        assert_eq!(Stamp::parse(&s.body()), Some(s));
    }

    #[test]
    fn frames_are_classified_per_protocol() {
        let body = Stamp {
            sent_ns: 9,
            sender: 1,
            n: 2,
        }
        .body();
        let ours = format!(
            r#"{{"type":"message","message":{{"id":"x","conversation":"c","seq":42,"sender":"u","kind":"user","body":"{body}","created_at":"t"}}}}"#
        );
        assert!(matches!(
            Proto::Chat.classify(&ours),
            Incoming::Delivery { seq: Some(42), stamp } if stamp.n == 2
        ));
        let sio = format!(r#"42["message",{{"room":"r","body":"{body}"}}]"#);
        assert!(matches!(
            Proto::SocketIo.classify(&sio),
            Incoming::Delivery { .. }
        ));
        assert_eq!(Proto::SocketIo.classify("2"), Incoming::Ping);
        let py = Proto::PyWs.send_frame("r", &body);
        assert!(matches!(
            Proto::PyWs.classify(&py),
            Incoming::Delivery { .. }
        ));
        let binary_event = pb::ServerFrame {
            request_id: String::new(),
            frame: Some(Frame::Event(pb::Event {
                event: Some(pb::event::Event::Message(pb::MessageEvent {
                    message: Some(pb::Message {
                        seq: 7,
                        body: body.clone(),
                        ..Default::default()
                    }),
                })),
            })),
        };
        assert!(matches!(
            Proto::ChatProto.classify_message(&Message::binary(binary_event.encode_to_vec())),
            Some(Incoming::Delivery { seq: Some(7), stamp }) if stamp.n == 2
        ));
        let joined = r#"{"type":"reply","id":"join","reply":{"type":"room","conversation":{"id":"0190-ab","kind":"room"},"joined":true}}"#;
        assert_eq!(
            Proto::Chat.classify(joined),
            Incoming::Joined("0190-ab".into())
        );
    }
}
