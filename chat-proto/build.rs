//! Generates the protobuf messages of `proto/chat.proto` (no client, no server: the gRPC
//! transport generates those against these messages).
//!
//! `protox` parses the file in Rust, so no `protoc` is needed.

use std::path::PathBuf;

use prost::Message as _;

const PROTO_DIR: &str = "../proto";
const PROTO: &str = "../proto/chat.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile([PROTO], [PROTO_DIR])?;
    std::fs::write(out.join("chat_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
