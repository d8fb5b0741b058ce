//! # chat-server
//!
//! The ready chat server: the engine with the WebSocket/HTTP transport, SQLite by default
//! (or PostgreSQL), a demo page at `/`, and `/metrics`; over TLS with `--tls-cert` and
//! `--tls-key` (SIGHUP reloads the certificate).
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

mod bus;
mod cli;
mod metrics;
mod store;
mod web;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use chat_core::ports::Authenticator;
use chat_core::Engine;
use chat_transport_ws::{ChatState, JwtAuthenticator, TokenSigner};
use clap::Parser;

use cli::{Cli, Cmd, LogFormat, Options};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.opts);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain on one line: what failed, then each cause down
            // to the driver's or the OS's own words.
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Cmd::Serve) {
            Cmd::Serve => serve(cli.opts).await,
            Cmd::Token { user, name, ttl } => {
                let keys = Keys::from_options(&cli.opts, false)?;
                let signer = keys.signer.context(
                    "no signing key: set --jwt-secret (CHAT_JWT_SECRET) or --jwt-private-key",
                )?;
                let token = signer
                    .mint(&user, name.as_deref(), ttl)
                    .with_context(|| format!("signing a token for {user:?}"))?;
                println!("{token}");
                Ok(())
            }
            Cmd::Migrate => {
                store::open(&cli.opts.store, &cli.opts.pg_schema).await?;
                println!("migrations applied to {}", store::describe(&cli.opts.store));
                Ok(())
            }
        }
    })
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
    fn from_options(opts: &Options, serving: bool) -> anyhow::Result<Keys> {
        if let Some(path) = &opts.jwt_public_key {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the RS256 public key {}", path.display()))?;
            let authenticator = JwtAuthenticator::rs256_pem(&pem)
                .with_context(|| format!("the RS256 public key {}", path.display()))?
                .leeway(*opts.jwt_leeway);
            let signer = match &opts.jwt_private_key {
                Some(p) => {
                    let pem = std::fs::read(p).with_context(|| {
                        format!("reading the RS256 private key {}", p.display())
                    })?;
                    Some(
                        TokenSigner::rs256_pem(&pem)
                            .with_context(|| format!("the RS256 private key {}", p.display()))?,
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
                    bail!(
                        "the JWT secret has {} bytes; use at least {MIN_SECRET_BYTES}",
                        s.len()
                    );
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
            (None, false) if serving => bail!(
                "no JWT secret: set --jwt-secret (or CHAT_JWT_SECRET, at least 32 bytes) \
                 or --jwt-public-key, or run with --dev for a local trial"
            ),
            (None, _) => bail!(
                "a token is signed with the server's key: set --jwt-secret \
                 (or CHAT_JWT_SECRET) as the server has it, or --jwt-private-key"
            ),
        };
        Ok(Keys {
            authenticator: Arc::new(JwtAuthenticator::hs256(&secret).leeway(*opts.jwt_leeway)),
            signer: Some(TokenSigner::hs256(&secret)),
        })
    }
}

async fn serve(opts: Options) -> anyhow::Result<()> {
    // TLS first: a half configuration or a bad file is refused before anything opens.
    let tls = match opts.tls_files()? {
        Some(files) => Some(Arc::new(
            chat_tls::ServerTls::load(files).context("loading the TLS certificate")?,
        )),
        None => None,
    };
    let keys = Keys::from_options(&opts, true)?;
    let bus = bus::open(&opts.bus, &opts.bus_prefix, *opts.presence_ttl, &opts.store).await?;
    let store = store::open(&opts.store, &opts.pg_schema).await?;
    let mut builder = Engine::builder(store)
        .limits(opts.limits())
        .presence_ttl(*opts.presence_ttl);
    if let Some(bus) = bus {
        builder = builder.bus(bus);
    }
    if let Some(node) = opts.node_id {
        builder = builder.node(chat_core::NodeId(node));
    }
    let engine = builder.build().await.context("starting the engine")?;
    let engine_node = engine.node().0;
    let grpc_state = chat_transport_grpc::GrpcState::new(
        engine.clone(),
        keys.authenticator.clone(),
        opts.grpc(),
    );
    let state = ChatState::new(engine, keys.authenticator, opts.transport());
    let dev_signer = if opts.dev { keys.signer } else { None };
    let app = web::routes(state.clone(), dev_signer);
    let listener = chat_transport_ws::bind(opts.listen)
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(tls) = &tls {
        // Before the address is logged: from then on a SIGHUP reloads, never kills.
        reload_on_hangup(tls.clone())?;
        tracing::info!(
            fingerprint = %tls.fingerprint(),
            client_auth = match tls.files().client_ca {
                None => "off",
                Some((_, chat_tls::ClientAuth::Optional)) => "optional",
                Some((_, chat_tls::ClientAuth::Required)) => "required",
            },
            "TLS on: serving https and wss; SIGHUP reloads the certificate"
        );
    }
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let grpc = match opts.grpc_listen {
        Some(at) => {
            let grpc_listener = chat_transport_ws::bind(at)
                .with_context(|| format!("listening for gRPC on {at}"))?;
            let grpc_addr = grpc_listener
                .local_addr()
                .context("reading the gRPC address")?;
            tracing::info!(grpc_address = %grpc_addr, tls = tls.is_some(), "gRPC listening");
            let grpc_tls = tls.as_ref().map(|t| t.config());
            Some(tokio::spawn(chat_transport_grpc::serve(
                grpc_listener,
                grpc_state,
                grpc_tls,
                stopped(),
            )))
        }
        None => None,
    };
    tracing::info!(
        address = %addr,
        tls = tls.is_some(),
        store = %store::describe(&opts.store),
        bus = %bus::describe(&opts.bus),
        node = %engine_node,
        dev = opts.dev,
        "chat server listening; open {scheme}://{addr}/"
    );
    match &tls {
        Some(tls) => {
            chat_transport_ws::serve_app_tls(listener, app, state, tls.config(), stopped()).await
        }
        None => chat_transport_ws::serve_app(listener, app, state, stopped()).await,
    }
    .context("serving")?;
    if let Some(grpc) = grpc {
        grpc.await
            .context("the gRPC task")?
            .context("serving gRPC")?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// On each SIGHUP, re-reads the TLS certificate and key: new handshakes get them, open
/// connections keep theirs. A pair that fails to load is logged and the certificate in
/// use stays.
///
/// # Errors
/// The signal handler cannot be installed.
#[cfg(unix)]
fn reload_on_hangup(tls: Arc<chat_tls::ServerTls>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match tls.reload() {
                Ok(fingerprint) => tracing::info!(
                    %fingerprint,
                    "SIGHUP: TLS certificate reloaded; new handshakes get it"
                ),
                Err(e) => tracing::error!(
                    error = format!("{:#}", anyhow::Error::new(e)),
                    fingerprint = %tls.fingerprint(),
                    "SIGHUP: TLS reload failed; still serving the certificate loaded before"
                ),
            }
        }
    });
    Ok(())
}

/// No SIGHUP here: the certificate is read at start only.
#[cfg(not(unix))]
fn reload_on_hangup(_tls: Arc<chat_tls::ServerTls>) -> anyhow::Result<()> {
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
