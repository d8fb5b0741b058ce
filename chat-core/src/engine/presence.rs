//! Presence: a user is online while at least one of their connections is open on any
//! node. Coming online, going offline, and telling friends and co-members.
//!
//! A user's transitions on this node run one at a time under that user's own lock (other
//! users never wait), and each decides from the state at that moment, so a reconnect
//! racing a disconnect leaves the user online.

use std::slice;

use super::{stats, Inner};
use crate::event::{Audience, Delivery, Event, Skip};
use crate::ids::{ConversationId, UserId};
use crate::model::Presence;

impl Inner {
    /// After a session opened: the user comes online unless they already were.
    /// `conversations`: theirs, as the session just loaded them.
    pub(crate) async fn came_online(&self, user: &UserId, conversations: Vec<ConversationId>) {
        let _turn = self.presence_turns.lock(user).await;
        if !self.registry.read().is_online(user) {
            return; // closed again meanwhile
        }
        let was_online = self.online_anywhere(user).await;
        if let Err(e) = self
            .bus
            .renew_presence(self.node, slice::from_ref(user), self.presence_ttl)
            .await
        {
            self.bus_error(&e);
        }
        if !was_online {
            self.announce_presence(
                Presence {
                    user: user.clone(),
                    online: true,
                    last_seen: None,
                },
                Some(conversations),
            )
            .await;
        }
    }

    /// After a user's last session here closed: they go offline unless a new session
    /// opened meanwhile or another node still holds them; their last-seen is recorded.
    pub(crate) async fn went_offline_here(&self, user: &UserId) {
        let _turn = self.presence_turns.lock(user).await;
        if self.registry.read().is_online(user) {
            return; // a new session opened meanwhile: still online here
        }
        if let Err(e) = self.bus.drop_presence(self.node, user).await {
            self.bus_error(&e);
        }
        if self.online_anywhere(user).await {
            return;
        }
        let now = self.clock.now();
        if let Err(e) = self.store.set_last_seen(user, now).await {
            // Counted and logged (rate-limited) where every store call is.
            tracing::debug!(error = &e as &dyn std::error::Error, %user, "recording last seen");
        }
        self.announce_presence(
            Presence {
                user: user.clone(),
                online: false,
                last_seen: Some(now),
            },
            None,
        )
        .await;
    }

    async fn online_anywhere(&self, user: &UserId) -> bool {
        !self
            .bus
            .online(slice::from_ref(user))
            .await
            .unwrap_or_default()
            .is_empty()
    }

    /// A presence change from another node: remember who is online elsewhere, so that
    /// their going offline is noticed even if their node dies without saying so.
    pub(crate) fn note_remote_presence(&self, delivery: &Delivery) {
        let Event::Presence { presence } = &delivery.event else {
            return;
        };
        let mut remote = self.remote_online.lock();
        if presence.online {
            remote.insert(presence.user.clone(), false);
        } else {
            remote.remove(&presence.user);
        }
    }

    /// Users announced online by another node whose leases are all gone (their node died
    /// or lost the bus): this node's sessions are told they went offline. Each node tells
    /// only its own sessions, so nobody hears it twice. A user found without a lease is
    /// told of one sweep later, and only if no node announced it meanwhile: a node that
    /// drops a lease announces the departure itself a moment later.
    pub(crate) async fn sweep_departed(&self) {
        let watched: Vec<UserId> = {
            let registry = self.registry.read();
            self.remote_online
                .lock()
                .keys()
                .filter(|u| !registry.is_online(u))
                .cloned()
                .collect()
        };
        if watched.is_empty() {
            return;
        }
        let online = match self.bus.online(&watched).await {
            Ok(o) => o,
            Err(e) => return self.bus_error(&e),
        };
        let now = self.clock.now();
        let gone: Vec<UserId> = {
            let mut remote = self.remote_online.lock();
            let mut gone = Vec::new();
            for u in watched {
                let here = online.contains(&u);
                match remote.get_mut(&u) {
                    Some(suspect) if here => *suspect = false,
                    Some(suspect) if !*suspect => *suspect = true,
                    Some(_) => {
                        remote.remove(&u);
                        gone.push(u);
                    }
                    None => {}
                }
            }
            gone
        };
        for user in gone {
            stats::BusCounters::add(&self.counters.bus.presence_expired, 1);
            let audience = self.presence_audience(&user, None).await;
            self.deliver_local(&Delivery {
                audience,
                skip: Skip::User { user: user.clone() },
                event: Event::Presence {
                    presence: Presence {
                        user,
                        online: false,
                        last_seen: Some(now),
                    },
                },
            });
        }
    }

    /// Tells friends and co-members about a presence change.
    pub(crate) async fn announce_presence(
        &self,
        presence: Presence,
        conversations: Option<Vec<ConversationId>>,
    ) {
        let user = presence.user.clone();
        self.publish(Delivery {
            audience: self.presence_audience(&user, conversations).await,
            skip: Skip::User { user },
            event: Event::Presence { presence },
        })
        .await;
    }

    /// Who hears of `user`'s presence: their co-members and friends (as far as the store
    /// can say right now). `known`: their conversations, when the caller just loaded them.
    async fn presence_audience(
        &self,
        user: &UserId,
        known: Option<Vec<ConversationId>>,
    ) -> Audience {
        let conversations = match known {
            Some(c) => Ok(c),
            None => self.loads.conversations_of(user).await,
        };
        let conversations = conversations.unwrap_or_else(|e| {
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "loading conversations for presence"
            );
            Vec::new()
        });
        let friends = self.loads.friends_of(user).await.unwrap_or_else(|e| {
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "loading friends for presence"
            );
            Vec::new()
        });
        Audience::Presence {
            subject: user.clone(),
            conversations,
            users: friends,
        }
    }
}
