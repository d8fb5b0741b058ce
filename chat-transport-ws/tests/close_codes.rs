//! Close codes: a read error is never reported as a normal close.

mod common;

use common::*;
use futures::SinkExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

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
