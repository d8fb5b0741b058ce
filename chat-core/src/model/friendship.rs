//! The friendship state machine.
//!
//! A pair of users has one [`Friendship`] record, kept with the users in sorted order.
//! [`Friendship::apply`] is the only way to change it: stores call it inside their
//! transaction, so the rules live here and every store enforces the same ones.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::UserId;

/// The state between two users (apart from blocks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FriendState {
    /// Nothing between them.
    None,
    /// `from` asked to be friends and waits for an answer.
    Pending {
        /// Who asked.
        from: UserId,
    },
    /// Friends.
    Accepted,
}

/// An action one user takes towards another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FriendAction {
    /// Ask to be friends (accepts when the other already asked).
    Request,
    /// Accept the other's request.
    Accept,
    /// Decline the other's request.
    Decline,
    /// Withdraw one's own request.
    Cancel,
    /// End a friendship.
    Remove,
    /// Block the other: ends any friendship or request, and stops direct messages.
    Block,
    /// Lift one's own block.
    Unblock,
}

impl FriendAction {
    /// Every action.
    pub const ALL: [FriendAction; 7] = [
        FriendAction::Request,
        FriendAction::Accept,
        FriendAction::Decline,
        FriendAction::Cancel,
        FriendAction::Remove,
        FriendAction::Block,
        FriendAction::Unblock,
    ];
}

/// The record between two users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Friendship {
    /// The user whose id sorts first.
    pub a: UserId,
    /// The user whose id sorts second.
    pub b: UserId,
    /// Friend state.
    #[serde(flatten)]
    pub state: FriendState,
    /// `a` blocks `b`.
    pub a_blocks_b: bool,
    /// `b` blocks `a`.
    pub b_blocks_a: bool,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Friendship {
    /// The empty record for a pair (any order).
    ///
    /// # Errors
    /// `invalid` when both users are the same.
    pub fn empty(x: &UserId, y: &UserId, now: DateTime<Utc>) -> Result<Self> {
        let (a, b) = crate::model::direct_pair(x, y)?;
        Ok(Friendship {
            a,
            b,
            state: FriendState::None,
            a_blocks_b: false,
            b_blocks_a: false,
            updated_at: now,
        })
    }

    /// True when the two are friends.
    pub fn is_friends(&self) -> bool {
        self.state == FriendState::Accepted
    }

    /// True when either blocks the other.
    pub fn is_blocked(&self) -> bool {
        self.a_blocks_b || self.b_blocks_a
    }

    /// True when `user` blocks the other.
    pub fn blocks(&self, user: &UserId) -> bool {
        if user == &self.a {
            self.a_blocks_b
        } else if user == &self.b {
            self.b_blocks_a
        } else {
            false
        }
    }

    /// True when nothing remains (no friendship, no request, no block): stores may drop it.
    pub fn is_empty(&self) -> bool {
        self.state == FriendState::None && !self.is_blocked()
    }

    /// The other user than `me`.
    pub fn other(&self, me: &UserId) -> &UserId {
        if me == &self.a {
            &self.b
        } else {
            &self.a
        }
    }

    /// Applies `action` taken by `actor` and returns the new record.
    ///
    /// # Errors
    /// - `invalid`: `actor` is not one of the pair.
    /// - `forbidden`: a request across a block.
    /// - `conflict`: a request between friends, or a second request by the same user.
    /// - `not_found`: accepting, declining or cancelling a request that does not exist,
    ///   removing a friendship that does not exist, unblocking without a block.
    pub fn apply(&self, actor: &UserId, action: FriendAction, now: DateTime<Utc>) -> Result<Self> {
        if actor != &self.a && actor != &self.b {
            return Err(Error::invalid("the actor is not part of this pair"));
        }
        let other = self.other(actor).clone();
        let mut next = self.clone();
        next.updated_at = now;
        match action {
            FriendAction::Request => {
                if self.is_blocked() {
                    return Err(Error::forbidden("cannot befriend this user"));
                }
                match &self.state {
                    FriendState::Accepted => {
                        return Err(Error::conflict("already friends"));
                    }
                    FriendState::Pending { from } if from == actor => {
                        return Err(Error::conflict("request already sent"));
                    }
                    FriendState::Pending { .. } => next.state = FriendState::Accepted,
                    FriendState::None => {
                        next.state = FriendState::Pending {
                            from: actor.clone(),
                        }
                    }
                }
            }
            FriendAction::Accept | FriendAction::Decline => match &self.state {
                FriendState::Pending { from } if from == &other => {
                    next.state = if action == FriendAction::Accept {
                        FriendState::Accepted
                    } else {
                        FriendState::None
                    };
                }
                _ => return Err(Error::not_found("no friend request from this user")),
            },
            FriendAction::Cancel => match &self.state {
                FriendState::Pending { from } if from == actor => next.state = FriendState::None,
                _ => return Err(Error::not_found("no friend request to this user")),
            },
            FriendAction::Remove => {
                if self.state != FriendState::Accepted {
                    return Err(Error::not_found("not friends with this user"));
                }
                next.state = FriendState::None;
            }
            FriendAction::Block => {
                next.state = FriendState::None;
                next.set_block(actor, true);
            }
            FriendAction::Unblock => {
                if !self.blocks(actor) {
                    return Err(Error::not_found("this user is not blocked"));
                }
                next.set_block(actor, false);
            }
        }
        Ok(next)
    }

    fn set_block(&mut self, actor: &UserId, on: bool) {
        if actor == &self.a {
            self.a_blocks_b = on;
        } else {
            self.b_blocks_a = on;
        }
    }

    /// This record as `me` sees it (blocks by the other are not shown).
    pub fn view_for(&self, me: &UserId) -> FriendView {
        let other = self.other(me).clone();
        let status = if self.blocks(me) {
            FriendStatus::Blocked
        } else {
            match &self.state {
                FriendState::Accepted => FriendStatus::Friends,
                FriendState::Pending { from } if from == me => FriendStatus::RequestSent,
                FriendState::Pending { .. } => FriendStatus::RequestReceived,
                FriendState::None => FriendStatus::None,
            }
        };
        FriendView {
            user: other,
            status,
            since: self.updated_at,
        }
    }
}

/// A friendship as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FriendView {
    /// The other user.
    pub user: UserId,
    /// Where things stand, from my side.
    pub status: FriendStatus,
    /// When it last changed.
    pub since: DateTime<Utc>,
}

/// One side's view of a friendship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FriendStatus {
    /// Nothing (or the other blocks me, which I am not told).
    None,
    /// Friends.
    Friends,
    /// I asked; waiting.
    RequestSent,
    /// They asked; I may accept or decline.
    RequestReceived,
    /// I block them.
    Blocked,
}
