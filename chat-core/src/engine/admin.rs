//! What the embedder does outside any session: system messages and deleting
//! conversations. The same rules of the log apply; no membership is needed.

use super::command::Ctx;
use super::Engine;
use crate::error::{Error, Result};
use crate::event::{Audience, Delivery, Event, Skip};
use crate::ids::{ConversationId, UserId};
use crate::model::{validate_body, Message, MessageKind};
use crate::ports::CloseReason;

/// Members read per store call while deleting a conversation.
const MEMBER_PAGE: u32 = 1000;

impl Engine {
    /// Appends a system message to a conversation on behalf of the embedder (an admin
    /// API), and fans it out like any message. `sender` names the author shown to users
    /// (e.g. `system`). No membership is needed.
    ///
    /// # Errors
    /// `not_found` for a missing conversation, `too_large`/`invalid` for the body.
    pub async fn system_message(
        &self,
        conversation: ConversationId,
        sender: &UserId,
        body: &str,
    ) -> Result<Message> {
        let ctx = Ctx::new(&self.inner, sender, None);
        validate_body(body, ctx.limits().max_body_bytes)?;
        if ctx.store().conversation(conversation).await?.is_none() {
            return Err(Error::not_found(format!("conversation {conversation}")));
        }
        let message = ctx.new_message(conversation, MessageKind::System, body.to_owned(), None);
        let appended = ctx.append(message).await?;
        ctx.publish(
            Audience::Conversation { conversation },
            Skip::Nobody,
            Event::Message {
                message: appended.message.clone(),
            },
        )
        .await;
        Ok(appended.message)
    }

    /// Closes every session of `user` on this node with `reason` (usually
    /// [`CloseReason::Kicked`]), as an embedder does when it revokes a user's access.
    /// Their queued frames stay queued for the transports to flush; the user goes offline
    /// unless another node holds them. Refusing their next connection is the
    /// authenticator's job. Returns how many sessions were closed.
    pub async fn disconnect_user(&self, user: &UserId, reason: CloseReason) -> usize {
        let inner = &self.inner;
        let sessions: Vec<_> = inner.registry.read().sessions(user).to_vec();
        for s in &sessions {
            s.closed.store(true, std::sync::atomic::Ordering::Release);
            s.transport.close(reason);
            inner.detach_session(s).await;
        }
        if !sessions.is_empty() {
            tracing::info!(%user, reason = reason.as_str(), sessions = sessions.len(), "user disconnected");
        }
        sessions.len()
    }

    /// Deletes a conversation with its history; its live members are told
    /// (`conversation_removed`).
    ///
    /// # Errors
    /// `not_found` when it does not exist.
    pub async fn delete_conversation(&self, conversation: ConversationId) -> Result<()> {
        let inner = &self.inner;
        let mut members = Vec::new();
        let mut after: Option<UserId> = None;
        loop {
            let page = inner
                .store
                .members(conversation, after.as_ref(), MEMBER_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user.clone());
            members.extend(page.into_iter().map(|m| m.user));
        }
        inner.store.delete_conversation(conversation).await?;
        inner.kinds.forget(conversation);
        for user in members {
            inner.unfollow(&user, conversation).await;
            inner
                .publish(Delivery {
                    audience: Audience::User { user },
                    skip: Skip::Nobody,
                    event: Event::ConversationRemoved { conversation },
                })
                .await;
        }
        Ok(())
    }
}
