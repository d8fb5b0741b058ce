//! `resume`: after a reconnect, replay what the client missed per conversation, or say
//! it is too far behind (it then pages history). Never a partial replay (invariant 5).

use serde::{Deserialize, Serialize};

use super::{Ctx, Reply};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{ConversationId, Seq};
use crate::model::{HistoryPage, Message};

/// Where a client stands in one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumePoint {
    /// The conversation.
    pub conversation: ConversationId,
    /// The highest seq up to which the client holds every message (0 for none).
    pub last_seq: Seq,
}

/// What happened to one conversation of a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResumeOutcome {
    /// `messages` holds everything after the client's seq (possibly nothing).
    Replayed,
    /// More was missed than one replay carries: page history instead.
    TooFarBehind,
    /// Not a conversation of this user (or gone).
    NotFound,
}

/// One conversation's answer to a resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResumeResult {
    /// The conversation.
    pub conversation: ConversationId,
    /// What happened.
    pub outcome: ResumeOutcome,
    /// The missed messages in seq order (when replayed).
    pub messages: Vec<Message>,
    /// The conversation's newest seq (0 when not found).
    pub last_seq: Seq,
}

pub(crate) async fn run(ctx: &Ctx<'_>, points: Vec<ResumePoint>) -> Result<Reply> {
    let max = ctx.limits().max_resume_conversations;
    if points.len() > max {
        return Err(Error::invalid(format!(
            "resume at most {max} conversations at once"
        )));
    }
    let gap_limit = ctx.limits().max_resume_gap;
    let page = u32::try_from(gap_limit).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let conv = match ctx.member_of(p.conversation).await {
            Ok(c) => c,
            Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::Forbidden) => {
                out.push(ResumeResult {
                    conversation: p.conversation,
                    outcome: ResumeOutcome::NotFound,
                    messages: Vec::new(),
                    last_seq: 0,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let missed = conv.last_seq.saturating_sub(p.last_seq);
        if missed > gap_limit {
            out.push(ResumeResult {
                conversation: conv.id,
                outcome: ResumeOutcome::TooFarBehind,
                messages: Vec::new(),
                last_seq: conv.last_seq,
            });
            continue;
        }
        let mut messages = Vec::new();
        let mut after = p.last_seq;
        // Everything up to the seq seen when loading, in pages; appends that land
        // meanwhile arrive as live events (clients de-duplicate by seq).
        while after < conv.last_seq {
            let chunk = ctx
                .store()
                .history(
                    conv.id,
                    HistoryPage::After(after),
                    page.min(ctx.limits().resume_page.max(1)),
                )
                .await?;
            let Some(last) = chunk.last() else { break };
            after = last.seq;
            messages.extend(chunk.into_iter().filter(|m| m.seq <= conv.last_seq));
        }
        out.push(ResumeResult {
            conversation: conv.id,
            outcome: ResumeOutcome::Replayed,
            messages,
            last_seq: conv.last_seq,
        });
    }
    Ok(Reply::Resumed { conversations: out })
}
