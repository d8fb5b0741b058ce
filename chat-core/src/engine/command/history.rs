//! `history`: a page of a conversation's log, with each message's derived status.

use super::{Ctx, MemberMarks, MessageView, Reply};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, Seq};
use crate::model::{derive_status, HistoryPage};

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    before: Option<Seq>,
    after: Option<Seq>,
    limit: Option<u32>,
    thread: Option<Seq>,
) -> Result<Reply> {
    let limit = Ctx::page(limit, 50, ctx.limits().max_history_page)?;
    let page = match (before, after) {
        (Some(_), Some(_)) => return Err(Error::invalid("give `before` or `after`, not both")),
        (None, Some(a)) => HistoryPage::After(a),
        (b, None) => HistoryPage::Before(b),
    };
    let conv = ctx.member_of(conversation).await?;
    let status_limit = ctx.limits().status_member_limit;
    let messages = match thread {
        None => ctx.store().history(conversation, page, limit).await?,
        Some(root) => {
            // A thread is named by its root: a missing or unknown one is `not_found`, a
            // reply is not a root.
            let first = ctx
                .store()
                .message(conversation, root)
                .await?
                .ok_or_else(|| Error::not_found(format!("message {root}")))?;
            if let Some(of) = first.thread {
                return Err(Error::invalid(format!(
                    "message {root} is a reply in the thread of message {of}; ask for that thread"
                )));
            }
            ctx.store().thread(conversation, root, page, limit).await?
        }
    };
    let members = ctx
        .store()
        .members(conversation, None, status_limit.saturating_add(1))
        .await?;
    let members: Vec<MemberMarks> = if members.len() as u64 > u64::from(status_limit) {
        Vec::new()
    } else {
        members
            .into_iter()
            .map(|m| MemberMarks {
                user: m.user,
                watermarks: m.watermarks,
            })
            .collect()
    };
    let messages = messages
        .into_iter()
        .map(|message| {
            let status = (!members.is_empty()).then(|| {
                derive_status(
                    message.seq,
                    &message.sender,
                    members.iter().map(|m| (&m.user, m.watermarks)),
                )
            });
            MessageView { message, status }
        })
        .collect();
    Ok(Reply::History {
        conversation,
        messages,
        last_seq: conv.last_seq,
        members,
    })
}
