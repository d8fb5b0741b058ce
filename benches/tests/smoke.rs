//! CI smoke of the load generator: the bench server in process on 127.0.0.1:0, and the
//! fan-out, overload and soak scenarios for a few seconds with tiny numbers. They assert
//! what must hold (delivered, nothing lost, every send answered, sessions back to where
//! they were after each storm), never a time or a rate.

use std::time::Duration;

use chat_benches::loadgen::{self, scenarios, Options, Proto};
use chat_benches::server::{start, ServerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_everything_through_the_real_server() {
    fanout_through_the_real_server(Proto::Chat).await;
}

/// The same over the binary subprotocol `chat.v1.proto`: protobuf frames both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_protobuf_frames_delivers_everything() {
    fanout_through_the_real_server(Proto::ChatProto).await;
}

/// Nothing acknowledged went missing, and every send was acknowledged (so that *lost*,
/// which counts only acknowledged messages, had something to count).
fn assert_nothing_lost(outcome: &loadgen::Outcome) {
    assert_eq!(outcome.lost, Some(0), "{outcome:?}");
    assert!(
        !outcome
            .notes
            .iter()
            .any(|n| n.contains("never acknowledged")),
        "every send was acknowledged: {outcome:?}"
    );
}

async fn fanout_through_the_real_server(proto: Proto) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server_opts = ServerOptions::default();
    let server = start(listener, &server_opts).await.expect("bench server");
    let opts = Options {
        label: "smoke".into(),
        proto,
        addr: server.addr.to_string(),
        server_pid: Some(std::process::id()),
        secret: server_opts.secret.clone(),
        rooms: 2,
        members: 3,
        rate: 20.0,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        setup_concurrency: 4,
        ..Options::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        loadgen::run("fanout", "smoke-fanout", &opts),
    )
    .await
    .expect("the scenario is bounded")
    .expect("the scenario ran");
    server.stop().await;

    assert!(outcome.messages_sent > 0, "{outcome:?}");
    assert!(outcome.deliveries > 0, "{outcome:?}");
    assert_eq!(
        outcome.deliveries,
        outcome.messages_sent * 2,
        "each message reaches the 2 other members: {outcome:?}"
    );
    assert_nothing_lost(&outcome);
    assert_eq!(
        outcome.gaps,
        Some(0),
        "no member saw a seq gap: {outcome:?}"
    );
    assert_eq!(outcome.errors, 0, "{outcome:?}");
    assert!(
        outcome.server_rss_kib.is_some(),
        "/proc was read: {outcome:?}"
    );
    assert!(
        outcome.bytes_per_delivery.is_some_and(|b| b > 64.0),
        "every delivery carries its 64-byte body: {outcome:?}"
    );
    assert!(
        outcome.queued_at_close.is_some() && outcome.loadgen_cpu_pct.is_some(),
        "the backlog at close and the load generator's CPU are reported: {outcome:?}"
    );
}

/// The gRPC dialect against the bench server's `--grpc` listener: every message reaches
/// the room's other members through their `Connect` streams, no seq gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_fanout_delivers_everything_through_connect_streams() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server_opts = ServerOptions {
        grpc: Some("127.0.0.1:0".parse().expect("addr")),
        ..ServerOptions::default()
    };
    let server = start(listener, &server_opts).await.expect("bench server");
    let opts = Options {
        label: "smoke".into(),
        dialect: loadgen::Dialect::Grpc,
        addr: server.grpc_addr.expect("gRPC listening").to_string(),
        secret: server_opts.secret.clone(),
        rooms: 2,
        members: 3,
        rate: 20.0,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        setup_concurrency: 4,
        ..Options::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        loadgen::run("fanout", "smoke-grpc", &opts),
    )
    .await
    .expect("the scenario is bounded")
    .expect("the scenario ran");
    server.stop().await;

    assert!(outcome.messages_sent > 0, "{outcome:?}");
    assert_eq!(
        outcome.deliveries,
        outcome.messages_sent * 2,
        "each message reaches the 2 other members: {outcome:?}"
    );
    assert_nothing_lost(&outcome);
    assert_eq!(outcome.gaps, Some(0), "{outcome:?}");
    assert_eq!(outcome.errors, 0, "{outcome:?}");
}

/// The bench server in process over SQLite, with room for one pending append and an
/// admin key.
async fn sqlite_server(max_pending_appends: usize) -> (chat_benches::server::BenchServer, Options) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server_opts = ServerOptions {
        store: chat_benches::server::StoreKind::Sqlite,
        max_pending_appends: Some(max_pending_appends),
        admin_key: Some("smoke-key".into()),
        ..ServerOptions::default()
    };
    let server = start(listener, &server_opts).await.expect("bench server");
    let opts = Options {
        label: "smoke".into(),
        proto: Proto::Chat,
        addr: server.addr.to_string(),
        server_pid: Some(std::process::id()),
        secret: server_opts.secret.clone(),
        admin_key: server_opts.admin_key.clone(),
        setup_concurrency: 8,
        ..Options::default()
    };
    (server, opts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_every_send_with_an_ack_or_a_refusal() {
    let (server, mut opts) = sqlite_server(1).await;
    opts.rooms = 6;
    opts.members = 2;
    opts.sends_per_s = Some(2_000.0);
    opts.duration = Duration::from_millis(1_000);
    opts.warmup = Duration::from_millis(200);
    let outcome = tokio::time::timeout(
        Duration::from_secs(40),
        loadgen::run("overload", "smoke-overload", &opts),
    )
    .await
    .expect("the scenario is bounded")
    .expect("the scenario ran");
    server.stop().await;

    let ov = outcome.overload.clone().expect("overload figures");
    assert!(ov.acked_per_s > 0.0, "{outcome:?}");
    assert!(
        ov.refused > 0,
        "12 clients at 2,000 sends/s over one pending append: {outcome:?}"
    );
    assert_eq!(ov.retry_after_ms, Some(1_000), "{outcome:?}");
    assert_eq!(ov.unanswered, 0, "every send was answered: {outcome:?}");
    assert_eq!(ov.other_errors, 0, "{outcome:?}");
    assert_eq!(outcome.server_closed, 0, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_each_storm_sessions_users_and_live_conversations_return_to_where_they_were() {
    let (server, mut opts) = sqlite_server(1024).await;
    opts.rooms = 2;
    opts.rate = 5.0;
    let so = scenarios::SoakOptions {
        minutes: 4.0 / 60.0,
        storm_clients: 10,
        period: Duration::from_secs(2),
        settle: Duration::from_millis(200),
    };
    let report = tokio::time::timeout(Duration::from_secs(120), scenarios::soak(&opts, &so))
        .await
        .expect("the soak is bounded")
        .expect("the soak ran");
    server.stop().await;

    assert_eq!(
        report.samples.len(),
        3,
        "the baseline and two storms: {report:?}"
    );
    let baseline = report.samples[0].back.expect("baseline stats");
    assert_eq!(
        baseline,
        [12, 12, 2],
        "2 senders + 10 storm clients in 2 rooms"
    );
    for s in &report.samples[1..] {
        assert_eq!(s.failed, 0, "{report:?}");
        assert_eq!(
            s.away,
            Some([2, 2, 2]),
            "only the senders while away: {report:?}"
        );
        assert_eq!(s.back, Some(baseline), "back to the baseline: {report:?}");
        assert!(s.rss_kib > 0, "{report:?}");
    }
    assert_eq!(report.after_all_left, Some([0, 0, 0]), "{report:?}");
    assert!(report.deliveries > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

/// Two engines in one process on one `MemoryStore` and one `MemoryBus`: the nodes of a
/// cluster. The fan-out over both addresses puts every room's members on both nodes, so
/// each message reaches the other node over the bus; every member still gets every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_two_nodes_crosses_the_bus_and_loses_nothing() {
    use std::sync::Arc;

    use chat_benches::server::start_with;
    use chat_core::memory::{MemoryBus, MemoryStore};
    use chat_core::ports::{Bus, Store, SystemClock};

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(Arc::new(SystemClock)));
    let server_opts = ServerOptions {
        admin_key: Some("smoke-key".into()),
        ..ServerOptions::default()
    };
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        nodes.push(
            start_with(listener, &server_opts, store.clone(), Some(bus.clone()))
                .await
                .expect("node"),
        );
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let opts = Options {
        label: "smoke-2-nodes".into(),
        proto: Proto::Chat,
        addr: addrs[0].clone(),
        addrs: addrs.clone(),
        secret: server_opts.secret.clone(),
        admin_key: server_opts.admin_key.clone(),
        rooms: 2,
        members: 4,
        rate: 10.0,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        setup_concurrency: 4,
        ..Options::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        loadgen::run("fanout", "smoke-fanout-2-nodes", &opts),
    )
    .await
    .expect("the scenario is bounded")
    .expect("the scenario ran");
    // Both nodes had senders, and each received the other's messages over the bus.
    for addr in &addrs {
        let stats = loadgen::admin::admin_stats(addr, "smoke-key")
            .await
            .expect("stats");
        assert!(stats["messages_sent"].as_u64() > Some(0), "{addr}: {stats}");
        assert!(
            stats["bus"]["received"].as_u64() > Some(0),
            "{addr}: {stats}"
        );
    }
    for node in nodes {
        node.stop().await;
    }

    assert!(outcome.messages_sent > 0, "{outcome:?}");
    assert_eq!(
        outcome.deliveries,
        outcome.messages_sent * 3,
        "each message reaches the 3 other members: {outcome:?}"
    );
    assert_nothing_lost(&outcome);
    assert_eq!(outcome.gaps, Some(0), "{outcome:?}");
    assert_eq!(outcome.errors, 0, "{outcome:?}");
    let c = outcome.cluster.expect("cluster figures");
    assert_eq!(c.nodes, 2, "{c:?}");
    let sent = c.engine_messages.expect("both nodes' stats were read");
    assert!(sent > 0, "{c:?}");
    // The nodes' counters are read one after the other at each edge of the window, so a
    // message or two in flight there may count on one side only.
    let near = |n: Option<u64>| n.is_some_and(|n| n.abs_diff(sent) <= 2 + sent / 10);
    assert!(near(c.bus_published), "one publication per message: {c:?}");
    assert!(
        near(c.bus_received),
        "each message received once, by the other node: {c:?}"
    );
}

/// The connect storm against the bench server over SQLite: every client joins, then
/// every client comes back at once and resumes; the figures of both phases are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_storm_serves_every_client_in_both_phases() {
    let (server, mut opts) = sqlite_server(1024).await;
    opts.rooms = 4;
    opts.members = 10;
    opts.arrivals = 400.0;
    opts.duration = Duration::from_millis(200);
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        loadgen::run("connstorm", "smoke-connstorm", &opts),
    )
    .await
    .expect("the scenario is bounded")
    .expect("the scenario ran");
    server.stop().await;

    let storm = outcome.storm.clone().expect("storm figures");
    for (what, p) in [("join", &storm.join), ("reconnect", &storm.reconnect)] {
        assert_eq!(p.clients, 40, "{what}: {outcome:?}");
        assert_eq!(p.failed, 0, "{what}: {outcome:?}");
        assert!(
            p.p99_ms.is_some() && p.all_joined_s > 0.0,
            "{what}: {outcome:?}"
        );
        assert!(p.server_cpu_s.is_some(), "{what}: {outcome:?}");
    }
    assert_eq!(storm.join.arrivals_per_s, Some(400.0));
    assert!(
        storm.join.all_joined_s >= 39.0 / 400.0,
        "arrivals are paced: {outcome:?}"
    );
    assert_eq!(storm.reconnect.arrivals_per_s, None);
    assert!(storm.join.rss_per_conn_kib.is_some(), "{outcome:?}");
}
