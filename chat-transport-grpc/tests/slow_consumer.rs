//! A `Connect` stream that stops reading is cut off with `RESOURCE_EXHAUSTED` /
//! `slow_consumer` while a WebSocket member of the same room keeps receiving; it then
//! resumes by seq.

mod common;

use std::time::Duration;

use chat_transport_grpc::proto::{self, client_frame::Command as Cmd, event::Event as E};
use chat_transport_grpc::GrpcConfig;
use common::*;
use serde_json::json;
use tonic::transport::Endpoint;
use tonic::Code;

const MESSAGES: u64 = 120;

#[tokio::test]
async fn a_slow_stream_is_cut_off_while_a_websocket_member_keeps_receiving() {
    let config = GrpcConfig::default().queue_capacity(8);
    let server = Server::with_ws(config, unlimited()).await;
    let sender = server.api("sender").await;
    let room = sender.create_room("busy", false).await;
    // The slow client joins, then connects over a channel with tiny HTTP/2 windows, so
    // that what it does not read stays on the server.
    let slow_api = server.api("slowpoke").await;
    slow_api.join("busy").await;
    let tight = Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .expect("connect");
    let slow = Api::new(tight, Some(token("slowpoke")));
    let mut slow_conn = slow.connect().await;
    slow_conn.hello().await;
    let mut ws = WsClient::connect(&server, "watcher").await;
    ws.ok(json!({"type":"join","room":"busy"})).await;
    server.wait_connections(2).await;

    // The slow stream reads nothing while the room gets busy.
    for i in 1..=MESSAGES {
        sender
            .send(&room.id, &format!("message number {i} with some text"))
            .await;
    }

    // The WebSocket member got every message, in order.
    for seq in 1..=MESSAGES {
        let m = ws.event("message", |_| true).await;
        assert_eq!(m["message"]["seq"], seq);
    }
    // The slow stream was cut off: what was already on its way, then the end.
    let mut have = 0;
    let end = loop {
        match slow_conn.next().await {
            Ok(Some(f)) => {
                if let Some(proto::server_frame::Frame::Event(proto::Event {
                    event: Some(E::Message(m)),
                })) = f.frame
                {
                    let seq = m.message.expect("message").seq;
                    assert_eq!(seq, have + 1, "no gaps before the cut");
                    have = seq;
                }
            }
            Ok(None) => panic!("the stream ended with OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(end.code(), Code::ResourceExhausted, "{end:?}");
    assert_eq!(code_of(&end).as_deref(), Some("slow_consumer"));
    assert!(have < MESSAGES, "cut off before the end, at {have}");
    assert_eq!(server.engine.stats().connections, 1, "the watcher stays");

    // It reconnects and resumes from what it has.
    let mut conn = slow_api.connect().await;
    conn.hello().await;
    let reply = conn
        .ok(Cmd::Resume(proto::ResumeRequest {
            conversations: vec![proto::ResumePoint {
                conversation: room.id.clone(),
                last_seq: have,
            }],
        }))
        .await;
    let proto::reply::Reply::Resumed(resumed) = reply else {
        panic!("{reply:?}")
    };
    let seqs: Vec<u64> = resumed.conversations[0]
        .messages
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, (have + 1..=MESSAGES).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_stream_whose_frames_wait_past_the_write_timeout_is_cut_off() {
    let config = GrpcConfig::default().write_timeout(Duration::from_millis(300));
    let server = Server::build(config, unlimited(), None, false).await;
    let sender = server.api("sender").await;
    let room = sender.create_room("quiet", false).await;
    let tight = Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .expect("connect");
    let slow = Api::new(tight, Some(token("slowpoke")));
    slow.join("quiet").await;
    let mut conn = slow.connect().await;
    conn.hello().await;
    // Far fewer frames than the queue holds, but more than the window lets through.
    for i in 0..30 {
        sender
            .send(&room.id, &format!("message number {i} with some text"))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let end = conn.end().await.expect_err("cut off");
    assert_eq!(end.code(), Code::ResourceExhausted, "{end:?}");
    assert_eq!(code_of(&end).as_deref(), Some("slow_consumer"));
}
