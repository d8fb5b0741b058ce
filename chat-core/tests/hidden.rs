//! A hidden thing and a missing thing get identical answers: an outsider cannot tell a
//! private room or someone's direct conversation from one that does not exist.

mod common;

use chat_core::engine::Command;
use chat_core::model::RoomRef;
use chat_core::{Error, ErrorCode};
use common::{uid, Client, World};

async fn join_error(client: &Client, room: RoomRef) -> Error {
    match client
        .session
        .execute(Command::Join {
            room,
            create: false,
        })
        .await
    {
        Err(e) => e,
        Ok(reply) => panic!("join should be refused: {reply:?}"),
    }
}

#[tokio::test]
async fn joining_a_private_room_by_name_or_id_answers_as_if_it_did_not_exist() {
    let w = World::new().await;
    let alice = w.connect("alice").await;
    let bob = w.connect("bob").await;
    let room = alice.create_room("secret", true).await;

    let by_name = join_error(&bob, RoomRef::Name("secret".into())).await;
    let by_id = join_error(&bob, RoomRef::Id(room.id)).await;
    assert_eq!(by_name.code(), ErrorCode::NotFound);
    assert!(
        !by_name.to_string().contains(&room.id.to_string()),
        "the room's id does not leak: {by_name}"
    );

    w.engine
        .delete_conversation(room.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gone_by_name = join_error(&bob, RoomRef::Name("secret".into())).await;
    let gone_by_id = join_error(&bob, RoomRef::Id(room.id)).await;
    assert_eq!(by_name.to_string(), gone_by_name.to_string(), "by name");
    assert_eq!(by_id.to_string(), gone_by_id.to_string(), "by id");
}

#[tokio::test]
async fn joining_someone_elses_direct_conversation_answers_as_if_it_did_not_exist() {
    let w = World::new().await;
    let mut alice = w.connect("alice").await;
    let mut bob = w.connect("bob").await;
    let carol = w.connect("carol").await;
    w.befriend(&mut alice, &mut bob).await;
    let direct = match alice.run(Command::OpenDirect { user: uid("bob") }).await {
        chat_core::engine::Reply::Direct { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    };
    let hidden = join_error(&carol, RoomRef::Id(direct.id)).await;
    assert_eq!(hidden.code(), ErrorCode::NotFound, "{hidden}");

    w.engine
        .delete_conversation(direct.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gone = join_error(&carol, RoomRef::Id(direct.id)).await;
    assert_eq!(hidden.to_string(), gone.to_string());
}
