//! Ports: what the engine needs from the outside world.
//!
//! | port | async style | why |
//! |---|---|---|
//! | [`Store`] | `async-trait` | used as `dyn Store` so one engine binary picks SQLite or PostgreSQL at run time |
//! | [`Bus`] | `async-trait` | used as `dyn Bus` (in-memory or Redis) |
//! | [`Authenticator`] | `async-trait` | used as `dyn`; a JWT check is sync but a session lookup is not |
//! | [`Transport`] | sync | the engine must never wait on a client: `try_send` is non-blocking by design |
//! | [`Policy`] | sync | decisions are pure functions of facts the engine has already loaded |
//! | [`Clock`], [`IdGen`] | sync | reading time and making ids never waits |

pub mod auth;
pub mod bus;
pub mod clock;
pub mod policy;
pub mod store;
pub mod transport;

pub use auth::*;
pub use bus::*;
pub use clock::*;
pub use policy::*;
pub use store::*;
pub use transport::*;
