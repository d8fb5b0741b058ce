//! The properties the fuzz targets (`fuzz/fuzz_targets/*.rs`) and the bounded property
//! tests (`tests/fuzz_props.rs`) both check: one check function per target, fed by
//! libFuzzer there and by proptest strategies here. Each check panics, naming the input,
//! when the property fails.
//!
//! The fuzz crate includes this module by path, so it may use only what both have:
//! `chat-core`, `chat-transport-ws`, `serde_json`, `jsonwebtoken`, `axum`, `tower` and
//! `tokio`; no proptest, no `arbitrary` and nothing from `tests/common`.
//!
//! # Layout
//!
//! - [`frame`]: any text → `ClientFrame::parse`.
//! - [`jwt`]: any token, or one built from header and claims → `JwtAuthenticator`.
//! - [`http`]: a few requests in a row → the real router over a memory store.

pub(crate) mod frame;
pub(crate) mod http;
pub(crate) mod jwt;

use serde_json::Value;

/// The HS256 secret the authenticators under test trust.
pub(crate) const SECRET: &[u8] = b"test secret that is long enough";

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A single-threaded runtime, as a check needs one to drive async code to completion.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// A JSON value as compact text, for failure messages.
pub(crate) fn show(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(400) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// A JSON object as text from fields in order; names may repeat, as a forger or a
/// careless client may send.
pub(crate) fn object(fields: &[(String, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", body.join(","))
}
