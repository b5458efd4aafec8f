//! Echo (`/ws/v1/echo`): what a client sends comes back; what the contract forbids is refused.

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
    within("send", client.raw().send_text(sent))
        .await
        .expect("send");
    let text = within("reply", client.raw().recv_text())
        .await
        .expect("reply");
    assert_eq!(text, r#"{"message":"Zürich ☔","extra":[1,2]}"#);
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
async fn a_message_without_its_required_field_is_closed_with_1007() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    within(
        "send",
        client.raw().send_text(r#"{"text": "no message field"}"#),
    )
    .await
    .expect("send");
    match within("close", client.recv()).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 1007);
            assert!(
                reason.contains("message"),
                "reason names the problem: {reason}"
            );
        }
        other => panic!("expected close 1007, got {other:?}"),
    }
}
