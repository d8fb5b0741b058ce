//! Who is calling: a bearer token in `authorization` metadata, checked by the same
//! [`Authenticator`](chat_core::ports::Authenticator) as the WebSocket's, or (when
//! [`ClientCertIdentity::SubjectCn`] is on) the subject CN of the verified client
//! certificate.

use chat_core::ports::Identity;
use chat_core::{Error, ErrorCode, Result, UserId};
use tonic::metadata::MetadataMap;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::config::ClientCertIdentity;
use crate::state::GrpcState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who.
    pub(crate) identity: Identity,
    /// True when the call came over TLS.
    pub(crate) tls: bool,
}

/// The TLS details of a connection, as [`serve`](crate::serve) puts them in every
/// request's extensions.
pub(crate) fn tls_info(extensions: &tonic::Extensions) -> Option<&TlsConnectInfo<TcpConnectInfo>> {
    extensions.get::<TlsConnectInfo<TcpConnectInfo>>()
}

/// Authenticates a call; a refusal never reaches the engine.
///
/// # Errors
/// `unauthenticated` for a missing or refused credential, or a token and a client
/// certificate that name different users; `unavailable` when the authenticator could not
/// check.
pub(crate) async fn authenticate(
    state: &GrpcState,
    metadata: &MetadataMap,
    extensions: &tonic::Extensions,
) -> Result<Caller> {
    let tls = tls_info(extensions);
    let from_cert = match state.inner.config.client_cert_identity {
        ClientCertIdentity::SubjectCn => tls.and_then(cert_identity),
        _ => None,
    };
    let identity = match (bearer(metadata)?, from_cert) {
        (None, Some(cert)) => cert?,
        (None, None) => {
            return Err(Error::unauthenticated(
                "missing token (authorization: Bearer <token>)",
            ))
        }
        (Some(token), cert) => {
            let identity = check(state, token).await?;
            if let Some(cert) = cert {
                if cert?.user != identity.user {
                    return Err(Error::unauthenticated(
                        "the token and the client certificate name different users",
                    ));
                }
            }
            identity
        }
    };
    Ok(Caller {
        identity,
        tls: tls.is_some(),
    })
}

/// Checks a token with the authenticator: every refusal is `unauthenticated` (an
/// authenticator that could not check says `unavailable`).
pub(crate) async fn check(state: &GrpcState, token: &str) -> Result<Identity> {
    state
        .inner
        .authenticator
        .authenticate(token)
        .await
        .map_err(|e| match e.code() {
            ErrorCode::Unavailable => e,
            _ => Error::unauthenticated(e.message().to_owned()).with_source(e),
        })
}

/// The token of `authorization: Bearer <token>`, if any.
fn bearer(metadata: &MetadataMap) -> Result<Option<&str>> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::unauthenticated("the authorization metadata is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(Error::unauthenticated("empty bearer token"))
            } else {
                Ok(Some(token))
            }
        }
        _ => Err(Error::unauthenticated(
            "authorization metadata must be `Bearer <token>`",
        )),
    }
}

/// The identity in a verified client certificate: its subject CN; it lasts until the
/// certificate's `notAfter`. `None` when the connection presented no certificate.
fn cert_identity(tls: &TlsConnectInfo<TcpConnectInfo>) -> Option<Result<Identity>> {
    let certs = tls.peer_certs()?;
    let leaf = certs.first()?;
    Some(identity_of(leaf.as_ref()))
}

/// The user a DER certificate names in its subject CN.
pub(crate) fn identity_of(der: &[u8]) -> Result<Identity> {
    let refuse = |why: &str| Error::unauthenticated(format!("client certificate: {why}"));
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| refuse("not a certificate"))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .ok_or_else(|| refuse("no subject CN"))?
        .as_str()
        .map_err(|_| refuse("the subject CN is not text"))?;
    let user = UserId::new(cn).map_err(|_| refuse("the subject CN is not a user id"))?;
    let expires_at = chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0);
    Ok(Identity {
        user,
        display_name: None,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().expect("ascii"));
        m
    }

    #[test]
    fn a_bearer_token_is_read_and_anything_else_is_refused() {
        assert_eq!(bearer(&MetadataMap::new()).expect("none"), None);
        assert_eq!(bearer(&metadata("Bearer abc")).expect("token"), Some("abc"));
        assert_eq!(
            bearer(&metadata("bearer  abc ")).expect("token"),
            Some("abc")
        );
        for bad in ["Basic abc", "abc", "Bearer  "] {
            let e = bearer(&metadata(bad)).expect_err(bad);
            assert_eq!(e.code(), ErrorCode::Unauthenticated, "{bad}");
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let e = identity_of(b"not DER").expect_err("garbage");
        assert_eq!(e.code(), ErrorCode::Unauthenticated);
    }
}
