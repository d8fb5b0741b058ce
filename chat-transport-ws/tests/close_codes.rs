//! Every close code the protocol documents reaches the client, even one that is still
//! writing when the server closes: the server sends its close frame, then reads and
//! discards input until the client answers, instead of dropping a socket with unread
//! input (which makes the kernel send a reset that can destroy the close frame).
//!
//! And a read error is never reported as a normal close.

mod common;

use std::time::Duration;

use chat_core::model::Limits;
use chat_core::{Command, Reply};
use chat_transport_ws::Config;
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Creates a public room as `owner`, joins `members` to it, and returns its id.
async fn room_with(server: &Server, owner: &str, members: &[&str]) -> chat_core::ConversationId {
    let create = Command::CreateRoom {
        name: "busy".into(),
        visibility: Default::default(),
    };
    let room = match server.engine.execute_as(&uid(owner), create).await {
        Ok(Reply::Room { conversation, .. }) => conversation.id,
        other => panic!("{other:?}"),
    };
    for m in members {
        let join = Command::Join {
            room: room.into(),
            create: false,
        };
        server.engine.execute_as(&uid(m), join).await.expect("join");
    }
    room
}

/// Queues `n` messages of 4 KB in `room` (events for every member).
async fn backlog(server: &Server, room: chat_core::ConversationId, n: usize) {
    let body = "b".repeat(4000);
    for _ in 0..n {
        server
            .engine
            .system_message(room, &uid("alice"), &body)
            .await
            .expect("system message");
    }
}

/// Reads nothing for `delay`, then reads until the close (see [`read_close`]).
fn read_close_after<S>(mut stream: S, delay: Duration) -> tokio::task::JoinHandle<Option<u16>>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin
        + Send
        + 'static,
{
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        read_close(&mut stream).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_still_writing_gets_4029() {
    let config = Config::default().flood_limit(50, Duration::from_secs(30));
    let server = Server::with(config, Limits::default()).await;
    let room = room_with(&server, "alice", &["flood"]).await;
    // The client reads nothing at first: its receive window fills with events, so the
    // close frame waits on the server behind them.
    let (sink, stream) = connect_slow(&server, "flood").await.split();
    server.wait_connections(1).await;
    backlog(&server, room, 20).await;
    let writer = keep_writing(
        sink,
        json!({"type":"unread_total"}).to_string(),
        Duration::from_millis(1),
        100_000,
    );
    let reader = read_close_after(stream, Duration::from_millis(300));
    assert_eq!(reader.await.expect("reader"), Some(4029));
    let written = writer.await.expect("writer");
    assert!(
        written.stopped_by_close && written.frames > 50,
        "the client was still writing when it saw the close: {written:?}"
    );
    server.wait_connections(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_still_writing_gets_4008_without_waiting_for_its_backlog() {
    let mut config = Config::default()
        .queue_capacity(256)
        .flood_limit(100_000, Duration::from_secs(1));
    // Shorter than the time the client needs to read the whole backlog at its pace.
    config.write_timeout = Duration::from_secs(3);
    // Accepted sockets inherit the listener's small send buffer: what the server has not
    // sent stays in its own queue rather than in the kernel.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(8192).expect("sndbuf");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(64).expect("listen");
    let server = Server::on(listener, config, Limits::default()).await;
    let room = room_with(&server, "alice", &["slow"]).await;
    let (sink, mut stream) = connect_slow(&server, "slow").await.split();
    server.wait_connections(1).await;

    let writer = keep_writing(
        sink,
        json!({"type":"unread_total"}).to_string(),
        Duration::from_millis(10),
        3000,
    );
    // Reads one frame every 20 ms (about 200 KB/s of 4 KB messages): the 1 MB the
    // server queues would take five seconds.
    let reader = tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                Err(_) => panic!("nothing for 10 s"),
                Ok(None | Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map(|f| u16::from(f.code));
                    let _ = tokio::time::timeout(WAIT, async {
                        while let Some(Ok(_)) = stream.next().await {}
                    })
                    .await;
                    return code;
                }
                Ok(Some(Ok(_))) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });

    let body = "x".repeat(4000);
    let mut sent = 0;
    // Until the client is cut off: by the fan-out (an event does not fit) or by its
    // reader (a reply does not fit), whichever comes first.
    while server.engine.stats().connections == 1 {
        assert!(sent < 5000, "the slow client was never cut off");
        server
            .engine
            .system_message(room, &uid("alice"), &body)
            .await
            .expect("system message");
        sent += 1;
    }
    let code = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .expect("the reader ends")
        .expect("reader");
    assert_eq!(code, Some(4008), "the slow consumer sees its close code");
    let written = writer.await.expect("writer");
    assert!(
        written.stopped_by_close,
        "the client was still writing when it saw the close: {written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_closes_every_client_with_1001() {
    let mut server = Server::start().await;
    let users = ["u1", "u2", "u3"];
    let room = room_with(&server, "alice", &users).await;
    let mut clients = Vec::new();
    for u in users {
        clients.push(connect_slow(&server, u).await.split());
    }
    server.wait_connections(3).await;
    // Each client has events queued that it has not read yet, and keeps sending.
    backlog(&server, room, 40).await;
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (sink, stream) in clients {
        writers.push(keep_writing(
            sink,
            json!({"type":"unread_total"}).to_string(),
            Duration::from_millis(5),
            100_000,
        ));
        readers.push(read_close_after(stream, Duration::from_millis(500)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;
    for (u, reader) in users.iter().zip(readers) {
        let code = reader.await.expect("reader");
        assert_eq!(code, Some(1001), "{u} sees the shutdown close code");
    }
    for (u, writer) in users.iter().zip(writers) {
        let written = writer.await.expect("writer");
        assert!(
            written.stopped_by_close,
            "{u} was still writing when it saw the close: {written:?}"
        );
    }
}

/// A masked text frame whose payload is not UTF-8 (tungstenite's `Message::Text` cannot
/// hold one).
fn invalid_utf8_text() -> Message {
    Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    ))
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = Server::start().await;
    let mut c = server.connect("alice").await;
    c.ws.send(invalid_utf8_text()).await.expect("send");
    assert_eq!(read_close(&mut c.ws).await, Some(1007));
    server.wait_connections(0).await;
}

#[tokio::test]
async fn a_protocol_violation_closes_with_1002() {
    let server = Server::start().await;
    let mut c = server.connect("alice").await;
    // RSV1 set without an extension that defines it.
    let mut frame = Frame::message(&b"{}"[..], OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    c.ws.send(Message::Frame(frame)).await.expect("send");
    assert_eq!(read_close(&mut c.ws).await, Some(1002));
    server.wait_connections(0).await;
}

#[tokio::test]
async fn a_client_close_is_answered_normally() {
    let server = Server::start().await;
    let mut c = server.connect("alice").await;
    c.ws.close(None).await.expect("close");
    // The server answers the handshake; the stream then ends cleanly.
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match c.ws.next().await {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("in time");
    assert_eq!(end, Ok(()), "a clean end, not a reset");
    server.wait_connections(0).await;
}
