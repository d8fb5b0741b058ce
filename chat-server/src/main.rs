//! # chat-server
//!
//! The ready chat server: the engine with the WebSocket/HTTP transport, SQLite by default
//! (or PostgreSQL), a demo page at `/`, and `/metrics`.
//!
//! ```text
//! cargo run --release -p chat-server -- --dev          # try it: SQLite at ./chat.db
//! chat-server token --user alice --name Alice          # mint a token
//! chat-server migrate                                  # apply migrations and exit
//! chat-server --help                                   # every option
//! ```
//!
//! # Layout
//!
//! - `cli`: the options (flag and `CHAT_*` variable for each).
//! - `store`: opens the configured store.
//! - `web`: the demo page, `/config.json`, `/dev/token`, `/metrics`.
//! - `metrics`: the Prometheus rendering of the engine's stats.

mod cli;
mod metrics;
mod store;
mod web;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use chat_core::ports::Authenticator;
use chat_core::Engine;
use chat_transport_ws::{ChatState, JwtAuthenticator, TokenSigner};
use clap::Parser;

use cli::{Cli, Cmd, LogFormat, Options};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.opts);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Cmd::Serve) {
            Cmd::Serve => serve(cli.opts).await,
            Cmd::Token { user, name, ttl } => {
                let keys = Keys::from_options(&cli.opts, false)?;
                let signer = keys.signer.ok_or_else(|| {
                    "no signing key: set --jwt-secret (CHAT_JWT_SECRET) or --jwt-private-key"
                        .to_owned()
                })?;
                println!(
                    "{}",
                    signer
                        .mint(&user, name.as_deref(), ttl)
                        .map_err(|e| e.to_string())?
                );
                Ok(())
            }
            Cmd::Migrate => {
                store::open(&cli.opts.store, &cli.opts.pg_schema).await?;
                println!("migrations applied to {}", store::describe(&cli.opts.store));
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chat-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(opts: &Options) {
    let filter = tracing_subscriber::EnvFilter::try_new(&opts.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a file, a pipe or a log collector gets
    // plain text (and NO_COLOR turns it off anywhere).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match opts.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The keys that check and (when possible) sign tokens.
struct Keys {
    authenticator: Arc<dyn Authenticator>,
    signer: Option<TokenSigner>,
}

/// The shortest HS256 secret accepted (RFC 7518 asks for at least the hash size).
const MIN_SECRET_BYTES: usize = 32;

impl Keys {
    fn from_options(opts: &Options, serving: bool) -> Result<Keys, String> {
        if let Some(path) = &opts.jwt_public_key {
            let pem =
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let authenticator = JwtAuthenticator::rs256_pem(&pem)
                .map_err(|e| format!("RS256 public key {}: {e}", path.display()))?;
            let signer = match &opts.jwt_private_key {
                Some(p) => {
                    let pem =
                        std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
                    Some(
                        TokenSigner::rs256_pem(&pem)
                            .map_err(|e| format!("{}: {e}", p.display()))?,
                    )
                }
                None => None,
            };
            return Ok(Keys {
                authenticator: Arc::new(authenticator),
                signer,
            });
        }
        let secret = match (&opts.jwt_secret, opts.dev && serving) {
            (Some(s), _) => {
                if s.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "the JWT secret has {} bytes; use at least {MIN_SECRET_BYTES}",
                        s.len()
                    ));
                }
                s.clone().into_bytes()
            }
            (None, true) => {
                let secret = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                eprintln!(
                    "\n==================== DEVELOPMENT MODE ====================\n\
                     No --jwt-secret was given, so this run made one up:\n\n    CHAT_JWT_SECRET={secret}\n\n\
                     Tokens signed with it die with this process. The demo page\n\
                     lets anyone sign in with just a user name. Never use --dev\n\
                     where others can reach the server.\n\
                     ==========================================================\n"
                );
                secret.into_bytes()
            }
            (None, false) if serving => {
                return Err(
                    "no JWT secret: set --jwt-secret (or CHAT_JWT_SECRET, at least 32 bytes) \
                     or --jwt-public-key, or run with --dev for a local trial"
                        .into(),
                )
            }
            (None, _) => {
                return Err("a token is signed with the server's key: set --jwt-secret \
                     (or CHAT_JWT_SECRET) as the server has it, or --jwt-private-key"
                    .into())
            }
        };
        Ok(Keys {
            authenticator: Arc::new(JwtAuthenticator::hs256(&secret)),
            signer: Some(TokenSigner::hs256(&secret)),
        })
    }
}

async fn serve(opts: Options) -> Result<(), String> {
    let keys = Keys::from_options(&opts, true)?;
    let store = store::open(&opts.store, &opts.pg_schema).await?;
    let engine = Engine::builder(store)
        .limits(opts.limits())
        .build()
        .await
        .map_err(|e| format!("starting the engine: {e}"))?;
    let state = ChatState::new(engine, keys.authenticator, opts.transport());
    let dev_signer = if opts.dev { keys.signer } else { None };
    let app = web::routes(state.clone(), dev_signer);
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        address = %addr,
        store = %store::describe(&opts.store),
        dev = opts.dev,
        "chat server listening; open http://{addr}/"
    );
    chat_transport_ws::serve_app(listener, app, state, shutdown_signal())
        .await
        .map_err(|e| format!("serving: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining connections");
}
