//! Chat: the welcome message, delivery to every member of the room (the sender included) with
//! the sender's name, rooms kept apart, and frames the contract does not allow.

use uuid::Uuid;
use wfs::contract::chat::{ChatClient, ChatOutbound, ChatParams};
use wfs::contract::types::{ChatBroadcast, ChatMessage};
use wfs::store::User;
use wfs_runtime::client::ClientError;

use crate::server::{TestServer, eventually, within};

async fn join(server: &TestServer, user: &User, city: Uuid) -> ChatClient {
    let params = ChatParams {
        city_uuid: city,
        access_token: server.token(user),
    };
    within(
        "chat handshake",
        ChatClient::connect(&server.base_url, &params),
    )
    .await
    .expect("accepted")
}

async fn next(client: &mut ChatClient) -> ChatOutbound {
    within("a chat frame", client.recv())
        .await
        .expect("a frame the contract allows")
}

async fn next_broadcast(client: &mut ChatClient) -> ChatBroadcast {
    match next(client).await {
        ChatOutbound::ChatBroadcast(broadcast) => broadcast,
        other => panic!("expected a chat message, got {other:?}"),
    }
}

fn chat_message(text: &str) -> ChatMessage {
    serde_json::from_value(serde_json::json!({ "message": text })).expect("a valid chat message")
}

#[tokio::test]
async fn members_are_welcomed_and_see_each_others_messages_with_names() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let tokyo = server.city("Tokyo").await.uuid;
    let mut alice = join(&server, &server.alice, cairo).await;
    let mut bob = join(&server, &server.bob, cairo).await;
    let mut elsewhere = join(&server, &server.admin, tokyo).await;
    for (client, city) in [
        (&mut alice, "Cairo"),
        (&mut bob, "Cairo"),
        (&mut elsewhere, "Tokyo"),
    ] {
        match next(client).await {
            ChatOutbound::ChatWelcome(welcome) => {
                assert_eq!(welcome.message, format!("Welcome in {city} chat."))
            }
            other => panic!("expected the welcome, got {other:?}"),
        }
    }
    eventually("joined", || server.app.hub.stats().subscribers == 3).await;

    within(
        "send",
        alice.send_chat_message(&chat_message("Zürich ☔ hello")),
    )
    .await
    .unwrap();
    for client in [&mut alice, &mut bob] {
        let broadcast = next_broadcast(client).await;
        assert_eq!(
            (broadcast.user.as_str(), broadcast.message.as_str()),
            ("alice", "Zürich ☔ hello")
        );
        assert_eq!(broadcast.city_uuid, cairo);
    }
    within("send", bob.send_chat_message(&chat_message("hi alice")))
        .await
        .unwrap();
    assert_eq!(next_broadcast(&mut alice).await.user, "bob");
    assert_eq!(next_broadcast(&mut bob).await.user, "bob");

    // Tokyo heard none of it: its next frame is its own room's message.
    within(
        "send",
        elsewhere.send_chat_message(&chat_message("konnichiwa")),
    )
    .await
    .unwrap();
    assert_eq!(next_broadcast(&mut elsewhere).await.message, "konnichiwa");
}

#[tokio::test]
async fn frames_that_are_not_chat_messages_get_an_error_and_the_connection_stays() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut alice = join(&server, &server.alice, cairo).await;
    assert!(matches!(
        next(&mut alice).await,
        ChatOutbound::ChatWelcome(_)
    ));
    let too_long = format!(r#"{{"message":"{}"}}"#, "x".repeat(4097));
    // The old service dropped the connection without a close frame on a non-object value.
    for frame in [
        "[1, 2]",
        "\"just a string\"",
        "42",
        r#"{"text":"no message"}"#,
        r#"{"message":""}"#,
        too_long.as_str(),
    ] {
        within("send", alice.raw().send_text(frame)).await.unwrap();
        match next(&mut alice).await {
            ChatOutbound::Error(error) => {
                assert_eq!(error.code.to_string(), "invalid_message", "{frame}")
            }
            other => panic!("{frame}: expected an error message, got {other:?}"),
        }
    }
    within("send", alice.send_chat_message(&chat_message("still here")))
        .await
        .unwrap();
    assert_eq!(next_broadcast(&mut alice).await.message, "still here");
    within("send", alice.raw().send_text("{broken"))
        .await
        .unwrap();
    match within("close", alice.recv()).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1003),
        other => panic!("expected close 1003, got {other:?}"),
    }
}

#[tokio::test]
async fn a_member_over_the_rate_limit_is_told_then_closed_with_1008_if_it_goes_on() {
    // A slow rate, so that no token comes back while the test floods.
    let server = TestServer::start_with_options(crate::server::Options {
        chat_limit: Some(wfs::rate::ChatLimit {
            per_second: 0.1,
            burst: 5,
            abuse_after: 20,
        }),
        ..Default::default()
    })
    .await;
    let cairo = server.city("Cairo").await.uuid;
    let mut alice = join(&server, &server.alice, cairo).await;
    let mut bob = join(&server, &server.bob, cairo).await;
    for client in [&mut alice, &mut bob] {
        assert!(matches!(next(client).await, ChatOutbound::ChatWelcome(_)));
    }
    // The burst passes; the next message is dropped and the sender told, once.
    for n in 0..7 {
        within(
            "send",
            alice.send_chat_message(&chat_message(&format!("m{n}"))),
        )
        .await
        .unwrap();
    }
    for n in 0..5 {
        assert_eq!(next_broadcast(&mut alice).await.message, format!("m{n}"));
    }
    match next(&mut alice).await {
        ChatOutbound::Error(error) => assert_eq!(error.code.to_string(), "rate_limited"),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    // Bad frames count too, and are not answered while limited.
    within("send", alice.raw().send_text("[1]")).await.unwrap();
    // The others saw only what passed.
    for n in 0..5 {
        assert_eq!(next_broadcast(&mut bob).await.message, format!("m{n}"));
    }
    // Going on while limited: closed with 1008 and the reason, with nothing else in between.
    for n in 0..20 {
        if alice
            .send_chat_message(&chat_message(&format!("flood {n}")))
            .await
            .is_err()
        {
            break;
        }
    }
    match within("close", alice.recv()).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(
                (code, reason.as_str()),
                (1008, "Too many messages: slow down.")
            )
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
    // Bob, within his own limit, is unaffected.
    within(
        "send",
        bob.send_chat_message(&chat_message("bob still here")),
    )
    .await
    .unwrap();
    assert_eq!(next_broadcast(&mut bob).await.message, "bob still here");
}

#[tokio::test]
async fn the_default_rate_limit_lets_a_person_type() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut alice = join(&server, &server.alice, cairo).await;
    assert!(matches!(
        next(&mut alice).await,
        ChatOutbound::ChatWelcome(_)
    ));
    // Twenty at once (a paste, a burst) all pass.
    for n in 0..20 {
        within(
            "send",
            alice.send_chat_message(&chat_message(&format!("m{n}"))),
        )
        .await
        .unwrap();
    }
    for n in 0..20 {
        assert_eq!(next_broadcast(&mut alice).await.message, format!("m{n}"));
    }
}
