//! The one place where Redis channel and key names are made.

use chat_core::ports::Topic;
use chat_core::UserId;

/// Channel and key names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    prefix: String,
    all: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
            all: format!("{prefix}:all"),
        }
    }

    /// The prefix of every name.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The channel a topic's deliveries are published on.
    pub(crate) fn channel(&self, topic: &Topic) -> String {
        match topic {
            Topic::Conversation(c) => format!("{}:c:{c}", self.prefix),
            Topic::User(u) => format!("{}:u:{}", self.prefix, u.as_str()),
            Topic::Broadcast => self.all.clone(),
        }
    }

    /// The broadcast channel: presence, and the resync control message.
    pub(crate) fn all(&self) -> &str {
        &self.all
    }

    /// The sorted set of a user's presence leases.
    pub(crate) fn presence(&self, user: &UserId) -> String {
        format!("{}:p:{}", self.prefix, user.as_str())
    }
}

#[cfg(test)]
mod tests {
    use chat_core::ConversationId;

    use super::*;

    #[test]
    fn the_layout_is_as_documented() {
        let n = Names::new("chat");
        let c = ConversationId(uuid::Uuid::from_u128(1));
        let u = UserId::new("ann:1").expect("a valid user id");
        assert_eq!(
            n.channel(&Topic::Conversation(c)),
            "chat:c:00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(n.channel(&Topic::User(u.clone())), "chat:u:ann:1");
        assert_eq!(n.channel(&Topic::Broadcast), "chat:all");
        assert_eq!(n.all(), "chat:all");
        assert_eq!(n.presence(&u), "chat:p:ann:1");
    }
}
