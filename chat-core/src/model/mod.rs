//! The model: plain data and pure functions. No async, no I/O.
//!
//! - [`conversation`]: rooms and direct conversations, members and roles.
//! - [`message`]: messages, their kinds, edits and tombstones.
//! - [`watermark`]: per-member delivered/read watermarks, derived status, unread.
//! - [`friendship`]: the friendship state machine and the direct-message gate.
//! - [`presence`]: online while at least one connection is open.
//! - [`typing`]: typing leases that expire by themselves.
//! - [`limits`]: validation limits and the rate limiter.

pub mod conversation;
pub mod friendship;
pub mod limits;
pub mod message;
pub mod presence;
pub mod typing;
pub mod watermark;

pub use conversation::*;
pub use friendship::*;
pub use limits::*;
pub use message::*;
pub use presence::*;
pub use typing::*;
pub use watermark::*;
