//! # chat-benches
//!
//! Benchmarks of the chat engine, and the harness that compares it with other servers.
//! See `benches/README.md` for how to run them and `BENCHMARKS.md` for the figures.
//!
//! # Layout
//!
//! - `benches/fanout.rs`, `benches/protocol.rs`: criterion benches of the hot paths
//!   (engine fan-out in process; protocol encode and decode).
//! - [`loadgen`]: the load generator's scenarios, protocols, `/proc` readings and report
//!   (binary `loadgen`).
//! - [`server`]: the bench server, our engine over a chosen store behind
//!   `chat_transport_ws::serve` (binary `bench-server`).
//! - `peers/`: Socket.IO (Node), Python `websockets` and socketioxide servers with the
//!   same room semantics; separate projects, never built by the workspace or CI.
//! - `run.sh`: builds everything, runs every scenario against every server, writes the
//!   `BENCHMARKS.md` section.
//! - `cluster.sh`: one, two and four nodes on Redis or NATS (the bench server's `--bus`),
//!   the fan-out's members split over them; the "Several nodes" figures of `BENCHMARKS.md`.

pub mod loadgen;
pub mod server;
