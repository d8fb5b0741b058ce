//! Receipts and unread counts: what is unread excludes one's own and deleted messages, and
//! marking read moves the count.

mod common;

use chat_core::engine::{Command, Reply};
use common::World;

#[tokio::test]
async fn unread_counts_exclude_own_and_deleted_messages() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    let other = alice.create_room("other", false).await;
    bob.join(room.id).await;
    bob.join(other.id).await;
    bob.send(room.id, "1").await;
    let doomed = bob.send(room.id, "2").await;
    alice.send(room.id, "mine").await;
    bob.send(other.id, "3").await;
    bob.run(Command::Delete {
        conversation: room.id,
        seq: doomed.seq,
    })
    .await;
    match alice.run(Command::UnreadTotal {}).await {
        Reply::Unread { unread } => assert_eq!(unread, 2),
        other => panic!("{other:?}"),
    }
    let list = match alice.run(Command::ListConversations { limit: None }).await {
        Reply::Conversations { conversations } => conversations,
        other => panic!("{other:?}"),
    };
    let counts: Vec<(String, u64)> = list
        .iter()
        .map(|s| (s.conversation.id.to_string(), s.unread))
        .collect();
    assert_eq!(counts.len(), 2);
    assert!(
        counts.contains(&(room.id.to_string(), 1)) && counts.contains(&(other.id.to_string(), 1)),
        "{counts:?}"
    );
    alice
        .run(Command::MarkRead {
            conversation: room.id,
            seq: 3,
        })
        .await;
    match alice.run(Command::UnreadTotal {}).await {
        Reply::Unread { unread } => assert_eq!(unread, 1),
        other => panic!("{other:?}"),
    }
}
