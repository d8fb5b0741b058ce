//! Who is connected to this node, and which sessions follow which conversation.
//!
//! Sans-IO: plain data and `&mut self` methods, no tokio, no awaits, no bus. Every change
//! returns the bus [`Topic`]s it may have changed (gained a first follower or lost the
//! last), and the engine brings its bus subscriptions in line with [`Registry::wants`]
//! outside any lock (see `topics.rs`).
//!
//! The registry is generic over the session handle so that it can be tested with plain
//! values; the engine stores `Arc<SessionEntry>`.

use std::collections::{HashMap, HashSet};

use crate::ids::{ConversationId, SessionId, UserId};
use crate::ports::Topic;

/// What the registry needs to know of a session.
pub(crate) trait Follower: Clone {
    /// The session's id, unique on this node.
    fn session(&self) -> SessionId;
    /// Whose session it is.
    fn user(&self) -> &UserId;
}

/// One user's live sessions on this node, and the conversations they belong to.
#[derive(Debug)]
struct Local<S> {
    sessions: Vec<S>,
    conversations: HashSet<ConversationId>,
}

/// What removing a session changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Removed {
    /// Topics that may have lost their last local follower.
    pub(crate) topics: Vec<Topic>,
    /// True when it was the user's last session on this node.
    pub(crate) last: bool,
}

/// The live sessions of this node, by user and by conversation.
#[derive(Debug)]
pub(crate) struct Registry<S> {
    users: HashMap<UserId, Local<S>>,
    followers: HashMap<ConversationId, Vec<S>>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            users: HashMap::new(),
            followers: HashMap::new(),
        }
    }
}

impl<S: Follower> Registry<S> {
    /// Registers a session before its conversations are loaded, so that a join landing
    /// meanwhile finds it. Returns the user's topic when this is their first session.
    pub(crate) fn add_session(&mut self, session: S) -> Vec<Topic> {
        let user = session.user().clone();
        let local = self.users.entry(user.clone()).or_insert_with(|| Local {
            sessions: Vec::new(),
            conversations: HashSet::new(),
        });
        let first = local.sessions.is_empty();
        local.sessions.push(session);
        if first {
            vec![Topic::User(user)]
        } else {
            Vec::new()
        }
    }

    /// Makes a registered session follow its user's conversations: those just loaded
    /// from the store, and those the user joined meanwhile. Returns the topics that
    /// gained their first follower.
    pub(crate) fn attach(
        &mut self,
        session: &S,
        loaded: impl IntoIterator<Item = ConversationId>,
    ) -> Vec<Topic> {
        let Some(local) = self.users.get_mut(session.user()) else {
            return Vec::new(); // closed meanwhile
        };
        if !local
            .sessions
            .iter()
            .any(|s| s.session() == session.session())
        {
            return Vec::new();
        }
        local.conversations.extend(loaded);
        let mut topics = Vec::new();
        for conversation in &local.conversations {
            let followers = self.followers.entry(*conversation).or_default();
            if followers.is_empty() {
                topics.push(Topic::Conversation(*conversation));
            }
            if !followers.iter().any(|s| s.session() == session.session()) {
                followers.push(session.clone());
            }
        }
        topics
    }

    /// Every live session of `user` here follows `conversation` from now on (a join, an
    /// invite, a new direct conversation). Returns the topic when it gained its first
    /// follower. Nothing changes when the user has no session here.
    pub(crate) fn follow(&mut self, user: &UserId, conversation: ConversationId) -> Vec<Topic> {
        let Some(local) = self.users.get_mut(user) else {
            return Vec::new();
        };
        local.conversations.insert(conversation);
        let followers = self.followers.entry(conversation).or_default();
        let was_empty = followers.is_empty();
        for s in &local.sessions {
            if !followers.iter().any(|f| f.session() == s.session()) {
                followers.push(s.clone());
            }
        }
        if was_empty && !followers.is_empty() {
            vec![Topic::Conversation(conversation)]
        } else {
            Vec::new()
        }
    }

    /// `user`'s sessions here stop following `conversation` (they left, or it was
    /// deleted). Returns the topic when it lost its last follower.
    pub(crate) fn unfollow(&mut self, user: &UserId, conversation: ConversationId) -> Vec<Topic> {
        let Some(local) = self.users.get_mut(user) else {
            return Vec::new();
        };
        local.conversations.remove(&conversation);
        self.drop_followers(conversation, |s| s.user() == user)
    }

    /// Stops fanning out to one session (it was cut off) while it stays registered, so
    /// that the user stays online until the transport closes it. Returns the topics that
    /// lost their last follower.
    pub(crate) fn mute(&mut self, user: &UserId, session: SessionId) -> Vec<Topic> {
        let conversations: Vec<ConversationId> = match self.users.get(user) {
            Some(local) => local.conversations.iter().copied().collect(),
            None => return Vec::new(),
        };
        conversations
            .into_iter()
            .flat_map(|c| self.drop_followers(c, |s| s.session() == session))
            .collect()
    }

    /// Removes a session. When it was the user's last here, the user is forgotten (their
    /// topic is among those returned).
    pub(crate) fn remove_session(&mut self, user: &UserId, session: SessionId) -> Removed {
        let Some(local) = self.users.get_mut(user) else {
            return Removed::default();
        };
        let before = local.sessions.len();
        local.sessions.retain(|s| s.session() != session);
        if local.sessions.len() == before {
            return Removed::default();
        }
        let last = local.sessions.is_empty();
        let conversations: Vec<ConversationId> = local.conversations.iter().copied().collect();
        let mut topics: Vec<Topic> = conversations
            .into_iter()
            .flat_map(|c| self.drop_followers(c, |s| s.session() == session))
            .collect();
        if last {
            self.users.remove(user);
            topics.push(Topic::User(user.clone()));
        }
        Removed { topics, last }
    }

    fn drop_followers(
        &mut self,
        conversation: ConversationId,
        gone: impl Fn(&S) -> bool,
    ) -> Vec<Topic> {
        let Some(followers) = self.followers.get_mut(&conversation) else {
            return Vec::new();
        };
        let before = followers.len();
        followers.retain(|s| !gone(s));
        if followers.is_empty() {
            self.followers.remove(&conversation);
            if before > 0 {
                return vec![Topic::Conversation(conversation)];
            }
        }
        Vec::new()
    }

    /// Whether this node should be subscribed to `topic` now.
    pub(crate) fn wants(&self, topic: &Topic) -> bool {
        match topic {
            Topic::Conversation(c) => self.followers.contains_key(c),
            Topic::User(u) => self.users.contains_key(u),
            Topic::Broadcast => true,
        }
    }

    /// The sessions following a conversation.
    pub(crate) fn followers(&self, conversation: &ConversationId) -> &[S] {
        self.followers.get(conversation).map_or(&[], Vec::as_slice)
    }

    /// A user's live sessions here.
    pub(crate) fn sessions(&self, user: &UserId) -> &[S] {
        self.users.get(user).map_or(&[], |l| l.sessions.as_slice())
    }

    /// True when `user` has a session here.
    pub(crate) fn is_online(&self, user: &UserId) -> bool {
        self.users.contains_key(user)
    }

    /// True when this node knows `user` as a member of `conversation` (a fast path; the
    /// store is asked when this says no).
    pub(crate) fn knows_member(&self, user: &UserId, conversation: ConversationId) -> bool {
        self.users
            .get(user)
            .is_some_and(|l| l.conversations.contains(&conversation))
    }

    /// Users with a session here.
    pub(crate) fn users(&self) -> impl Iterator<Item = &UserId> {
        self.users.keys()
    }

    /// Every session here.
    pub(crate) fn all_sessions(&self) -> impl Iterator<Item = &S> {
        self.users.values().flat_map(|l| l.sessions.iter())
    }

    /// Open sessions, users with one, and conversations with a follower.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let sessions = self.users.values().map(|l| l.sessions.len()).sum();
        (sessions, self.users.len(), self.followers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct S(SessionId, UserId);

    impl Follower for S {
        fn session(&self) -> SessionId {
            self.0
        }
        fn user(&self) -> &UserId {
            &self.1
        }
    }

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn conv(n: u128) -> ConversationId {
        ConversationId(uuid::Uuid::from_u128(n))
    }

    fn session(id: u64, name: &str) -> S {
        S(SessionId(id), user(name))
    }

    #[test]
    fn the_first_session_of_a_user_gains_their_topic_and_the_last_loses_it() {
        let mut r = Registry::default();
        let ann = user("ann");
        assert_eq!(
            r.add_session(session(1, "ann")),
            vec![Topic::User(ann.clone())]
        );
        assert!(r.add_session(session(2, "ann")).is_empty());
        assert!(r.wants(&Topic::User(ann.clone())));
        let first = r.remove_session(&ann, SessionId(1));
        assert_eq!(
            first,
            Removed {
                topics: vec![],
                last: false
            }
        );
        let last = r.remove_session(&ann, SessionId(2));
        assert!(last.last);
        assert_eq!(last.topics, vec![Topic::User(ann.clone())]);
        assert!(!r.wants(&Topic::User(ann.clone())));
        assert!(!r.is_online(&ann));
        // Removing again changes nothing.
        assert_eq!(r.remove_session(&ann, SessionId(2)), Removed::default());
    }

    #[test]
    fn attach_follows_loaded_and_meanwhile_joined_conversations() {
        let mut r = Registry::default();
        let ann = user("ann");
        let s = session(1, "ann");
        r.add_session(s.clone());
        // A join lands between registration and the load.
        assert_eq!(r.follow(&ann, conv(9)), vec![Topic::Conversation(conv(9))]);
        let mut gained = r.attach(&s, [conv(1), conv(2)]);
        gained.sort();
        // conv(9) already had its follower: only the loaded ones are new topics.
        let mut expected = vec![Topic::Conversation(conv(1)), Topic::Conversation(conv(2))];
        expected.sort();
        assert_eq!(gained, expected);
        for c in [1, 2, 9] {
            assert_eq!(r.followers(&conv(c)), &[s.clone()][..]);
            assert!(r.knows_member(&ann, conv(c)));
        }
        // Attaching twice adds no duplicate follower.
        assert!(r.attach(&s, []).is_empty());
        assert_eq!(r.followers(&conv(1)).len(), 1);
    }

    #[test]
    fn attach_after_close_does_nothing() {
        let mut r = Registry::default();
        let ann = user("ann");
        let s = session(1, "ann");
        r.add_session(s.clone());
        r.remove_session(&ann, SessionId(1));
        assert!(r.attach(&s, [conv(1)]).is_empty());
        assert!(r.followers(&conv(1)).is_empty());
        assert!(!r.wants(&Topic::Conversation(conv(1))));
    }

    #[test]
    fn follow_and_unfollow_report_only_the_first_and_last_follower() {
        let mut r = Registry::default();
        let (ann, bob) = (user("ann"), user("bob"));
        r.add_session(session(1, "ann"));
        r.add_session(session(2, "ann"));
        r.add_session(session(3, "bob"));
        assert_eq!(r.follow(&ann, conv(1)), vec![Topic::Conversation(conv(1))]);
        assert_eq!(r.followers(&conv(1)).len(), 2, "both of ann's sessions");
        assert!(r.follow(&bob, conv(1)).is_empty());
        assert!(r.follow(&ann, conv(1)).is_empty(), "idempotent");
        assert_eq!(r.followers(&conv(1)).len(), 3);
        assert!(r.unfollow(&ann, conv(1)).is_empty());
        assert!(!r.knows_member(&ann, conv(1)));
        assert_eq!(
            r.unfollow(&bob, conv(1)),
            vec![Topic::Conversation(conv(1))]
        );
        assert!(!r.wants(&Topic::Conversation(conv(1))));
    }

    #[test]
    fn a_user_with_no_session_here_follows_nothing() {
        let mut r: Registry<S> = Registry::default();
        let ann = user("ann");
        assert!(r.follow(&ann, conv(1)).is_empty());
        assert!(r.unfollow(&ann, conv(1)).is_empty());
        assert!(!r.knows_member(&ann, conv(1)));
        assert!(r.followers(&conv(1)).is_empty());
    }

    #[test]
    fn removing_a_session_releases_conversations_it_alone_followed() {
        let mut r = Registry::default();
        let (ann, bob) = (user("ann"), user("bob"));
        let a = session(1, "ann");
        let b = session(2, "bob");
        r.add_session(a.clone());
        r.add_session(b.clone());
        r.attach(&a, [conv(1), conv(2)]);
        r.attach(&b, [conv(2)]);
        let mut removed = r.remove_session(&ann, SessionId(1));
        removed.topics.sort();
        let mut expected = vec![Topic::Conversation(conv(1)), Topic::User(ann.clone())];
        expected.sort();
        assert_eq!(
            removed,
            Removed {
                topics: expected,
                last: true
            }
        );
        assert_eq!(r.followers(&conv(2)), &[b][..]);
        assert_eq!(r.counts(), (1, 1, 1));
        assert!(r.is_online(&bob));
    }

    #[test]
    fn a_muted_session_gets_nothing_but_keeps_its_user_online() {
        let mut r = Registry::default();
        let ann = user("ann");
        let a = session(1, "ann");
        r.add_session(a.clone());
        r.attach(&a, [conv(1)]);
        assert_eq!(
            r.mute(&ann, SessionId(1)),
            vec![Topic::Conversation(conv(1))]
        );
        assert!(r.followers(&conv(1)).is_empty());
        assert!(r.is_online(&ann));
        assert_eq!(r.sessions(&ann).len(), 1);
        // Closing it later releases only the user's topic.
        let removed = r.remove_session(&ann, SessionId(1));
        assert_eq!(removed.topics, vec![Topic::User(ann)]);
    }

    proptest::proptest! {
        /// A user is online here exactly while they have an open session, the user's
        /// topic is wanted exactly then, and only the last close reports `last`.
        #[test]
        fn online_exactly_while_a_session_is_open(
            ops in proptest::collection::vec((0usize..3, proptest::prelude::any::<bool>()), 1..80)
        ) {
            let names = ["ann", "bob", "cat"];
            let mut r = Registry::default();
            let mut open: [Vec<u64>; 3] = Default::default();
            let mut next = 1u64;
            for (u, opening) in ops {
                let who = user(names[u]);
                if opening {
                    let gained = r.add_session(session(next, names[u]));
                    proptest::prop_assert_eq!(gained.is_empty(), !open[u].is_empty());
                    open[u].push(next);
                    next += 1;
                } else if let Some(id) = open[u].pop() {
                    let removed = r.remove_session(&who, SessionId(id));
                    proptest::prop_assert_eq!(removed.last, open[u].is_empty());
                } else {
                    proptest::prop_assert_eq!(r.remove_session(&who, SessionId(0)), Removed::default());
                }
                proptest::prop_assert_eq!(r.is_online(&who), !open[u].is_empty());
                proptest::prop_assert_eq!(r.wants(&Topic::User(who.clone())), !open[u].is_empty());
            }
            let total: usize = open.iter().map(Vec::len).sum();
            proptest::prop_assert_eq!(r.counts().0, total);
        }
    }

    #[test]
    fn broadcast_is_always_wanted() {
        let r: Registry<S> = Registry::default();
        assert!(r.wants(&Topic::Broadcast));
        assert_eq!(r.counts(), (0, 0, 0));
        assert_eq!(r.users().count(), 0);
        assert_eq!(r.all_sessions().count(), 0);
    }
}
