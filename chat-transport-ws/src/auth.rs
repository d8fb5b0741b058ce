//! Authentication: where the token comes from, the JWT authenticator, the admin key.

use async_trait::async_trait;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chat_core::ports::{Authenticator, Identity};
use chat_core::{Error, ErrorCode, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::ChatState;

/// Validates JSON Web Tokens: `sub` is the user id, the optional `name` the display name.
///
/// The algorithm is pinned when the authenticator is built (HS256 or RS256), so a token
/// with `alg: none` or another algorithm (an HS/RS swap) is refused. `exp` is required
/// and checked, `nbf` is checked when present; leeway defaults to 0 seconds.
#[derive(Clone)]
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    /// Required and checked by the validation; kept for `Identity::expires_at`.
    exp: u64,
}

impl JwtAuthenticator {
    fn with_key(key: DecodingKey, alg: Algorithm) -> Self {
        let mut validation = Validation::new(alg);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtAuthenticator { key, validation }
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

    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.validation.leeway = seconds;
        self
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> chat_core::Result<Identity> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Error::unauthenticated(format!("invalid token: {e}")))?;
        let user = UserId::new(data.claims.sub)
            .map_err(|_| Error::unauthenticated("invalid token: bad `sub`"))?;
        Ok(Identity {
            user,
            display_name: data.claims.name.filter(|n| !n.trim().is_empty()),
            expires_at: i64::try_from(data.claims.exp)
                .ok()
                .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0)),
        })
    }
}

/// Finds the token: `Authorization: Bearer …`, else the `token` query parameter, else
/// the cookie named `cookie`.
pub(crate) fn find_token(parts: &Parts, cookie: &str) -> Option<String> {
    bearer(&parts.headers)
        .or_else(|| query_token(&parts.uri))
        .or_else(|| cookie_token(&parts.headers, cookie))
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
pub(crate) async fn authenticate(state: &ChatState, parts: &Parts) -> Result<Identity, ApiError> {
    let token = find_token(parts, &state.inner.config.token_cookie).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "missing token (Authorization: Bearer, `token` query parameter or cookie)",
        )
    })?;
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
