//! `cargo +nightly fuzz run frame`: any bytes → `ClientFrame::parse` (the properties are
//! in `chat-transport-ws/tests/fuzz_checks/frame.rs`).
#![no_main]

#[allow(dead_code)]
#[path = "../../chat-transport-ws/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::frame::check_bytes(data));
