//! The store conformance suite: one `pub async fn` per store behaviour.
//!
//! Every store crate runs all of them in its tests with one line:
//!
//! ```text
//! chat_core::conformance_tests!(|| async { std::sync::Arc::new(MyStore::open_temp().await) as std::sync::Arc<dyn chat_core::ports::Store> });
//! ```
//!
//! Each behaviour gets a fresh, empty store from the factory and panics (failing the
//! test) on the first broken expectation, naming it.
//!
//! The behaviours live in one file per area (`log`, `marks`, `history`,
//! `conversations`, `people`); [`conformance_tests!`](crate::conformance_tests) is the one
//! list of them, and chat-core's own tests fail when a `pub async fn` here is missing
//! from it.

mod conversations;
mod history;
mod log;
mod marks;
mod people;

pub use conversations::*;
pub use history::*;
pub use log::*;
pub use marks::*;
pub use people::*;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::error::ErrorCode;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::model::{
    Attachment, Conversation, ConversationKind, FriendAction, FriendState, HistoryPage, Message,
    MessageKind, NewDirect, NewMessage, NewRoom, Role, Visibility, Watermarks,
};
use crate::ports::Store;

/// Runs every behaviour as its own `#[tokio::test]`, each with a fresh store from
/// `$factory`, an expression callable as `$factory().await -> Arc<dyn Store>`.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            seq_is_gap_free_under_concurrent_appends,
            seq_is_per_conversation,
            append_is_idempotent_by_sender_and_client_id,
            concurrent_retries_append_once,
            append_to_missing_conversation_is_not_found,
            watermarks_only_move_forward,
            unread_excludes_own_and_deleted,
            history_pages_both_ways_with_tombstones,
            threads_reply_counts_and_attachments,
            edit_and_delete,
            one_direct_conversation_per_pair,
            rooms_and_members,
            concurrent_joins_respect_the_member_cap,
            list_conversations_orders_by_activity,
            friendship_transitions,
            users_and_last_seen,
            batched_loads_match_one_by_one,
            delete_conversation_removes_everything
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: ::std::sync::Arc<dyn $crate::ports::Store> = ($factory)().await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200 + secs, 0).unwrap_or_default()
        + Duration::milliseconds(secs % 7)
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("test user id {name:?}: {e}"))
}

fn cid() -> ConversationId {
    ConversationId(uuid::Uuid::new_v4())
}

async fn room(store: &dyn Store, name: &str, owner: &UserId) -> Conversation {
    store
        .create_room(NewRoom {
            id: cid(),
            name: name.to_owned(),
            visibility: Visibility::Public,
            created_by: owner.clone(),
            created_at: t(0),
        })
        .await
        .unwrap_or_else(|e| panic!("create_room {name}: {e}"))
}

async fn join(store: &dyn Store, conv: ConversationId, who: &UserId) {
    store
        .add_member(conv, who, Role::Member, t(1), 1_000_000)
        .await
        .unwrap_or_else(|e| panic!("add_member: {e}"));
}

fn new_msg(
    conv: ConversationId,
    sender: &UserId,
    body: &str,
    client_id: Option<&str>,
) -> NewMessage {
    NewMessage {
        id: MessageId(uuid::Uuid::new_v4()),
        conversation: conv,
        sender: sender.clone(),
        client_id: client_id.map(str::to_owned),
        kind: MessageKind::User,
        body: body.to_owned(),
        created_at: t(10),
        reply_to: None,
        thread: None,
        attachments: Vec::new(),
    }
}

async fn send(store: &dyn Store, conv: ConversationId, sender: &UserId, body: &str) -> u64 {
    store
        .append(new_msg(conv, sender, body, None))
        .await
        .unwrap_or_else(|e| panic!("append: {e}"))
        .message
        .seq
}
