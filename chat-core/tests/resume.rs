//! Resume: a reconnecting client gets exactly what it missed, or is told it is too far
//! behind, never a partial replay.

mod common;

use chat_core::engine::{Command, Event, Reply, ResumeOutcome, ResumePoint};
use chat_core::model::Limits;
use common::World;

#[tokio::test]
async fn resume_replays_exactly_what_was_missed_or_says_too_far_behind() {
    let w = World::with_limits({
        let mut l = Limits::default();
        l.max_resume_gap = 5;
        l
    })
    .await;
    let alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let room = alice.create_room("general", false).await;
    let busy = alice.create_room("busy", false).await;
    bob.join(room.id).await;
    bob.join(busy.id).await;
    alice.send(room.id, "seen").await;
    bob.events();
    bob.session.close().await;

    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(alice.send(room.id, &format!("missed {i}")).await);
    }
    for i in 0..8 {
        alice.send(busy.id, &format!("flood {i}")).await;
    }
    let mut bob = w.connect("bob").await;
    let reply = bob
        .run(Command::Resume {
            conversations: vec![
                ResumePoint {
                    conversation: room.id,
                    last_seq: 1,
                },
                ResumePoint {
                    conversation: busy.id,
                    last_seq: 0,
                },
            ],
        })
        .await;
    let Reply::Resumed { conversations } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(conversations[0].outcome, ResumeOutcome::Replayed);
    assert_eq!(
        conversations[0].messages, missed,
        "exactly the missed messages, in order"
    );
    assert_eq!(conversations[0].last_seq, 4);
    assert_eq!(conversations[1].outcome, ResumeOutcome::TooFarBehind);
    assert!(
        conversations[1].messages.is_empty(),
        "never a partial replay"
    );
    assert_eq!(conversations[1].last_seq, 8);
    bob.assert_quiet();
    // Live again after the resume.
    let live = alice.send(room.id, "live").await;
    assert_eq!(bob.events(), vec![Event::Message { message: live }]);
    // Up to date: nothing to replay.
    let Reply::Resumed { conversations } = bob
        .run(Command::Resume {
            conversations: vec![ResumePoint {
                conversation: room.id,
                last_seq: 5,
            }],
        })
        .await
    else {
        panic!()
    };
    assert_eq!(
        (conversations[0].outcome, conversations[0].messages.len()),
        (ResumeOutcome::Replayed, 0)
    );
}
