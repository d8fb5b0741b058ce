//! The `Policy` port: the embedder's say on who may message whom and join what.
//!
//! The engine loads the facts (friendship, room, invitation) and asks the policy; the
//! policy answers from those facts alone, so it is a plain sync trait.

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{Conversation, ConversationKind, Friendship, Visibility};

/// Decisions the embedding application may change.
pub trait Policy: Send + Sync + 'static {
    /// May `from` open a direct conversation with, or send a direct message to, `to`?
    /// `friendship` is the pair's record, if any.
    ///
    /// # Errors
    /// The denial, usually `not_friends` or `forbidden`.
    fn may_message_directly(
        &self,
        from: &UserId,
        to: &UserId,
        friendship: Option<&Friendship>,
    ) -> Result<()>;

    /// May `user` join `room` by themselves (not invited)?
    ///
    /// # Errors
    /// The denial, usually `forbidden`.
    fn may_join(&self, user: &UserId, room: &Conversation) -> Result<()>;
}

/// The default rules: direct messages need an accepted friendship and no block; anyone
/// may join a public room; a private room is invitation only.
#[derive(Debug, Clone, Copy)]
pub struct DefaultPolicy {
    /// When false, any two users who do not block each other may message directly.
    pub require_friendship: bool,
}

impl Default for DefaultPolicy {
    fn default() -> Self {
        DefaultPolicy {
            require_friendship: true,
        }
    }
}

impl Policy for DefaultPolicy {
    fn may_message_directly(
        &self,
        _from: &UserId,
        _to: &UserId,
        friendship: Option<&Friendship>,
    ) -> Result<()> {
        let blocked = friendship.is_some_and(Friendship::is_blocked);
        let friends = friendship.is_some_and(Friendship::is_friends);
        if blocked || (self.require_friendship && !friends) {
            return Err(Error::not_friends(
                "direct messages need an accepted friendship",
            ));
        }
        Ok(())
    }

    fn may_join(&self, _user: &UserId, room: &Conversation) -> Result<()> {
        match &room.kind {
            ConversationKind::Room {
                visibility: Visibility::Public,
                ..
            } => Ok(()),
            ConversationKind::Room { .. } => Err(Error::forbidden("this room is invitation only")),
            ConversationKind::Direct { .. } => {
                Err(Error::forbidden("a direct conversation cannot be joined"))
            }
        }
    }
}
