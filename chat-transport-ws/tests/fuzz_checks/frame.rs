//! `frame`: any text → [`ClientFrame::parse`], as the WebSocket reader calls it.
//!
//! Properties: parsing never panics; a refusal is a [`FrameError`] whose code is
//! `invalid` and whose error frame encodes and decodes to itself; the request id is echoed
//! (on success and on failure) exactly when the frame is a JSON object with a valid `id`;
//! a frame that parses re-encodes to text that parses to the same frame.

use chat_core::error::ErrorBody;
use chat_core::ErrorCode;
use chat_transport_ws::protocol::MAX_REQUEST_ID_BYTES;
use chat_transport_ws::protocol::{ClientFrame, Control, FrameError, RequestId};
use serde_json::Value;

/// Bytes off the wire. A text frame is UTF-8 (the WebSocket layer refuses anything
/// else), so other bytes are read lossily: the parser still sees every mutation.
pub(crate) fn check_bytes(data: &[u8]) {
    check(&String::from_utf8_lossy(data));
}

/// What the request id of `text` must come back as, read independently of the parser.
#[derive(Debug, PartialEq)]
enum ExpectedId {
    /// Not a JSON object, or an `id` that is neither a short string nor an integer:
    /// the frame is refused and no id is echoed.
    Refused,
    /// A JSON object: this id (none when absent or null) is echoed.
    Echo(Option<RequestId>),
}

fn expected_id(text: &str) -> ExpectedId {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return ExpectedId::Refused;
    };
    match map.get("id") {
        None | Some(Value::Null) => ExpectedId::Echo(None),
        Some(Value::String(s)) if s.len() <= MAX_REQUEST_ID_BYTES => {
            ExpectedId::Echo(Some(RequestId::Text(s.clone())))
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => ExpectedId::Echo(Some(RequestId::Number(i))),
            None => ExpectedId::Refused,
        },
        Some(_) => ExpectedId::Refused,
    }
}

/// Checks one text frame; panics, naming it, when a property fails.
pub(crate) fn check(text: &str) {
    let expected = expected_id(text);
    match ClientFrame::parse(text) {
        Ok(frame) => {
            assert_eq!(
                expected,
                ExpectedId::Echo(frame.id.clone()),
                "the parsed id differs from the frame's `id`: {text:?}"
            );
            round_trip(text, &frame);
        }
        Err(e) => {
            if expected != ExpectedId::Refused {
                assert_eq!(
                    expected,
                    ExpectedId::Echo(e.id.clone()),
                    "the error does not echo the frame's `id`: {text:?}"
                );
            } else {
                assert_eq!(e.id, None, "an id echoed from a refused id: {text:?}");
            }
            typed_error(text, &e);
        }
    }
}

/// A parsed frame, encoded again as a client would send it, parses to the same frame.
fn round_trip(text: &str, frame: &ClientFrame) {
    let mut v = serde_json::to_value(&frame.command)
        .unwrap_or_else(|e| panic!("a parsed command does not encode ({e}): {text:?}"));
    if let Some(id) = &frame.id {
        v["id"] = serde_json::to_value(id).expect("a request id encodes");
    }
    let again = ClientFrame::parse(&v.to_string()).unwrap_or_else(|e| {
        panic!(
            "{text:?} parses, but its encoding {} does not: {}",
            super::show(&v),
            e.error
        )
    });
    assert_eq!(&again, frame, "{text:?} does not survive a round trip");
}

/// The refusal is `invalid`, explains itself, and its error frame is well formed.
fn typed_error(text: &str, e: &FrameError) {
    assert_eq!(
        e.error.code(),
        ErrorCode::Invalid,
        "a refused frame is `invalid`: {text:?} → {}",
        e.error
    );
    assert!(
        !e.error.message().is_empty(),
        "a refusal without a message: {text:?}"
    );
    let body = ErrorBody::from(&e.error);
    let frame = Control::Error {
        id: e.id.clone(),
        code: body.code,
        message: body.message,
        retry_after_ms: body.retry_after_ms,
    };
    let wire = serde_json::to_string(&frame).expect("an error frame encodes");
    let v: Value = serde_json::from_str(&wire).expect("an error frame is JSON");
    assert_eq!(v["type"], "error", "{wire}");
    assert_eq!(v["code"], ErrorCode::Invalid.as_str(), "{wire}");
    let back: Control = serde_json::from_str(&wire)
        .unwrap_or_else(|err| panic!("the error frame {wire} does not decode: {err}"));
    assert_eq!(back, frame, "the error frame does not survive a round trip");
}
