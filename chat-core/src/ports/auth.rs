//! The `Authenticator` port: credential → identity.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::UserId;

/// Who a connection belongs to, as the authenticator vouches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user.
    pub user: UserId,
    /// A display name from the credential's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the credential stops being valid (a JWT's `exp`); `None` when it does not
    /// expire. A transport ends the connection then, unless the client presented a
    /// newer credential first (`refresh_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Identity {
    /// An identity without a display name or an expiry.
    pub fn new(user: UserId) -> Self {
        Identity {
            user,
            display_name: None,
            expires_at: None,
        }
    }
}

/// A credential as a client sent it (a bearer token). Its `Debug` form hides it, so a
/// logged command never shows one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credential(String);

impl Credential {
    /// Wraps a credential.
    pub fn new(credential: impl Into<String>) -> Self {
        Credential(credential.into())
    }

    /// The credential, to hand to an [`Authenticator`].
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(…)")
    }
}

/// Turns a credential (a bearer token, whatever carried it) into an identity.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Checks the credential.
    ///
    /// # Errors
    /// `unauthenticated` for a missing, malformed, expired or forged credential;
    /// `unavailable` when the check itself could not be made.
    async fn authenticate(&self, token: &str) -> Result<Identity>;
}

/// A fixed table of tokens, for tests and examples.
#[derive(Debug, Default, Clone)]
pub struct StaticTokens {
    tokens: HashMap<String, Identity>,
}

impl StaticTokens {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token for a user.
    pub fn with(mut self, token: impl Into<String>, identity: Identity) -> Self {
        self.tokens.insert(token.into(), identity);
        self
    }
}

#[async_trait]
impl Authenticator for StaticTokens {
    async fn authenticate(&self, token: &str) -> Result<Identity> {
        self.tokens
            .get(token)
            .cloned()
            .ok_or_else(|| Error::unauthenticated("unknown token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_a_plain_string_on_the_wire_and_hidden_in_debug() {
        let c: Credential = serde_json::from_str(r#""s3cret.token""#).expect("parse");
        assert_eq!(c.expose(), "s3cret.token");
        assert_eq!(
            serde_json::to_string(&c).expect("encode"),
            r#""s3cret.token""#
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
