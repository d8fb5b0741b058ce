//! The README's example is `examples/hello.rs`, word for word, and it runs against a real
//! server.

mod common;

#[path = "../examples/hello.rs"]
#[allow(dead_code, unreachable_pub)]
mod hello;

use chat_client::chat_core::Command;
use common::*;

/// The lines of `examples/hello.rs` between its `README: begin` and `README: end` marks.
fn example_body() -> String {
    let source = include_str!("../examples/hello.rs");
    let lines: Vec<&str> = source.lines().collect();
    let begin = lines
        .iter()
        .position(|l| l.starts_with("// README: begin"))
        .expect("a begin mark");
    let end = lines
        .iter()
        .position(|l| l.starts_with("// README: end"))
        .expect("an end mark");
    assert!(begin + 1 < end, "something between the marks");
    lines[begin + 1..end].join("\n")
}

/// The README's ```rust blocks.
fn readme_blocks() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in readme.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```rust" => current = Some(Vec::new()),
            None => {}
            Some(block) if line.trim_end() == "```" => {
                blocks.push(block.join("\n"));
                current = None;
            }
            Some(block) => block.push(line),
        }
    }
    assert!(current.is_none(), "an unclosed code block in README.md");
    blocks
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let blocks = readme_blocks();
    assert_eq!(blocks.len(), 1, "README.md has one rust block: {blocks:#?}");
    assert_eq!(
        blocks[0],
        example_body(),
        "README.md's example and examples/hello.rs differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs() {
    let server = Server::start().await;
    // Someone spoke in the lobby before: the example's message comes after it.
    let lobby = match server
        .engine
        .execute_as(
            &uid("bob"),
            Command::Join {
                room: chat_client::chat_core::model::RoomRef::Name("lobby".into()),
                create: true,
            },
        )
        .await
        .expect("bob joins")
    {
        chat_client::chat_core::Reply::Room { conversation, .. } => conversation.id,
        other => panic!("{other:?}"),
    };
    server
        .engine
        .system_message(lobby, &uid("bob"), "welcome")
        .await
        .expect("bob speaks");

    let url = server.url.clone();
    let message = tokio::time::timeout(WAIT, hello::hello(&url, token("alice")))
        .await
        .expect("the example ends in time")
        .expect("the example succeeds");
    assert_eq!(message.conversation, lobby);
    assert_eq!(message.sender, uid("alice"));
    assert_eq!(message.body, "hello");
    assert_eq!(message.seq, 2);
    // It closed its connection on the way out.
    server.wait_connections(0).await;
}
