//! `jwt`: any token → [`JwtAuthenticator`] (HS256 with [`SECRET`]), through the
//! [`Authenticator`] port, as the HTTP API and the WebSocket handshake call it.
//!
//! Properties: authentication never panics; a refusal is `unauthenticated`; a token is
//! accepted only when it is three parts, its header says `HS256`, its signature is
//! HMAC-SHA256 with [`SECRET`], its claims carry a numeric `exp` not further in the past
//! than the authenticator's clock leeway ([`JwtAuthenticator::DEFAULT_LEEWAY`]), a
//! numeric `nbf` (when present) not further in the future than the leeway, and a `sub`
//! that is the identity returned. The oracle reads the token itself; it trusts `jsonwebtoken` only to compute
//! the HMAC. A [`TokenCase`] that is plainly valid must be accepted, so the check is not
//! vacuous.

use chat_core::ports::{Authenticator, Identity};
use chat_core::{ErrorCode, UserId};
use chat_transport_ws::JwtAuthenticator;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::Value;

use super::{now, object, SECRET};

/// The authenticator under test and a runtime to drive it.
pub(crate) struct Harness {
    rt: tokio::runtime::Runtime,
    auth: JwtAuthenticator,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    pub(crate) fn new() -> Self {
        Harness {
            rt: super::runtime(),
            auth: JwtAuthenticator::hs256(SECRET),
        }
    }

    /// Checks one token string; returns whether it was accepted.
    pub(crate) fn check_token(&self, token: &str) -> bool {
        let before = now();
        let result = self.rt.block_on(self.auth.authenticate(token));
        let after = now();
        match result {
            Err(e) => {
                assert_eq!(
                    e.code(),
                    ErrorCode::Unauthenticated,
                    "a refused token is `unauthenticated`: {token:?} → {e}"
                );
                false
            }
            Ok(identity) => {
                if let Err(why) = acceptable(token, before, after, &identity) {
                    panic!("accepted a token that {why}: {token:?} → {identity:?}");
                }
                true
            }
        }
    }

    /// Checks a token built from `case`; one that is plainly valid must be accepted.
    pub(crate) fn check_case(&self, case: &TokenCase) {
        let token = case.token(now());
        let accepted = self.check_token(&token);
        if case.plainly_valid() {
            assert!(accepted, "refused a valid token: {case:?} → {token:?}");
        }
    }
}

/// Why `token` should not have been accepted as `identity`, if so.
fn acceptable(token: &str, before: u64, after: u64, identity: &Identity) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(format!("has {} parts, not 3", parts.len()));
    };
    let header = json_part(header).ok_or("has a header that is not base64url JSON")?;
    if header.get("alg") != Some(&Value::from("HS256")) {
        return Err(format!("says alg {}", header["alg"]));
    }
    let message = format!("{}.{}", parts[0], parts[1]);
    let key = DecodingKey::from_secret(SECRET);
    if !jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, Algorithm::HS256)
        .unwrap_or(false)
    {
        return Err("is not signed with the secret".into());
    }
    let claims = json_part(claims).ok_or("has claims that are not base64url JSON")?;
    match claims.get("exp").and_then(numeric_date) {
        None => return Err("has no numeric `exp`".into()),
        Some(exp) if exp.saturating_add(leeway()) < before => {
            return Err(format!(
                "expired at {exp}, more than the leeway before {before}"
            ))
        }
        Some(_) => {}
    }
    if let Some(nbf) = claims.get("nbf").and_then(numeric_date) {
        if nbf > after.saturating_add(leeway()) {
            return Err(format!(
                "is not valid before {nbf}, more than the leeway after {after}"
            ));
        }
    }
    match claims.get("sub") {
        Some(Value::String(sub)) if sub == identity.user.as_str() => {}
        other => return Err(format!("has `sub` {other:?}, not the identity's user")),
    }
    let name = claims
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty());
    if identity.display_name.as_deref() != name {
        return Err(format!("names {name:?}, not the identity's display name"));
    }
    Ok(())
}

/// A JSON NumericDate as whole seconds (RFC 7519 allows fractions; they round).
fn numeric_date(v: &Value) -> Option<u64> {
    match v.as_u64() {
        Some(n) => Some(n),
        None => v
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f.round() as u64),
    }
}

fn json_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&base64url_decode(part)?).ok()
}

/// Unpadded base64url, as JWTs use; `None` for anything else.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= sextet(*c)? << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

fn base64url_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The `alg` values a case picks from (any other string is possible too).
pub(crate) const ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "none", "None", "NONE", "hs256",
    "",
];

/// Claim names a case picks from for extra claims: the ones the authenticator reads
/// (so a duplicate or a malformed one is tried), registered ones it ignores, and one of
/// our own.
pub(crate) const CLAIM_NAMES: &[&str] = &[
    "sub", "exp", "nbf", "name", "iss", "aud", "iat", "jti", "scope", "x",
];

/// A time claim.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Time {
    /// Whole seconds from when the token is made.
    FromNow(i64),
    /// Fractional seconds from when the token is made.
    FractionFromNow(f64),
    /// Any JSON at all (a string, a negative number, null, …).
    Json(Value),
}

impl Time {
    fn value(&self, now: u64) -> Value {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        match self {
            Time::FromNow(d) => Value::from(now.saturating_add(*d)),
            Time::FractionFromNow(d) => {
                serde_json::Number::from_f64(now as f64 + d).map_or(Value::Null, Value::Number)
            }
            Time::Json(v) => v.clone(),
        }
    }
}

/// How the token is signed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Signing {
    /// HMAC with [`SECRET`] and this algorithm, whatever the header says.
    Secret(Hmac),
    /// HMAC with another key.
    OtherKey(Vec<u8>, Hmac),
    /// No signature at all (`alg: none` style).
    Unsigned,
    /// This text as the signature.
    Raw(String),
}

/// The HMAC algorithms `jsonwebtoken` can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hmac {
    Hs256,
    Hs384,
    Hs512,
}

impl Hmac {
    pub(crate) const ALL: [Hmac; 3] = [Hmac::Hs256, Hmac::Hs384, Hmac::Hs512];

    fn algorithm(self) -> Algorithm {
        match self {
            Hmac::Hs256 => Algorithm::HS256,
            Hmac::Hs384 => Algorithm::HS384,
            Hmac::Hs512 => Algorithm::HS512,
        }
    }
}

/// A token made from parts: a header, claims (some fields of which may be missing or of
/// any type, and names may repeat) and a way to sign.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenCase {
    /// The header's `alg` (absent when `None`).
    pub(crate) alg: Option<String>,
    /// More header fields, in order.
    pub(crate) header: Vec<(String, Value)>,
    pub(crate) sub: Option<Value>,
    pub(crate) exp: Option<Time>,
    pub(crate) nbf: Option<Time>,
    pub(crate) name: Option<Value>,
    /// More claims, in order, after the ones above.
    pub(crate) claims: Vec<(String, Value)>,
    pub(crate) signing: Signing,
}

impl TokenCase {
    /// The compact token, with times relative to `now`.
    pub(crate) fn token(&self, now: u64) -> String {
        let mut header = Vec::new();
        if let Some(alg) = &self.alg {
            header.push(("alg".to_owned(), Value::from(alg.as_str())));
        }
        header.extend(self.header.iter().cloned());
        let mut claims = Vec::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                claims.push((k.to_owned(), v));
            }
        };
        put("sub", self.sub.clone());
        put("exp", self.exp.as_ref().map(|t| t.value(now)));
        put("nbf", self.nbf.as_ref().map(|t| t.value(now)));
        put("name", self.name.clone());
        claims.extend(self.claims.iter().cloned());
        let message = format!(
            "{}.{}",
            base64url_encode(object(&header).as_bytes()),
            base64url_encode(object(&claims).as_bytes())
        );
        let sign = |key: &[u8], hmac: Hmac| {
            jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(key),
                hmac.algorithm(),
            )
            .expect("HMAC signs with any key")
        };
        let signature = match &self.signing {
            Signing::Secret(hmac) => sign(SECRET, *hmac),
            Signing::OtherKey(key, hmac) => sign(key, *hmac),
            Signing::Unsigned => String::new(),
            Signing::Raw(s) => s.clone(),
        };
        format!("{message}.{signature}")
    }

    /// Signed with the secret and HS256, a plain header, a valid `sub`, an `exp` a
    /// minute or more ahead, any `nbf` a minute or more behind, a string `name`, and
    /// extra claims that the authenticator ignores, each once.
    pub(crate) fn plainly_valid(&self) -> bool {
        // `iat` and `jti` are read too (for revocation lists): only well-formed ones (a
        // whole number, a string) keep a token plainly valid; a malformed one is refused
        // like a malformed `exp`.
        let read = ["sub", "exp", "nbf", "name", "iss", "aud"];
        let well_formed = |k: &str, v: &Value| match k {
            "iat" => v.as_u64().is_some(),
            "jti" => v.is_string(),
            _ => true,
        };
        let mut extra: Vec<&str> = self.claims.iter().map(|(k, _)| k.as_str()).collect();
        extra.sort_unstable();
        let distinct = extra.windows(2).all(|w| w[0] != w[1]);
        self.signing == Signing::Secret(Hmac::Hs256)
            && self.alg.as_deref() == Some("HS256")
            && self.header.is_empty()
            && matches!(&self.sub, Some(Value::String(s)) if UserId::new(s.as_str()).is_ok())
            // Plain dates: after 1970 and before the year 30000 (an `nbf` before 1970 or an
            // `exp` near 2^63 may be refused, and that is no bug).
            && matches!(self.exp, Some(Time::FromNow(d)) if (60..=900_000_000_000).contains(&d))
            && matches!(self.nbf, None | Some(Time::FromNow(-1_000_000_000..=-60)))
            && matches!(self.name, None | Some(Value::String(_)))
            && distinct
            && extra.iter().all(|k| !read.contains(k))
            && self.claims.iter().all(|(k, v)| well_formed(k, v))
    }
}

/// The clock leeway the authenticator allows on `exp` and `nbf`, in seconds.
fn leeway() -> u64 {
    JwtAuthenticator::DEFAULT_LEEWAY.as_secs()
}
