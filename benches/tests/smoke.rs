//! CI smoke of the load generator: the bench server in process (memory store) on
//! 127.0.0.1:0, and the fan-out scenario for about a second with tiny numbers. It asserts
//! only that messages were delivered and none was lost, never a time.

use std::time::Duration;

use chat_benches::loadgen::{self, Options, Proto};
use chat_benches::server::{start, ServerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_everything_through_the_real_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server_opts = ServerOptions::default();
    let server = start(listener, &server_opts).await.expect("bench server");
    let opts = Options {
        label: "smoke".into(),
        proto: Proto::Chat,
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
    assert_eq!(outcome.lost, Some(0), "{outcome:?}");
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
}
