//! The bench server: our engine behind `chat_transport_ws::serve` over a chosen store,
//! with the limits raised for load, for the load generator to hit.
//!
//! `bench-server --store memory|sqlite|postgres [--bus memory|redis://…|nats://…]
//! [--one-node-bus] [--node-id UUID] [--pg-schema NAME] [--addr 127.0.0.1:4100]
//! [--secret S] [--queue N] [--max-pending-appends N] [--admin-key K]
//! [--tls-cert PEM --tls-key PEM] [--grpc ADDR]`; prints `listening on ADDR` and runs until
//! SIGINT or SIGTERM. `--max-pending-appends` bounds the sends waiting for the store (0:
//! no bound; the engine's default otherwise); `--admin-key` turns on
//! `GET /api/v1/admin/stats` (the soak, the cluster benchmarks). With `--tls-cert` and
//! `--tls-key` it serves `wss://` (to compare with `ws://`). `--grpc ADDR` also serves the
//! gRPC transport (`chat.ChatService`) on the same engine, over TLS with the same
//! certificate when one is given, and prints `grpc listening on ADDR`.
//!
//! Several nodes: the same `--bus` server URL and `--store postgres --pg-schema NAME` on
//! each (one schema for all, left in place on exit; a server bus with another store is
//! refused, unless `--one-node-bus`: one node alone on a server bus over the memory or
//! SQLite store, to measure what the bus costs a node). Without `--pg-schema` a
//! PostgreSQL node uses a schema of its own and drops it on exit.

use chat_benches::server::{start, BusKind, ServerOptions, StoreKind};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    if let Err(e) = real_main() {
        eprintln!("bench-server: {e}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = ServerOptions::default();
    let mut addr = "127.0.0.1:4100".to_owned();
    let (mut tls_cert, mut tls_key) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--store" => {
                let v = value()?;
                opts.store = StoreKind::parse(&v).ok_or_else(|| format!("unknown store {v:?}"))?;
            }
            "--bus" => {
                let v = value()?;
                opts.bus = BusKind::parse(&v).ok_or_else(|| {
                    format!("unknown bus {v:?}: memory, redis://HOST:PORT or nats://HOST:PORT")
                })?;
            }
            "--node-id" => {
                let v = value()?;
                opts.node_id = Some(v.parse().map_err(|_| format!("--node-id {v:?}: a UUID"))?);
            }
            "--pg-schema" => opts.pg_schema = Some(value()?),
            "--one-node-bus" => opts.one_node_bus = true,
            "--addr" => addr = value()?,
            "--secret" => opts.secret = value()?,
            "--queue" => {
                opts.queue_capacity = value()?.parse().map_err(|_| "--queue: a number")?;
            }
            "--max-pending-appends" => {
                opts.max_pending_appends = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--max-pending-appends: a number")?,
                );
            }
            "--admin-key" => opts.admin_key = Some(value()?),
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            "--grpc" => {
                let v = value()?;
                let at: std::net::SocketAddr = v
                    .parse()
                    .map_err(|_| format!("--grpc: {v:?} is not IP:PORT"))?;
                if !at.ip().is_loopback() {
                    return Err("the bench server listens on loopback only".into());
                }
                opts.grpc = Some(at);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    opts.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(chat_tls::TlsFiles::new(cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not IP:PORT"))?;
    if !sock.ip().is_loopback() {
        return Err("the bench server listens on loopback only".into());
    }
    if let BusKind::Redis(url) | BusKind::Nats(url) = &opts.bus {
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h))
            .and_then(|h| h.split(['/', '?']).next())
            .unwrap_or_default();
        let loopback = host
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback {
            return Err(format!(
                "--bus {url:?}: the bench server talks to a bus at a loopback IP:PORT only"
            ));
        }
    }
    if let Err(e) = rlimit::increase_nofile_limit(1 << 20) {
        eprintln!("bench-server: could not raise the open-file limit: {e}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let listener = chat_transport_ws::bind(sock).map_err(|e| format!("bind {sock}: {e}"))?;
        let server = start(listener, &opts).await?;
        println!("listening on {} pid {}", server.addr, std::process::id());
        if let Some(grpc) = server.grpc_addr {
            println!("grpc listening on {grpc}");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("signal: {e}"))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.stop().await;
        Ok(())
    })
}
