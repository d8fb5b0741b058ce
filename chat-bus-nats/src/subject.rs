//! Names on the server: the subject of each [`Topic`], and the key of each presence lease.
//! Pure functions, no I/O.
//!
//! A user id may hold any character but controls (dots, spaces, `*`, `>`, non-ASCII), none
//! of which is safe in a subject token or a key-value key, so it is written as unpadded
//! base64url (RFC 4648 §5: `A–Z a–z 0–9 - _`): at most 171 characters for the 128 bytes
//! a user id may have. Conversation and node ids are UUIDs, safe as they are.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chat_core::ids::{NodeId, UserId};
use chat_core::ports::Topic;
use chat_core::{Error, Result};
use uuid::Uuid;

/// A user id as one subject token or key-value key token (unpadded base64url).
pub(crate) fn user_token(user: &UserId) -> String {
    URL_SAFE_NO_PAD.encode(user.as_str())
}

/// Checks a subject prefix: one or more dot-separated tokens, none empty, with no
/// whitespace and no wildcard.
pub(crate) fn check_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && !token
                    .chars()
                    .any(|c| c.is_whitespace() || c == '*' || c == '>')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{prefix:?} is not a NATS subject prefix (dot-separated tokens, no spaces or wildcards)"
        )))
    }
}

/// Checks a key-value bucket name (what the server accepts: `A–Z a–z 0–9 _ -`).
pub(crate) fn check_bucket(bucket: &str) -> Result<()> {
    if !bucket.is_empty()
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{bucket:?} is not a key-value bucket name (letters, digits, '_' and '-')"
        )))
    }
}

/// The subjects of one bus: `{prefix}.c.{conversation}`, `{prefix}.u.{user}`,
/// `{prefix}.all`.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str) -> Self {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// The subject a topic's deliveries are published on.
    pub(crate) fn of(&self, topic: &Topic) -> String {
        match topic {
            Topic::Conversation(c) => format!("{}.c.{}", self.prefix, c.0.as_hyphenated()),
            Topic::User(u) => format!("{}.u.{}", self.prefix, user_token(u)),
            Topic::Broadcast => self.broadcast(),
        }
    }

    /// `{prefix}.all`: presence events and the resync control message.
    pub(crate) fn broadcast(&self) -> String {
        format!("{}.all", self.prefix)
    }
}

/// The key of `user`'s lease on `node`: `{user token}.{node uuid, 32 hex digits}`.
pub(crate) fn lease_key(user: &UserId, node: NodeId) -> String {
    format!("{}.{}", user_token(user), node.0.as_simple())
}

/// Splits a lease key into the user token and the node; `None` for a key this crate did
/// not write.
pub(crate) fn parse_lease_key(key: &str) -> Option<(&str, NodeId)> {
    let (user, node) = key.rsplit_once('.')?;
    if user.is_empty() || user.contains('.') {
        return None;
    }
    Uuid::try_parse(node).ok().map(|n| (user, NodeId(n)))
}

#[cfg(test)]
mod tests {
    use chat_core::ids::ConversationId;

    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    /// What a NATS subject token and a key-value key token may hold.
    fn is_safe_token(t: &str) -> bool {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    #[test]
    fn awkward_user_ids_become_one_safe_token() {
        let longest = "é".repeat(64); // 128 bytes
        for raw in [
            "alice", "a.b", "a b", "*", ">", "a.>", "ünï", "x/y=z", &longest,
        ] {
            let t = user_token(&user(raw));
            assert!(is_safe_token(&t), "{raw:?} -> {t:?}");
            assert_eq!(
                URL_SAFE_NO_PAD.decode(&t).unwrap(),
                raw.as_bytes(),
                "round trip of {raw:?}"
            );
        }
        assert!(user_token(&user(&longest)).len() <= 171);
        assert_ne!(user_token(&user("a.b")), user_token(&user("a_b")));
    }

    #[test]
    fn topics_map_to_subjects() {
        let s = Subjects::new("chat");
        let c = ConversationId(Uuid::from_u128(1));
        assert_eq!(
            s.of(&Topic::Conversation(c)),
            "chat.c.00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(s.of(&Topic::User(user("a.b"))), "chat.u.YS5i");
        assert_eq!(s.of(&Topic::Broadcast), "chat.all");
        assert_eq!(Subjects::new("app.chat").broadcast(), "app.chat.all");
    }

    #[test]
    fn lease_keys_round_trip_and_foreign_keys_are_refused() {
        let node = NodeId(Uuid::from_u128(7));
        let key = lease_key(&user("a.b c"), node);
        assert!(key.split('.').all(is_safe_token), "{key}");
        let (token, parsed) = parse_lease_key(&key).unwrap();
        assert_eq!(token, user_token(&user("a.b c")));
        assert_eq!(parsed, node);
        for foreign in [
            "",
            "x",
            "x.notauuid",
            ".0000000000000000000000000000000a",
            "a.b.00000000000000000000000000000007",
        ] {
            assert!(parse_lease_key(foreign).is_none(), "{foreign:?}");
        }
    }

    #[test]
    fn prefixes_and_buckets_are_checked() {
        for ok in ["chat", "app.chat", "a-b_c"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "a b", "a.*", "a.>"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_bucket("chat_presence-1").is_ok());
        for bad in ["", "a.b", "a b", "a*"] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
    }
}
