//! What the server offers besides chat (health, reflection), and the lists that must
//! agree with the engine's: the proto's commands, replies and events, and the error
//! table in `docs/grpc.md`.

mod common;

use std::collections::BTreeSet;

use chat_core::{Command, ErrorCode, Event, Reply};
use chat_transport_grpc::proto;
use common::*;
use prost::Message as _;
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

#[tokio::test]
async fn health_says_serving_and_reflection_lists_the_services() {
    let server = Server::start().await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "chat.ChatService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.Nothing".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let ask = |request: MessageRequest| {
        tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        }])
    };
    let mut answers = reflection
        .server_reflection_info(ask(MessageRequest::ListServices(String::new())))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.next().await.expect("an answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("{answer:?}")
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains("chat.ChatService"), "{names:?}");
    assert!(names.contains("grpc.health.v1.Health"), "{names:?}");
    // The descriptor of the service, for grpcurl and friends.
    let mut answers = reflection
        .server_reflection_info(ask(MessageRequest::FileContainingSymbol(
            "chat.ChatService".into(),
        )))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.next().await.expect("an answer").expect("ok");
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
        panic!("{answer:?}")
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).expect("descriptor"))
        .collect();
    let chat = files
        .iter()
        .find(|f| f.package() == "chat")
        .expect("chat.proto");
    let methods: Vec<&str> = chat.service[0].method.iter().map(|m| m.name()).collect();
    assert!(methods.contains(&"SendMessage") && methods.contains(&"Connect"));
}

fn chat_file() -> prost_types::FileDescriptorProto {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("set");
    set.file
        .into_iter()
        .find(|f| f.package() == "chat")
        .expect("chat.proto")
}

/// The field names of `message`'s oneof `oneof`.
fn oneof_fields(
    file: &prost_types::FileDescriptorProto,
    message: &str,
    oneof: &str,
) -> Vec<String> {
    let m = file
        .message_type
        .iter()
        .find(|m| m.name() == message)
        .unwrap_or_else(|| panic!("no message {message}"));
    let index = m
        .oneof_decl
        .iter()
        .position(|o| o.name() == oneof)
        .unwrap_or_else(|| panic!("no oneof {message}.{oneof}"));
    let index = i32::try_from(index).expect("index");
    m.field
        .iter()
        .filter(|f| f.oneof_index == Some(index) && !f.proto3_optional())
        .map(|f| f.name().to_owned())
        .collect()
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_proto_names_every_command_reply_and_event_of_the_engine() {
    let file = chat_file();
    assert_eq!(
        oneof_fields(&file, "ClientFrame", "command"),
        Command::KINDS,
        "ClientFrame.command is the list of commands"
    );
    assert_eq!(
        oneof_fields(&file, "Reply", "reply"),
        Reply::KINDS,
        "Reply.reply is the list of replies"
    );
    assert_eq!(
        oneof_fields(&file, "Event", "event"),
        Event::KINDS,
        "Event.event is the list of events"
    );
    // Every command but `refresh_token` (a stream's own) is a unary call too.
    let methods: BTreeSet<String> = file.service[0]
        .method
        .iter()
        .map(|m| snake_case(m.name()))
        .collect();
    for kind in Command::KINDS {
        assert_eq!(
            methods.contains(*kind),
            *kind != "refresh_token",
            "unary call for `{kind}`"
        );
    }
}

/// The rows of the markdown table that follows `heading` in `doc`: cells without their
/// backticks.
fn table_after(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in docs/grpc.md"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

fn code_name(code: tonic::Code) -> String {
    // `NotFound` → `NOT_FOUND`, as gRPC names them.
    snake_case(&format!("{code:?}")).to_ascii_uppercase()
}

#[test]
fn docs_grpc_md_prints_the_error_table_of_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grpc.md"))
        .expect("docs/grpc.md");
    let rows = table_after(&doc, "## Errors");
    let documented: Vec<(String, String)> =
        rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let expected: Vec<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| {
            (
                c.as_str().to_owned(),
                code_name(chat_transport_grpc::code_of(*c)),
            )
        })
        .collect();
    assert_eq!(documented, expected);
    let ends = table_after(&doc, "### How a stream ends");
    use chat_core::ports::CloseReason;
    use chat_transport_grpc::error::StreamEnd;
    for end in [
        StreamEnd::Engine(CloseReason::SlowConsumer),
        StreamEnd::Engine(CloseReason::Shutdown),
        StreamEnd::Engine(CloseReason::Kicked),
        StreamEnd::TokenExpired,
    ] {
        let row = ends
            .iter()
            .find(|r| r[0] == end.as_str())
            .unwrap_or_else(|| panic!("{} is not in the stream table", end.as_str()));
        assert_eq!(row[1], code_name(end.code()), "{}", end.as_str());
    }
}

/// The field table of replies, threads and attachments in `docs/grpc.md` is the proto's:
/// each row's message has that field, with that number, type and label, and every field
/// of `Attachment` is in it.
#[test]
fn docs_grpc_md_prints_the_reply_and_attachment_fields_of_the_proto() {
    use prost_types::field_descriptor_proto::{Label, Type};
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grpc.md"))
        .expect("docs/grpc.md");
    let rows = table_after(&doc, "### Replies, threads and attachments");
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("set");
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "chat")
        .expect("package chat");
    let message = |name: &str| {
        file.message_type
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no message {name}"))
    };
    let mut documented = BTreeSet::new();
    for row in &rows {
        // `optional uint64 reply_to = 11`
        let words: Vec<&str> = row[1].split_whitespace().collect();
        let (label, ty, name, number) = match words.as_slice() {
            [label, ty, name, "=", n] => (Some(*label), *ty, *name, *n),
            [ty, name, "=", n] => (None, *ty, *name, *n),
            _ => panic!("not a field: {row:?}"),
        };
        let field = message(&row[0])
            .field
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{}.{name} is not in the proto", row[0]));
        assert_eq!(field.number().to_string(), number, "{row:?}");
        let repeated = field.label() == Label::Repeated;
        assert_eq!(label == Some("repeated"), repeated, "{row:?}");
        assert_eq!(
            label == Some("optional"),
            field.proto3_optional(),
            "{row:?}"
        );
        let proto_type = match field.r#type() {
            Type::Uint64 => "uint64".to_owned(),
            Type::Uint32 => "uint32".to_owned(),
            Type::String => "string".to_owned(),
            Type::Message => field.type_name().trim_start_matches(".chat.").to_owned(),
            other => format!("{other:?}"),
        };
        assert_eq!(proto_type, ty, "{row:?}");
        documented.insert((row[0].clone(), name.to_owned()));
    }
    for field in &message("Attachment").field {
        assert!(
            documented.contains(&("Attachment".to_owned(), field.name().to_owned())),
            "Attachment.{} is not documented",
            field.name()
        );
    }
    assert_eq!(
        documented.len(),
        11,
        "the rows are the new fields, each once"
    );
}
