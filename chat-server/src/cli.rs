//! Command line and environment: every option has a flag and a `CHAT_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A real-time chat server: rooms, direct messages between friends, read receipts,
/// unread counts, presence and typing, over WebSocket and HTTP.
///
/// With no command it serves. It needs a JWT secret (or public key) to check tokens,
/// unless started with `--dev`, which makes one up and says so loudly.
#[derive(Debug, Parser)]
#[command(name = "chat-server", version)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub opts: Options,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Serve chat over WebSocket and HTTP (the default).
    Serve,
    /// Print a token for a user, signed with the configured secret.
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// A display name (the token's `name`).
        #[arg(long)]
        name: Option<String>,
        /// How long the token is valid, e.g. `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Apply the store's migrations and exit.
    Migrate,
}

/// Where messages live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An SQLite file (created when missing; its directory must exist).
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
    /// Nothing survives a restart. For trials.
    Memory,
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("sqlite: needs a path, e.g. sqlite:./chat.db".into());
            }
            Ok(StoreSpec::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(s.to_owned()))
        } else if s == "memory" {
            Ok(StoreSpec::Memory)
        } else {
            Err(format!(
                "unknown store {s:?}: use sqlite:PATH, postgres://… or memory"
            ))
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Options {
    /// Address to listen on.
    #[arg(
        long,
        env = "CHAT_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Where messages live: `sqlite:PATH`, a `postgres://` URL, or `memory`.
    #[arg(
        long,
        env = "CHAT_STORE",
        default_value = "sqlite:chat.db",
        global = true
    )]
    pub store: StoreSpec,

    /// PostgreSQL schema to use (with a postgres store).
    #[arg(long, env = "CHAT_PG_SCHEMA", default_value = "chat", global = true)]
    pub pg_schema: String,

    /// Secret for HS256 tokens (at least 32 bytes).
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with the RSA public key for RS256 tokens (instead of a secret).
    #[arg(long, env = "CHAT_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<PathBuf>,

    /// PEM file with the RSA private key, for `token` with RS256.
    #[arg(long, env = "CHAT_JWT_PRIVATE_KEY", global = true)]
    pub jwt_private_key: Option<PathBuf>,

    /// Name of the cookie that may carry the token.
    #[arg(
        long,
        env = "CHAT_COOKIE_NAME",
        default_value = "chat_token",
        global = true
    )]
    pub cookie_name: String,

    /// Key guarding the admin API (header `x-internal-api-key`); without it the admin
    /// API is off.
    #[arg(
        long,
        env = "CHAT_INTERNAL_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub internal_api_key: Option<String>,

    /// Largest message body, in bytes.
    #[arg(
        long,
        env = "CHAT_MAX_BODY_BYTES",
        default_value_t = 4096,
        global = true
    )]
    pub max_body_bytes: usize,

    /// Largest history page.
    #[arg(
        long,
        env = "CHAT_MAX_HISTORY_PAGE",
        default_value_t = 100,
        global = true
    )]
    pub max_history_page: u32,

    /// Frames queued per connection before a slow client is cut off.
    #[arg(
        long,
        env = "CHAT_OUTBOUND_QUEUE",
        default_value_t = 1024,
        global = true
    )]
    pub outbound_queue: usize,

    /// Commands per second per connection, sustained (0: no limit).
    #[arg(
        long,
        env = "CHAT_COMMANDS_PER_SECOND",
        default_value_t = 50,
        global = true
    )]
    pub commands_per_second: u32,

    /// Log filter, e.g. `info` or `chat_core=debug,info`.
    #[arg(long, env = "CHAT_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log line format.
    #[arg(
        long,
        env = "CHAT_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// How long a shutdown may take to drain before connections are dropped.
    #[arg(long, env = "CHAT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,

    /// Development mode: makes up a token secret when none is given (printed loudly),
    /// and lets the demo page sign in with just a user name. Never for production.
    #[arg(long, env = "CHAT_DEV", global = true)]
    pub dev: bool,
}
