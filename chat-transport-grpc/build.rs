//! Generates the client and the server of `proto/chat.proto`; the messages are
//! `chat-proto`'s.
//!
//! `protox` parses the file in Rust, so no `protoc` is needed. The client comes from
//! `tonic-prost-build`. The server is generated from the same descriptor with
//! `tonic-build`'s manual builder, so that `Connect` can use its own codec: the server
//! frames it writes are encoded once per event by the engine's fan-out (invariant 8) and
//! written as they are.

const PROTO_DIR: &str = "../proto";
const PROTO: &str = "../proto/chat.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], [PROTO_DIR])?;

    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .build_transport(false)
        .extern_path(".chat", "::chat_proto::proto")
        .compile_fds(fds.clone())?;

    let file = fds
        .file
        .iter()
        .find(|f| f.package() == "chat")
        .ok_or("proto/chat.proto has no package `chat`")?;
    let service_index = file
        .service
        .iter()
        .position(|s| s.name() == "ChatService")
        .ok_or("proto/chat.proto has no service `ChatService`")?;
    let service = &file.service[service_index];
    let mut builder = tonic_prost_build::manual::Service::builder()
        .name("ChatService")
        .package("chat");
    for (i, method) in service.method.iter().enumerate() {
        let input = rust_type(method.input_type())?;
        let output = rust_type(method.output_type())?;
        let mut m = tonic_prost_build::manual::Method::builder()
            .name(snake_case(method.name()))
            .route_name(method.name());
        for line in comments(file, service_index, i) {
            m = m.comment(line);
        }
        m = if method.server_streaming() {
            // Server frames are written as the engine encoded them.
            m.output_type("bytes::Bytes")
                .codec_path("crate::connect::codec::ConnectCodec")
        } else {
            m.output_type(output).codec_path("tonic_prost::ProstCodec")
        };
        m = m.input_type(input);
        if method.client_streaming() {
            m = m.client_streaming();
        }
        if method.server_streaming() {
            m = m.server_streaming();
        }
        builder = builder.method(m.build());
    }
    tonic_prost_build::manual::Builder::new()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .compile(&[builder.build()]);
    Ok(())
}

/// `.chat.SendMessageRequest` → `super::SendMessageRequest` (the server module sits in
/// the module that holds the messages).
fn rust_type(proto: &str) -> Result<String, String> {
    proto
        .strip_prefix(".chat.")
        .filter(|name| !name.contains('.'))
        .map(|name| format!("super::{name}"))
        .ok_or_else(|| format!("{proto}: methods take and return messages of package chat"))
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
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

/// The comment lines above method `method` of service `service`.
fn comments(file: &prost_types::FileDescriptorProto, service: usize, method: usize) -> Vec<String> {
    let index = |i: usize| i32::try_from(i).unwrap_or(i32::MAX);
    // FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2.
    let path = [6, index(service), 2, index(method)];
    file.source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .find(|loc| loc.path == path)
        .and_then(|loc| loc.leading_comments.as_deref())
        .map(|c| c.lines().map(|l| l.trim().to_owned()).collect())
        .unwrap_or_default()
}
