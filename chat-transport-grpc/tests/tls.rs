//! TLS with the caller's rustls configuration: who gets in, who does not, and client
//! certificates as identities (mutual TLS, off by default).

mod common;

use chat_transport_grpc::{proto, ClientCertIdentity, GrpcConfig};
use common::*;
use tonic::Code;

fn unread() -> proto::UnreadTotalRequest {
    proto::UnreadTotalRequest {}
}

/// A call fails; the status.
async fn refused(api: &Api) -> tonic::Status {
    api.c()
        .unread_total(api.req(unread()))
        .await
        .expect_err("refused")
}

/// A connection the server drops at the handshake: connecting fails, or (tonic connects
/// lazily at the TLS layer) the first call fails at the transport, before any service
/// could answer. The error's text, for naming the cause.
async fn dropped_at_handshake(
    channel: Result<tonic::transport::Channel, tonic::transport::Error>,
) -> String {
    match channel {
        Err(e) => format!("{e:?}"),
        Ok(channel) => {
            let status = refused(&Api::new(channel, Some(token("user_789")))).await;
            assert!(
                matches!(status.code(), Code::Unknown | Code::Unavailable),
                "a transport error, not an answer: {status:?}"
            );
            assert_eq!(code_of(&status), None, "no service answered: {status:?}");
            format!("{status:?}")
        }
    }
}

#[tokio::test]
async fn a_client_certificate_from_an_untrusted_ca_is_refused() {
    let pki = Pki::new();
    let server = Server::tls(GrpcConfig::default(), pki.server_config(true)).await;
    let stranger = pki.untrusted_client("user_789");
    let error = dropped_at_handshake(server.tls_channel(&pki.ca, Some(&stranger)).await).await;
    assert!(error.contains("UnknownCA"), "{error}");
    // The same user with a certificate from the trusted CA gets in.
    let trusted = pki.client("user_789");
    let channel = server
        .tls_channel(&pki.ca, Some(&trusted))
        .await
        .expect("trusted");
    let api = Api::new(channel, Some(token("user_789")));
    let unread = api.c().unread_total(api.req(unread())).await.expect("call");
    assert_eq!(unread.into_inner().unread, 0);
}

#[tokio::test]
async fn no_client_certificate_when_one_is_required_is_refused() {
    let pki = Pki::new();
    let server = Server::tls(GrpcConfig::default(), pki.server_config(true)).await;
    let error = dropped_at_handshake(server.tls_channel(&pki.ca, None).await).await;
    assert!(error.contains("CertificateRequired"), "{error}");
    assert_eq!(server.engine.stats().connections, 0);
    // Where certificates are optional, the token alone is enough.
    let optional = Server::tls(GrpcConfig::default(), pki.server_config(false)).await;
    let channel = optional.tls_channel(&pki.ca, None).await.expect("TLS");
    let api = Api::new(channel, Some(token("user_789")));
    api.c().unread_total(api.req(unread())).await.expect("call");
}

#[tokio::test]
async fn plaintext_on_the_tls_port_is_refused() {
    let pki = Pki::new();
    let server = Server::tls(GrpcConfig::default(), pki.server_config(false)).await;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect_timeout(WAIT);
    // HTTP/2 in clear text is not a TLS ClientHello: the connection is dropped.
    let error = dropped_at_handshake(endpoint.connect().await).await;
    assert!(
        ["broken pipe", "reset", "closed", "BrokenPipe"]
            .iter()
            .any(|w| error.contains(w)),
        "{error}"
    );
    // The server still serves TLS afterwards.
    let channel = server.tls_channel(&pki.ca, None).await.expect("TLS");
    let api = Api::new(channel, Some(token("user_789")));
    api.c().unread_total(api.req(unread())).await.expect("call");
}

#[tokio::test]
async fn with_certificate_identities_on_the_subject_cn_is_the_caller() {
    let pki = Pki::new();
    let config = GrpcConfig::default().client_cert_identity(ClientCertIdentity::SubjectCn);
    let server = Server::tls(config, pki.server_config(false)).await;
    let cert = pki.client("user_789");
    let channel = server
        .tls_channel(&pki.ca, Some(&cert))
        .await
        .expect("mutual TLS");
    // No token: the certificate says who.
    let api = Api::new(channel.clone(), None);
    let room = api.create_room("secure_room", false).await;
    assert_eq!(room.created_by, "user_789");
    let sent = api
        .c()
        .send_message(api.req(proto::SendMessageRequest {
            room_id: "secure_room".into(),
            user_id: "user_789".into(),
            message: "Secret message".into(),
            encrypted: true,
            ..Default::default()
        }))
        .await
        .expect("sent")
        .into_inner();
    assert_eq!(sent.status, "sent_encrypted");
    // A Connect stream too: its hello names the certificate's user.
    let mut conn = api.connect().await;
    assert_eq!(conn.hello().await.user, "user_789");
    // A token for the same user is fine; one for another user is refused.
    let same = Api::new(channel.clone(), Some(token("user_789")));
    same.c()
        .unread_total(same.req(unread()))
        .await
        .expect("same user");
    let other = Api::new(channel, Some(token("user_123")));
    let status = refused(&other).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(code_of(&status).as_deref(), Some("unauthenticated"));
    // Without a certificate, a token is needed.
    let bare = server.tls_channel(&pki.ca, None).await.expect("TLS");
    let status = refused(&Api::new(bare, None)).await;
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn certificate_identities_are_off_by_default() {
    let pki = Pki::new();
    let server = Server::tls(GrpcConfig::default(), pki.server_config(true)).await;
    let cert = pki.client("user_789");
    let channel = server
        .tls_channel(&pki.ca, Some(&cert))
        .await
        .expect("mutual TLS");
    let status = refused(&Api::new(channel, None)).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(code_of(&status).as_deref(), Some("unauthenticated"));
}
