//! A small gRPC client over mutual TLS: joins a room, sends a message and reads the
//! room's history back, as the reference gRPC chat service's clients did.
//!
//! Run against `chat-server` with mutual TLS (the test CA of docs/grpc.md in `./tls`):
//!
//! ```text
//! chat-server --grpc-listen 127.0.0.1:50051 --tls-cert tls/server-cert.pem \
//!   --tls-key tls/server-key.pem --tls-client-ca tls/ca-cert.pem &
//! TOKEN=$(chat-server token --user user_789) cargo run -p example-grpc-chat -- \
//!   https://localhost:50051 tls room_001 "Hello over mutual TLS"
//! ```
//!
//! Arguments: the server URL, the directory holding `ca-cert.pem`, `client-cert.pem` and
//! `client-key.pem`, the room (id or name; created when missing), and the text. The bearer
//! token comes from `$TOKEN`.

use chat_transport_grpc::proto::chat_service_client::ChatServiceClient;
use chat_transport_grpc::proto::{GetMessagesRequest, JoinRequest, SendMessageRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Request;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: example-grpc-chat URL TLS_DIR ROOM TEXT (token in $TOKEN)";
    let url = args.next().ok_or(usage)?;
    let dir = args.next().ok_or(usage)?;
    let room = args.next().ok_or(usage)?;
    let text = args.next().ok_or(usage)?;
    let token: MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {}", std::env::var("TOKEN")?).parse()?;
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}"));

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca-cert.pem")?))
        .identity(Identity::from_pem(
            read("client-cert.pem")?,
            read("client-key.pem")?,
        ));
    let channel = Endpoint::from_shared(url)?
        .tls_config(tls)?
        .connect()
        .await?;
    let mut chat = ChatServiceClient::new(channel);
    fn authed<T>(token: &MetadataValue<tonic::metadata::Ascii>, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert("authorization", token.clone());
        r
    }

    chat.join(authed(
        &token,
        JoinRequest {
            room: room.clone(),
            create: true,
        },
    ))
    .await?;
    let sent = chat
        .send_message(authed(
            &token,
            SendMessageRequest {
                room_id: room.clone(),
                message: text,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    println!(
        "sent {} as {} ({})",
        sent.message_id, sent.user_id, sent.status
    );
    let page = chat
        .get_messages(authed(
            &token,
            GetMessagesRequest {
                room_id: room,
                limit: 20,
                offset: 0,
            },
        ))
        .await?
        .into_inner();
    println!(
        "{} messages in all; the first {}:",
        page.total_count,
        page.messages.len()
    );
    for m in page.messages {
        println!("  {} {}: {}", m.timestamp, m.user_id, m.message);
    }
    Ok(())
}
