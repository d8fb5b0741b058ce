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
