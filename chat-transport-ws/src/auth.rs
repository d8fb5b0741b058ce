//! Authentication: where the token comes from (and, for a cookie, from which origin), the
//! JWT authenticator with its revocation hook, the admin key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chat_core::ports::{Authenticator, Identity};
use chat_core::{Error, ErrorCode, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::ChatState;
use crate::tls::TlsConnectInfo;

/// Validates JSON Web Tokens: `sub` is the user id, the optional `name` the display name.
///
/// The algorithm is pinned when the authenticator is built (HS256 or RS256), so a token
/// with `alg: none` or another algorithm (an HS/RS swap) is refused. `exp` is required
/// and checked, `nbf` is checked when present, both with a clock leeway
/// ([`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY) unless set with [`leeway`](Self::leeway)).
/// A token that passes is then offered to the [`Revocations`] list, when one is set.
#[derive(Clone)]
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
    revocations: Option<Arc<dyn Revocations>>,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("leeway_secs", &self.validation.leeway)
            .field("revocations", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iat: Option<u64>,
    /// Required and checked by the validation; kept for `Identity::expires_at`.
    exp: u64,
}

/// The claims of a token whose signature, algorithm and times checked out, as a
/// [`Revocations`] list sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims<'a> {
    /// The subject: the user id.
    pub sub: &'a str,
    /// The token id, when the issuer sets one.
    pub jti: Option<&'a str>,
    /// When it was issued (seconds since the Unix epoch), when the issuer says.
    pub iat: Option<u64>,
}

/// A denylist that [`JwtAuthenticator`] asks about every token that is otherwise valid:
/// by token id (`jti`), by user (`sub`), or by user and issue time (`iat`: "every token
/// of this user issued before the kick"). A revoked token is refused with 401
/// `unauthenticated`, on the WebSocket handshake and on every HTTP request.
///
/// An `async-trait` trait because it is held as `dyn` and a list usually lives in a
/// database or a cache. Any `Fn(TokenClaims<'_>) -> bool` is one.
#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// True when the token must be refused.
    ///
    /// # Errors
    /// When the list cannot be read. The token is then refused, never let through: an
    /// `unavailable` error answers 503 (the client may retry), any other 401.
    async fn is_revoked(&self, token: TokenClaims<'_>) -> chat_core::Result<bool>;
}

#[async_trait]
impl<F> Revocations for F
where
    F: Fn(TokenClaims<'_>) -> bool + Send + Sync + 'static,
{
    async fn is_revoked(&self, token: TokenClaims<'_>) -> chat_core::Result<bool> {
        Ok(self(token))
    }
}

impl JwtAuthenticator {
    /// The clock leeway on `exp` and `nbf` unless [`leeway`](Self::leeway) sets another:
    /// a few seconds, for clocks that are not quite in step.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

    fn with_key(key: DecodingKey, alg: Algorithm) -> Self {
        let mut validation = Validation::new(alg);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = Self::DEFAULT_LEEWAY.as_secs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtAuthenticator {
            key,
            validation,
            revocations: None,
        }
    }

    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with_key(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// RS256 with an RSA public key in PEM form.
    ///
    /// # Errors
    /// `invalid` when the PEM is not an RSA public key.
    pub fn rs256_pem(public_key_pem: &[u8]) -> Result<Self, Error> {
        let key = DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| Error::invalid(format!("RSA public key: {e}")))?;
        Ok(Self::with_key(key, Algorithm::RS256))
    }

    /// Requires this `iss` claim.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self
    }

    /// Requires this `aud` claim.
    pub fn audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self
    }

    /// Clock skew allowed on `exp` and `nbf`, in whole seconds (a fraction is dropped):
    /// a token expired less than this long ago still passes.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Asks `list` about every token that is otherwise valid, and refuses the revoked.
    pub fn revocations(mut self, list: impl Revocations) -> Self {
        self.revocations = Some(Arc::new(list));
        self
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> chat_core::Result<Identity> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Error::unauthenticated(format!("invalid token: {e}")))?;
        let claims = data.claims;
        if let Some(list) = &self.revocations {
            let view = TokenClaims {
                sub: &claims.sub,
                jti: claims.jti.as_deref(),
                iat: claims.iat,
            };
            if list.is_revoked(view).await? {
                return Err(Error::unauthenticated("token revoked"));
            }
        }
        let user = UserId::new(claims.sub)
            .map_err(|_| Error::unauthenticated("invalid token: bad `sub`"))?;
        Ok(Identity {
            user,
            display_name: claims.name.filter(|n| !n.trim().is_empty()),
            expires_at: i64::try_from(claims.exp)
                .ok()
                .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0)),
        })
    }
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `Authorization: Bearer …`.
    Header,
    /// The `token` query parameter.
    Query,
    /// The token cookie: a browser sends it on its own, whoever made the page.
    Cookie,
}

/// Finds the token: `Authorization: Bearer …`, else the `token` query parameter, else
/// the cookie named `cookie`.
pub(crate) fn find_token(parts: &Parts, cookie: &str) -> Option<(String, Source)> {
    bearer(&parts.headers)
        .map(|t| (t, Source::Header))
        .or_else(|| query_token(&parts.uri).map(|t| (t, Source::Query)))
        .or_else(|| cookie_token(&parts.headers, cookie).map(|t| (t, Source::Cookie)))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn query_token(uri: &axum::http::Uri) -> Option<String> {
    #[derive(Deserialize)]
    struct Q {
        token: Option<String>,
    }
    axum::extract::Query::<Q>::try_from_uri(uri)
        .ok()
        .and_then(|q| q.0.token)
        .filter(|t| !t.is_empty())
}

fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
}

/// Authenticates a request; a failure never reaches the engine.
///
/// A token taken from the cookie counts only when the request's `Origin` is allowed
/// ([`origin_allowed`]); otherwise 403 `forbidden`, before the token is even read.
pub(crate) async fn authenticate(state: &ChatState, parts: &Parts) -> Result<Identity, ApiError> {
    let config = &state.inner.config;
    let (token, source) = find_token(parts, &config.token_cookie).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "missing token (Authorization: Bearer, `token` query parameter or cookie)",
        )
    })?;
    if source == Source::Cookie && !origin_allowed(parts, &config.allowed_origins) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this origin may not use the token cookie",
        ));
    }
    state
        .inner
        .authenticator
        .authenticate(&token)
        .await
        .map_err(|e| match e.code() {
            ErrorCode::Unavailable => ApiError::from(e),
            _ => ApiError::new(ErrorCode::Unauthenticated, e.to_string()),
        })
}

/// True when a request carrying the token cookie may use it: it has no `Origin` (not a
/// browser, which always sends one on a WebSocket handshake and on every cross-origin
/// request that changes something), or its `Origin` is the server's own (the `Host` the
/// request was sent to; under `https://` only on a TLS connection) or one of `allowed`.
/// `null` and anything that does not parse are refused.
pub(crate) fn origin_allowed(parts: &Parts, allowed: &[String]) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().and_then(Origin::parse) else {
        return false;
    };
    if allowed
        .iter()
        .filter_map(|a| Origin::parse(a))
        .any(|a| a == origin)
    {
        return true;
    }
    // Over TLS the server's own origin is `https://`: a page served by `http://` on the
    // same host and port is another origin. Over plain TCP either scheme may be the
    // server's own (a TLS-terminating proxy in front forwards `https://` pages' requests).
    if parts
        .extensions
        .get::<ConnectInfo<TlsConnectInfo>>()
        .is_some()
        && origin.scheme != "https"
    {
        return false;
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
    host.is_some_and(|h| origin.is_host(&h))
}

/// True when `origin` is a web origin as [`Config::allowed_origins`] takes it:
/// `http://` or `https://`, a host, maybe a port, and nothing after.
///
/// [`Config::allowed_origins`]: crate::Config::allowed_origins
pub fn is_origin(origin: &str) -> bool {
    Origin::parse(origin).is_some()
}

/// A web origin, `scheme://host[:port]`, with the scheme and host in lower case and the
/// scheme's default port made explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `http(s)://host[:port]`, with nothing after (a trailing `/` is tolerated).
    pub(crate) fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_port(authority)?;
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default),
        })
    }

    /// True when `host` (a `Host` header: `name[:port]`) names this origin's host and
    /// port; without a port it means the default one of this origin's scheme.
    fn is_host(&self, host: &str) -> bool {
        let Some((name, port)) = split_port(host.trim()) else {
            return false;
        };
        let default = if self.scheme == "https" { 443 } else { 80 };
        name.eq_ignore_ascii_case(&self.host) && port.unwrap_or(default) == self.port
    }
}

/// `host[:port]` (an IPv6 host in brackets) into the host and the port, if any.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => Some(i),
        _ => None,
    };
    match port_at {
        Some(i) => {
            let port = authority[i + 1..].parse().ok()?;
            let host = &authority[..i];
            (!host.is_empty()).then_some((host, Some(port)))
        }
        None => Some((authority, None)),
    }
}

/// The authenticated caller of an HTTP endpoint.
pub(crate) struct Caller(pub(crate) Identity);

impl axum::extract::FromRequestParts<ChatState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ChatState) -> Result<Self, ApiError> {
        authenticate(state, parts).await.map(Caller)
    }
}

/// Proof that the request carries the internal API key.
pub(crate) struct Admin;

/// The header that carries the internal API key.
pub const API_KEY_HEADER: &str = "x-internal-api-key";

impl axum::extract::FromRequestParts<ChatState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ChatState) -> Result<Self, ApiError> {
        let Some(expected) = state.inner.config.admin_api_key.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "the admin API is not enabled",
            ));
        };
        let given = parts
            .headers
            .get(API_KEY_HEADER)
            .map(|v| v.as_bytes())
            .ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthenticated, "missing x-internal-api-key")
            })?;
        if bool::from(given.ct_eq(expected.as_bytes())) && !expected.is_empty() {
            Ok(Admin)
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                "wrong internal API key",
            ))
        }
    }
}

/// Signs tokens that [`JwtAuthenticator`] accepts: `sub`, optional `name`, `iat`, `nbf`
/// and `exp`. For `chat-server token`, development sign-in, examples, tests and load
/// generators; production tokens usually come from the embedder's identity provider.
#[derive(Clone)]
pub struct TokenSigner {
    key: jsonwebtoken::EncodingKey,
    alg: Algorithm,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl TokenSigner {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        TokenSigner {
            key: jsonwebtoken::EncodingKey::from_secret(secret),
            alg: Algorithm::HS256,
        }
    }

    /// RS256 with an RSA private key in PEM form.
    ///
    /// # Errors
    /// `invalid` when the PEM is not an RSA private key.
    pub fn rs256_pem(private_key_pem: &[u8]) -> Result<Self, Error> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem)
            .map_err(|e| Error::invalid(format!("RSA private key: {e}")))?;
        Ok(TokenSigner {
            key,
            alg: Algorithm::RS256,
        })
    }

    /// A token for `user`, valid from now for `ttl`.
    ///
    /// # Errors
    /// `invalid` for a user id the engine would refuse, or a key that cannot sign.
    pub fn mint(
        &self,
        user: &str,
        name: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<String, Error> {
        UserId::new(user)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = MintClaims {
            sub: user,
            name,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl.as_secs()),
        };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(self.alg), &claims, &self.key)
            .map_err(|e| Error::invalid(format!("signing a token: {e}")))
    }
}
