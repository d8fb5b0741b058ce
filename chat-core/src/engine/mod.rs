//! The engine: sessions, commands and fan-out.

mod event;

pub use event::{Audience, Delivery, Event, Skip};
