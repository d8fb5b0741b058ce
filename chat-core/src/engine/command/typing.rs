//! `typing`: a volatile lease; the others hear "started" once and "stopped" once.

use super::{Ctx, Reply};
use crate::error::Result;
use crate::ids::ConversationId;
use crate::model::TypingChange;

pub(crate) async fn run(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    typing: bool,
) -> Result<Reply> {
    ctx.member_kind(conversation).await?;
    let change = ctx.set_typing(conversation, typing);
    if matches!(change, TypingChange::Started | TypingChange::Stopped) {
        ctx.tell_typing(conversation, typing).await;
    }
    Ok(Reply::Ok)
}
