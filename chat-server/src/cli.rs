//! Command line and environment: every option has a flag and a `CHAT_*` variable.
//!
//! Defaults are read from [`Limits::default`] and the transport's [`WsConfig::default`],
//! never written here a second time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use chat_core::model::Limits;
use chat_tls::{ClientAuth, ListenerConfig, TlsFiles};
use chat_transport_ws::{Config as WsConfig, JwtAuthenticator};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The engine's defaults.
fn limits() -> Limits {
    Limits::default()
}

/// The transport's defaults.
fn transport() -> WsConfig {
    WsConfig::default()
}

/// An origin for `--allowed-origin`: `http(s)://host[:port]`, nothing after.
fn origin(s: &str) -> anyhow::Result<String> {
    if chat_transport_ws::is_origin(s) {
        Ok(s.trim().to_owned())
    } else {
        anyhow::bail!(
            "{s:?} is not an origin: write scheme://host[:port], e.g. https://chat.example.com"
        )
    }
}

/// A limit given in milliseconds, as a duration flag shows it (`5s`).
fn millis(ms: u64) -> humantime::Duration {
    Duration::from_millis(ms).into()
}

/// A real-time chat server: rooms, direct messages between friends, read receipts,
/// unread counts, presence and typing, over WebSocket and HTTP.
///
/// With no command it serves. It needs a JWT secret (or public key) to check tokens,
/// unless started with `--dev`, which makes one up and says so loudly.
#[derive(Debug, Parser)]
#[command(name = "chat-server", version)]
pub(crate) struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub opts: Options,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
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
pub(crate) enum StoreSpec {
    /// An SQLite file (created when missing; its directory must exist).
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
    /// Nothing survives a restart. For trials.
    Memory,
}

impl std::str::FromStr for StoreSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                anyhow::bail!("sqlite: needs a path, e.g. sqlite:./chat.db");
            }
            Ok(StoreSpec::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(s.to_owned()))
        } else if s == "memory" {
            Ok(StoreSpec::Memory)
        } else {
            anyhow::bail!("unknown store {s:?}: use sqlite:PATH, postgres://… or memory")
        }
    }
}

/// How nodes hear each other.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum BusSpec {
    /// One node: in-process.
    Memory,
    /// A `redis://` or `rediss://` URL.
    Redis(String),
    /// A `nats://` or `tls://` URL.
    Nats(String),
}

impl std::fmt::Debug for BusSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::bus::describe(self))
    }
}

impl std::str::FromStr for BusSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        if s == "memory" {
            Ok(BusSpec::Memory)
        } else if s.starts_with("redis://") || s.starts_with("rediss://") {
            Ok(BusSpec::Redis(s.to_owned()))
        } else if s.starts_with("nats://") || s.starts_with("tls://") {
            Ok(BusSpec::Nats(s.to_owned()))
        } else {
            anyhow::bail!("unknown bus {s:?}: use memory, redis://… or nats://…")
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether clients must show a certificate of `--tls-client-ca`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ClientAuthArg {
    /// A client may come without one; one it shows must be valid.
    Optional,
    /// Every client must show a valid one.
    Required,
}

impl From<ClientAuthArg> for ClientAuth {
    fn from(a: ClientAuthArg) -> Self {
        match a {
            ClientAuthArg::Optional => ClientAuth::Optional,
            ClientAuthArg::Required => ClientAuth::Required,
        }
    }
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub(crate) struct Options {
    /// Address to listen on.
    #[arg(
        long,
        env = "CHAT_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Address for the gRPC service (`chat.ChatService`, health, reflection) on the same
    /// engine; none by default. With `--tls-cert` it speaks TLS (and mutual TLS with
    /// `--tls-client-ca`), like the HTTP listener.
    #[arg(long, env = "CHAT_GRPC_LISTEN", global = true)]
    pub grpc_listen: Option<SocketAddr>,

    /// With mutual TLS on gRPC, a call without a bearer token is made as the user named
    /// by its client certificate's subject CN (docs/grpc.md). Off by default.
    #[arg(long, env = "CHAT_GRPC_CERT_IDENTITY", global = true)]
    pub grpc_cert_identity: bool,

    /// Where messages live: `sqlite:PATH`, a `postgres://` URL, or `memory`.
    #[arg(
        long,
        env = "CHAT_STORE",
        default_value = "sqlite:chat.db",
        global = true
    )]
    pub store: StoreSpec,

    /// How nodes hear each other: `memory` (one node), a `redis://` URL or a `nats://`
    /// URL. Several nodes need a PostgreSQL store; SQLite serves one node only.
    #[arg(long, env = "CHAT_BUS", default_value = "memory", global = true)]
    pub bus: BusSpec,

    /// Prefix of the bus's channels, subjects and keys (nodes of one cluster share it).
    #[arg(long, env = "CHAT_BUS_PREFIX", default_value = "chat", global = true)]
    pub bus_prefix: String,

    /// This node's id, a UUID (default: a new one at each start).
    #[arg(long, env = "CHAT_NODE_ID", global = true)]
    pub node_id: Option<uuid::Uuid>,

    /// How long a node's presence lease lasts without renewal: a node that dies leaves
    /// its users online this long at most. Renewed every third of it.
    #[arg(long, env = "CHAT_PRESENCE_TTL", default_value = "30s", global = true)]
    pub presence_ttl: humantime::Duration,

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

    /// Clock leeway on a token's `exp` and `nbf`: a token expired less than this long
    /// ago still passes.
    #[arg(
        long,
        env = "CHAT_JWT_LEEWAY",
        default_value_t = JwtAuthenticator::DEFAULT_LEEWAY.into(),
        global = true
    )]
    pub jwt_leeway: humantime::Duration,

    /// A web origin (`https://chat.example.com`) whose pages may use the token cookie,
    /// besides the server's own. Repeat the flag for more; the variable takes a
    /// comma-separated list. A cookie sent from any other origin is refused (403).
    #[arg(
        long = "allowed-origin",
        value_name = "ORIGIN",
        env = "CHAT_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = origin,
        global = true
    )]
    pub allowed_origins: Vec<String>,

    /// Name of the cookie that may carry the token.
    #[arg(
        long,
        env = "CHAT_COOKIE_NAME",
        default_value_t = transport().token_cookie,
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

    /// Largest WebSocket frame (or message) a client may send, in bytes.
    #[arg(
        long,
        env = "CHAT_MAX_FRAME_BYTES",
        default_value_t = transport().max_message_bytes,
        global = true
    )]
    pub max_frame_bytes: usize,

    /// Largest message body, in bytes.
    #[arg(
        long,
        env = "CHAT_MAX_BODY_BYTES",
        default_value_t = limits().max_body_bytes,
        global = true
    )]
    pub max_body_bytes: usize,

    /// Largest history page.
    #[arg(
        long,
        env = "CHAT_MAX_HISTORY_PAGE",
        default_value_t = limits().max_history_page,
        global = true
    )]
    pub max_history_page: u32,

    /// Largest page of `list_conversations` and `members` (and the page size in which
    /// friend lists are read).
    #[arg(
        long,
        env = "CHAT_MAX_LIST_PAGE",
        default_value_t = limits().max_list_page,
        global = true
    )]
    pub max_list_page: u32,

    /// A resume missing more messages than this in one conversation is answered
    /// `too_far_behind` (the client pages history).
    #[arg(
        long,
        env = "CHAT_MAX_RESUME_GAP",
        default_value_t = limits().max_resume_gap,
        global = true
    )]
    pub max_resume_gap: u64,

    /// Most conversations in one resume.
    #[arg(
        long,
        env = "CHAT_MAX_RESUME_CONVERSATIONS",
        default_value_t = limits().max_resume_conversations,
        global = true
    )]
    pub max_resume_conversations: usize,

    /// Rooms with more members get no per-message status in history (clients derive it
    /// from receipts).
    #[arg(
        long,
        env = "CHAT_STATUS_MEMBER_LIMIT",
        default_value_t = limits().status_member_limit,
        global = true
    )]
    pub status_member_limit: u32,

    /// Rooms with more connected members on this node get no presence fan-out between
    /// co-members (friends are still told).
    #[arg(
        long,
        env = "CHAT_PRESENCE_ROOM_LIMIT",
        default_value_t = limits().presence_room_limit,
        global = true
    )]
    pub presence_room_limit: usize,

    /// Conversations per user whose events a session receives live (plus any joined
    /// while connected); clients catch up on the others with resume.
    #[arg(
        long,
        env = "CHAT_MAX_LIVE_CONVERSATIONS",
        default_value_t = limits().max_live_conversations,
        global = true
    )]
    pub max_live_conversations: u32,

    /// Typing lease: a `typing` that is not renewed within it stops.
    #[arg(
        long,
        env = "CHAT_TYPING_TTL",
        default_value_t = millis(limits().typing_ttl_ms),
        global = true
    )]
    pub typing_ttl: humantime::Duration,

    /// Frames queued per connection before a slow client is cut off.
    #[arg(
        long,
        env = "CHAT_OUTBOUND_QUEUE",
        default_value_t = transport().queue_capacity,
        global = true
    )]
    pub outbound_queue: usize,

    /// Commands per second per connection (and per user over HTTP), sustained (0: no
    /// limit).
    #[arg(
        long,
        env = "CHAT_COMMANDS_PER_SECOND",
        default_value_t = limits().commands_per_second,
        global = true
    )]
    pub commands_per_second: u32,

    /// Commands a connection (and a user over HTTP) may burst above the rate.
    #[arg(
        long,
        env = "CHAT_COMMAND_BURST",
        default_value_t = limits().command_burst,
        global = true
    )]
    pub command_burst: u32,

    /// Hard cap on frames a client may send per flood window; above it the connection
    /// is closed (4029).
    #[arg(
        long,
        env = "CHAT_MAX_FRAMES_PER_WINDOW",
        default_value_t = transport().max_frames_per_window,
        global = true
    )]
    pub max_frames_per_window: u32,

    /// The window of `--max-frames-per-window`.
    #[arg(
        long,
        env = "CHAT_FLOOD_WINDOW",
        default_value_t = transport().flood_window.into(),
        global = true
    )]
    pub flood_window: humantime::Duration,

    /// A write to a client stuck this long closes the connection (4008); announced in
    /// `hello.limits.write_timeout_ms`.
    #[arg(
        long,
        env = "CHAT_WRITE_TIMEOUT",
        default_value_t = transport().write_timeout.into(),
        global = true
    )]
    pub write_timeout: humantime::Duration,

    /// Appends a node lets wait for the store at once; past it a send is refused at
    /// once with `unavailable` and a retry hint (0: no bound).
    #[arg(
        long,
        env = "CHAT_MAX_PENDING_APPENDS",
        default_value_t = limits().max_pending_appends,
        global = true
    )]
    pub max_pending_appends: usize,

    /// How often the server pings each connection.
    #[arg(
        long,
        env = "CHAT_PING_INTERVAL",
        default_value_t = transport().ping_interval.into(),
        global = true
    )]
    pub ping_interval: humantime::Duration,

    /// A connection silent (not even a pong) this long is closed (4000).
    #[arg(
        long,
        env = "CHAT_IDLE_TIMEOUT",
        default_value_t = transport().idle_timeout.into(),
        global = true
    )]
    pub idle_timeout: humantime::Duration,

    /// How long `/api/v1/ready` waits for the store before answering 503.
    #[arg(
        long,
        env = "CHAT_READY_TIMEOUT",
        default_value_t = transport().ready_timeout.into(),
        global = true
    )]
    pub ready_timeout: humantime::Duration,

    /// PEM file with the server's certificate chain (its own certificate first): the
    /// listener serves `https://` and `wss://` instead of `http://` and `ws://`. Needs
    /// `--tls-key`. SIGHUP re-reads both files; a pair that fails to load keeps the
    /// certificate in use.
    #[arg(long, env = "CHAT_TLS_CERT", value_name = "PEM", global = true)]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1,
    /// unencrypted).
    #[arg(long, env = "CHAT_TLS_KEY", value_name = "PEM", global = true)]
    pub tls_key: Option<PathBuf>,

    /// PEM file with the CA certificate(s) that sign client certificates: clients are
    /// asked for one (see `--tls-client-auth`). Read at start only.
    #[arg(long, env = "CHAT_TLS_CLIENT_CA", value_name = "PEM", global = true)]
    pub tls_client_ca: Option<PathBuf>,

    /// Whether a client must show a certificate of `--tls-client-ca` (default:
    /// `required` once a client CA is given).
    #[arg(long, env = "CHAT_TLS_CLIENT_AUTH", value_enum, global = true)]
    pub tls_client_auth: Option<ClientAuthArg>,

    /// A connection whose TLS handshake is not done within this is dropped.
    #[arg(
        long,
        env = "CHAT_TLS_HANDSHAKE_TIMEOUT",
        default_value_t = ListenerConfig::DEFAULT_HANDSHAKE_TIMEOUT.into(),
        global = true
    )]
    pub tls_handshake_timeout: humantime::Duration,

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
    #[arg(
        long,
        env = "CHAT_SHUTDOWN_TIMEOUT",
        default_value_t = transport().shutdown_grace.into(),
        global = true
    )]
    pub shutdown_timeout: humantime::Duration,

    /// Development mode: makes up a token secret when none is given (printed loudly),
    /// and lets the demo page sign in with just a user name. Never for production.
    #[arg(long, env = "CHAT_DEV", global = true)]
    pub dev: bool,
}

impl Options {
    /// The engine's limits: the defaults with what these options set.
    pub(crate) fn limits(&self) -> Limits {
        let mut l = Limits::default();
        l.max_body_bytes = self.max_body_bytes;
        l.max_history_page = self.max_history_page;
        l.max_list_page = self.max_list_page;
        l.max_resume_gap = self.max_resume_gap;
        l.max_resume_conversations = self.max_resume_conversations;
        l.status_member_limit = self.status_member_limit;
        l.presence_room_limit = self.presence_room_limit;
        l.max_live_conversations = self.max_live_conversations;
        l.typing_ttl_ms = u64::try_from(self.typing_ttl.as_millis()).unwrap_or(u64::MAX);
        l.commands_per_second = self.commands_per_second;
        l.command_burst = self.command_burst;
        l.max_pending_appends = self.max_pending_appends;
        l
    }

    /// The transport's settings: the defaults with what these options set.
    pub(crate) fn transport(&self) -> WsConfig {
        let mut config = WsConfig::default()
            .queue_capacity(self.outbound_queue)
            .token_cookie(self.cookie_name.clone())
            .max_message_bytes(self.max_frame_bytes)
            .flood_limit(self.max_frames_per_window, *self.flood_window)
            .keepalive(*self.ping_interval, *self.idle_timeout)
            .write_timeout(*self.write_timeout)
            .allowed_origins(self.allowed_origins.iter().cloned());
        config.shutdown_grace = *self.shutdown_timeout;
        config.tls = ListenerConfig::default().handshake_timeout(*self.tls_handshake_timeout);
        config.ready_timeout = *self.ready_timeout;
        if let Some(key) = &self.internal_api_key {
            config = config.admin_api_key(key.clone());
        }
        config
    }

    /// The gRPC transport's settings, from the same limits as the WebSocket's.
    pub(crate) fn grpc(&self) -> chat_transport_grpc::GrpcConfig {
        let identity = if self.grpc_cert_identity {
            chat_transport_grpc::ClientCertIdentity::SubjectCn
        } else {
            chat_transport_grpc::ClientCertIdentity::Off
        };
        chat_transport_grpc::GrpcConfig::default()
            .queue_capacity(self.outbound_queue)
            .max_message_bytes(self.max_frame_bytes)
            .keepalive(*self.ping_interval, *self.idle_timeout)
            .write_timeout(*self.write_timeout)
            .shutdown_grace(*self.shutdown_timeout)
            .client_cert_identity(identity)
    }

    /// The TLS files, when TLS is on (`--tls-cert` and `--tls-key`).
    ///
    /// # Errors
    /// Half a configuration: a certificate without a key or the reverse, client
    /// certificate options without TLS, `--tls-client-auth` without a client CA.
    pub(crate) fn tls_files(&self) -> anyhow::Result<Option<TlsFiles>> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => bail!(
                "--tls-cert (CHAT_TLS_CERT) needs --tls-key (CHAT_TLS_KEY), the \
                 certificate's private key"
            ),
            (None, Some(_)) => bail!(
                "--tls-key (CHAT_TLS_KEY) needs --tls-cert (CHAT_TLS_CERT), the \
                 certificate chain"
            ),
            (None, None) => {
                if self.tls_client_ca.is_some() || self.tls_client_auth.is_some() {
                    bail!(
                        "--tls-client-ca and --tls-client-auth need TLS: set --tls-cert \
                         and --tls-key (CHAT_TLS_CERT, CHAT_TLS_KEY)"
                    );
                }
                return Ok(None);
            }
        };
        let files = TlsFiles::new(cert, key);
        Ok(Some(match (&self.tls_client_ca, self.tls_client_auth) {
            (Some(ca), auth) => files.client_ca(ca, auth.map_or(ClientAuth::Required, Into::into)),
            (None, Some(_)) => bail!(
                "--tls-client-auth (CHAT_TLS_CLIENT_AUTH) needs --tls-client-ca \
                 (CHAT_TLS_CLIENT_CA), the CA that signs client certificates"
            ),
            (None, None) => files,
        }))
    }
}
