//! Echo (`/ws/v1/echo`): any JSON value a client sends comes back unchanged; only a frame that
//! is not JSON is refused (1003).

use wfs::contract::echo::{EchoClient, EchoOutbound, EchoParams};
use wfs::contract::types::EchoMessage;
use wfs_runtime::client::ClientError;

use crate::server::{TestServer, within};

async fn connect(server: &TestServer) -> EchoClient {
    within(
        "echo connect",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .expect("echo handshake accepted")
}

/// Sends `sent` as a text frame of its own and gives the text of the reply.
async fn echoed(client: &mut EchoClient, sent: &str) -> String {
    within("send", client.raw().send_text(sent))
        .await
        .expect("send");
    within("reply", client.raw().recv_text())
        .await
        .unwrap_or_else(|error| panic!("no reply to {sent}: {error:?}"))
}

#[tokio::test]
async fn echo_returns_the_message() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    let hi: EchoMessage = serde_json::from_value(serde_json::json!({"message": "hi"})).unwrap();
    within("send", client.send_echo(&hi)).await.expect("send");
    let EchoOutbound::Echo(reply) = within("reply", client.recv())
        .await
        .expect("a reply matching the contract");
    assert_eq!(reply, hi);
}

#[tokio::test]
async fn echo_keeps_extra_fields_and_non_ascii_compact() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    let sent = r#"{"message": "Zürich ☔", "extra": [1, 2]}"#;
    assert_eq!(
        echoed(&mut client, sent).await,
        r#"{"message":"Zürich ☔","extra":[1,2]}"#
    );
}

/// Echo keeps the frame's text (no tree is built), so the server's JSON form is written by the
/// text's rewriting: escapes and numbers as serde_json (and the old service's `json.dumps`)
/// write them; a name given twice comes back twice, as sent.
#[tokio::test]
async fn echo_writes_escapes_and_numbers_in_the_servers_form() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    for (sent, expected) in [
        (r#"{"a":"\u00fc\/","n":1e2}"#, r#"{"a":"ü/","n":100.0}"#),
        ("[ 1 ,\n 2.50 ]", "[1,2.5]"),
        (r#"{"a":1,"a":2}"#, r#"{"a":1,"a":2}"#),
        (r#""tab\there""#, r#""tab\there""#),
    ] {
        assert_eq!(echoed(&mut client, sent).await, expected, "sent {sent}");
    }
}

#[tokio::test]
async fn a_frame_that_is_not_json_is_closed_with_1003() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    within("send", client.raw().send_text("not json"))
        .await
        .expect("send");
    match within("close", client.recv()).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1003),
        other => panic!("expected close 1003, got {other:?}"),
    }
}

#[tokio::test]
async fn any_json_value_comes_back_unchanged() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    // WIRE.md: an object, a string, an array, a number, `null`: whatever was sent.
    for sent in [
        r#""Hello WebSocket!""#,
        r#"["a",1,null,{"b":true}]"#,
        "42",
        "-1.5",
        "null",
        "true",
        "{}",
        r#"{"foo":1}"#,
        r#"{"text":"no message field","z":1,"a":2}"#,
        r#""Zürich ☔""#,
    ] {
        assert_eq!(echoed(&mut client, sent).await, sent);
    }
    // Through the typed client too: the contract says any JSON value.
    let value: EchoMessage = serde_json::from_value(serde_json::json!(["typed", 2])).unwrap();
    within("send", client.send_echo(&value))
        .await
        .expect("send");
    let EchoOutbound::Echo(reply) = within("reply", client.recv())
        .await
        .expect("a reply matching the contract");
    assert_eq!(reply, value);
}

/// The old service's own echo test, as it was written: it sends a JSON-encoded string
/// (`json.dumps("...")`) and expects the same string back.
#[tokio::test]
async fn the_old_services_echo_test_passes() {
    let server = TestServer::start().await;
    let (mut socket, _) = within(
        "connect",
        wfs_runtime::tokio_tungstenite::connect_async(format!("{}/ws/v1/echo", server.base_url)),
    )
    .await
    .expect("echo handshake");
    use futures_util::{SinkExt, StreamExt};
    let sent = serde_json::to_string("Hello from the old test!").unwrap();
    within(
        "send",
        socket.send(wfs_runtime::tokio_tungstenite::tungstenite::Message::text(
            sent.clone(),
        )),
    )
    .await
    .expect("send");
    let reply = within("reply", socket.next())
        .await
        .expect("a reply")
        .expect("not an error");
    let text = reply.into_text().expect("a text frame");
    let value: String = serde_json::from_str(text.as_str()).expect("a JSON string");
    assert_eq!(value, "Hello from the old test!");
}
