//! Protocol encode and decode, JSON against protobuf (`chat.v1.proto`): the engine's
//! `JsonEncoder` and `chat_proto::ProtoEncoder` on a `message` event (what a fan-out
//! encodes once per wire format), and decoding of a `send` command (what a transport does
//! for every frame a client sends). The throughput is the frame's bytes, so each bench's
//! name and its `thrpt` line also give the frame's size.
//!
//! Run: `cargo bench -p chat-benches --bench protocol`

// criterion_group! makes a `pub fn` without docs; a bench binary has no public API.
#![allow(missing_docs)]

use chat_core::engine::{Command, Event};
use chat_core::model::{Message, MessageKind};
use chat_core::ports::{Encoder, JsonEncoder};
use chat_core::{ConversationId, MessageId, UserId};
use chat_proto::proto::{self, client_frame::Command as Cmd};
use chat_proto::ProtoEncoder;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use prost::Message as _;

fn message_event() -> Event {
    Event::Message {
        message: Message {
            id: MessageId(uuid::Uuid::now_v7()),
            conversation: ConversationId(uuid::Uuid::now_v7()),
            seq: 123_456,
            sender: UserId::new("user-0042").expect("user id"),
            client_id: Some("c-17".into()),
            kind: MessageKind::User,
            body: "x".repeat(64),
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            thread: None,
            reply_count: 0,
            attachments: Vec::new(),
        },
    }
}

fn encode(c: &mut Criterion) {
    let event = message_event();
    let encoder = JsonEncoder;
    let size = encoder.encode(&event).expect("encode").len();
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("encode_message_event_json", |b| {
        b.iter(|| encoder.encode(black_box(&event)).expect("encode"));
    });
    let proto = ProtoEncoder;
    let size = proto.encode(&event).expect("encode").len();
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("encode_message_event_proto", |b| {
        b.iter(|| proto.encode(black_box(&event)).expect("encode"));
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let frame = format!(
        r#"{{"type":"send","conversation":"{}","body":"{}","client_id":"c-17"}}"#,
        uuid::Uuid::now_v7(),
        "x".repeat(64)
    );
    let frame = frame.into_bytes();
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode_send_command_json", |b| {
        b.iter(|| serde_json::from_slice::<Command>(black_box(&frame)).expect("decode"));
    });
    let binary = proto::ClientFrame {
        request_id: String::new(),
        command: Some(Cmd::Send(proto::SendRequest {
            conversation: uuid::Uuid::now_v7().to_string(),
            body: "x".repeat(64),
            client_id: Some("c-17".into()),
            ..Default::default()
        })),
    }
    .encode_to_vec();
    group.throughput(Throughput::Bytes(binary.len() as u64));
    group.bench_function("decode_send_command_proto", |b| {
        b.iter(|| chat_proto::decode_client_frame(black_box(&binary)).expect("decode"));
    });
    let event = serde_json::to_vec(&message_event()).expect("encode");
    group.throughput(Throughput::Bytes(event.len() as u64));
    group.bench_function("decode_message_event_json", |b| {
        b.iter(|| serde_json::from_slice::<Event>(black_box(&event)).expect("decode"));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = encode, decode
}
criterion_main!(benches);
