//! Run: `cargo run -p example-friends-dm`
//!
//! Direct messages between friends only, with message status and unread counts. It starts
//! a server on a free port, then plays alice and bob, each with a [`chat_client::Client`]
//! over a real WebSocket, and prints what each sees: a message refused before they are
//! friends, the request and its acceptance, a message going sent → delivered → read, a
//! delete only the sender may make, unread counts and online friends. It exits with an
//! error if anything is not as expected.

use std::sync::Arc;
use std::time::Duration;

use chat_client::chat_core::{ErrorCode, Event, UserId};
use chat_client::{Client, ClientEvent, Events, Page};
use chat_core::memory::MemoryStore;
use chat_core::model::{FriendStatus, MessageStatus};
use chat_core::Engine;
use chat_transport_ws::{ChatState, Config, JwtAuthenticator, TokenSigner};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// One user: the client, and the events it has read but not yet looked at.
struct User {
    client: Client,
    events: Events,
    seen: Vec<Event>,
}

impl User {
    async fn connect(url: &str, signer: &TokenSigner, name: &str) -> Fallible<User> {
        let token = signer.mint(name, None, Duration::from_secs(600))?;
        let mut config = chat_client::Config::new(url);
        // Delivery is acknowledged by hand below, to show each status in turn.
        config.auto_mark_delivered = false;
        let (client, events) = Client::connect(config, token).await?;
        Ok(User {
            client,
            events,
            seen: Vec::new(),
        })
    }

    /// The first event (seen or new) that `pick` accepts; the others stay for later.
    async fn event<T>(&mut self, pick: impl Fn(&Event) -> Option<T>) -> Fallible<T> {
        if let Some(i) = self.seen.iter().position(|e| pick(e).is_some()) {
            let event = self.seen.remove(i);
            return pick(&event).ok_or_else(|| "unreachable".into());
        }
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), self.events.next())
                .await?
                .ok_or("the client closed")?;
            match next {
                ClientEvent::Event(event) => match pick(&event) {
                    Some(found) => return Ok(found),
                    None => self.seen.push(event),
                },
                ClientEvent::Closed { reason, .. } => return Err(reason.into()),
                _ => {}
            }
        }
    }
}

fn expect(ok: bool, what: &str) -> Fallible<()> {
    if ok {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(format!("not as expected: {what}").into())
    }
}

#[tokio::main]
async fn main() -> Fallible<()> {
    let secret = b"example-only-secret-change-me-0123456789";
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    let state = ChatState::new(
        engine,
        Arc::new(JwtAuthenticator::hs256(secret)),
        Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chat_transport_ws::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let signer = TokenSigner::hs256(secret);
    let mut alice = User::connect(&url, &signer, "alice").await?;
    let mut bob = User::connect(&url, &signer, "bob").await?;
    let alice_id = UserId::new("alice")?;
    let bob_id = UserId::new("bob")?;

    println!("Before they are friends:");
    let refused = alice.client.open_direct(bob_id.clone()).await;
    expect(
        refused.err().and_then(|e| e.code()) == Some(ErrorCode::NotFriends),
        "alice cannot message bob (not_friends)",
    )?;

    println!("Friendship:");
    alice.client.friend_request(bob_id.clone()).await?;
    let request = bob
        .event(|e| match e {
            Event::Friend { friend } => Some(friend.status),
            _ => None,
        })
        .await?;
    expect(
        request == FriendStatus::RequestReceived,
        "bob sees alice's request",
    )?;
    bob.client.friend_accept(alice_id.clone()).await?;
    let accepted = alice
        .event(|e| match e {
            Event::Friend { friend } => Some(friend.status),
            _ => None,
        })
        .await?;
    expect(
        accepted == FriendStatus::Friends,
        "alice sees the acceptance",
    )?;
    let online = alice.client.online_friends().await?;
    expect(
        online == vec![bob_id.clone()],
        "alice sees bob among her online friends",
    )?;

    println!("A direct message, sent → delivered → read:");
    let (direct, _) = alice.client.open_direct(bob_id.clone()).await?;
    let conv = direct.id;
    let sent = alice
        .client
        .send_with_id(conv, "hi bob", Some("m1".into()))
        .await?;
    let seq = sent.message.seq;
    let status = |u: &User| {
        let client = u.client.clone();
        async move {
            let history = client.history(conv, Page::default()).await?;
            Ok::<_, Box<dyn std::error::Error>>(history.messages.first().and_then(|m| m.status))
        }
    };
    expect(
        status(&alice).await? == Some(MessageStatus::Sent),
        "status: sent",
    )?;
    let got = bob
        .event(|e| match e {
            Event::Message { message } => Some(message.body.clone()),
            _ => None,
        })
        .await?;
    expect(got == "hi bob", "bob receives it")?;
    expect(bob.client.unread_total().await? == 1, "bob has 1 unread")?;
    bob.client.mark_delivered(conv, seq).await?;
    alice
        .event(|e| matches!(e, Event::Receipt { .. }).then_some(()))
        .await?;
    expect(
        status(&alice).await? == Some(MessageStatus::Delivered),
        "status: delivered",
    )?;
    bob.client.mark_read(conv, seq).await?;
    alice
        .event(|e| matches!(e, Event::Receipt { .. }).then_some(()))
        .await?;
    expect(
        status(&alice).await? == Some(MessageStatus::Read),
        "status: read",
    )?;
    expect(bob.client.unread_total().await? == 0, "bob has 0 unread")?;

    println!("Soft delete, by the sender only:");
    let denied = bob.client.delete(conv, seq).await;
    expect(
        denied.err().and_then(|e| e.code()) == Some(ErrorCode::Forbidden),
        "bob cannot delete alice's message",
    )?;
    let deleted = alice.client.delete(conv, seq).await?;
    expect(
        deleted.deleted_at.is_some() && deleted.body.is_empty(),
        "alice deletes it; a tombstone stays",
    )?;
    let gone = bob
        .event(|e| match e {
            Event::MessageDeleted { message } => Some(message.seq),
            _ => None,
        })
        .await?;
    expect(gone == seq, "bob sees the deletion")?;

    alice.client.close();
    bob.client.close();
    let _ = stop.send(());
    server.await??;
    println!("All as expected.");
    Ok(())
}
