//! Idle connections: the server's memory per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{errors, run_prefix, server, start, token, user_of};
use crate::loadgen::client::{connect, Client, Shared};
use crate::loadgen::{Options, Outcome};

/// Idle: N connections that authenticate (ours: `hello` received; Socket.IO: namespace
/// connected; Python: the WebSocket is open) and then do nothing. Reports the server's
/// RSS growth per connection.
///
/// # Errors
/// When a connection fails.
pub async fn idle(opts: &Options, name: &str) -> Result<Outcome, String> {
    let n = opts.connections;
    let prefix = run_prefix(name);
    let base = server(opts);
    let t0 = Instant::now();
    let results: Vec<Result<_, String>> = futures::stream::iter((0..n as u32).map(|id| {
        let tok = token(&opts.secret, &user_of(&prefix, id));
        let proto = opts.proto;
        let addr = opts.addr.clone();
        async move { connect(proto, &addr, &tok).await }
    }))
    .buffer_unordered(opts.setup_concurrency)
    .collect()
    .await;
    let setup = t0.elapsed();
    let shared = Arc::new(Shared::new(1));
    let mut clients = Vec::with_capacity(n);
    let mut failed = 0u64;
    let mut first_failure = None;
    for (id, r) in results.into_iter().enumerate() {
        match r {
            Ok(ws) => clients.push(Client::new(id as u32, opts.proto, 0, String::new(), ws)),
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
        }
    }
    let connected = clients.len() as u64;
    let running = start(clients, &shared, 2, 0.0, |_| false, |_| false);
    // Let the server settle (lazy allocations, the first pings) before reading RSS.
    tokio::time::sleep(opts.duration.min(Duration::from_secs(5))).await;
    let after = server(opts);
    running.finish(&shared, Duration::from_millis(100)).await;
    let mut o = Outcome::new(opts, name);
    o.params = format!("{n} connections, authenticated, idle");
    o.connections = connected;
    o.setup_s = Some(setup.as_secs_f64());
    if let (Some(b), Some(a)) = (base, after) {
        o.server_rss_kib = Some(a.rss_kib);
        if connected > 0 {
            o.rss_per_conn_kib =
                Some((a.rss_kib.saturating_sub(b.rss_kib)) as f64 / connected as f64);
        }
    }
    if failed > 0 {
        o.notes.push(format!(
            "{failed} connections failed: {}",
            first_failure.unwrap_or_default()
        ));
    }
    errors(&shared, &mut o);
    Ok(o)
}
