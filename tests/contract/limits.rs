//! Limits and shutdown: messages over the size limit (1009), the idle timeout (1001), the
//! connection limit (503), and a graceful shutdown that closes every connection with 1001.

use wfs::contract::alert::{AlertClient, AlertParams};
use wfs::contract::echo::{EchoClient, EchoOutbound, EchoParams};
use wfs::contract::types::EchoMessage;
use wfs_runtime::client::ClientError;

use crate::server::{TestServer, eventually, within};

#[tokio::test]
async fn a_message_over_the_size_limit_is_closed_with_1009() {
    let mut config = wfs_runtime::Config::default();
    config.max_message_size = 1024;
    config.max_frame_size = 1024;
    let server = TestServer::start_with(config).await;
    let mut client = within(
        "echo",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    let big = format!(r#"{{"message":"{}"}}"#, "x".repeat(2000));
    within("send", client.raw().send_text(big)).await.unwrap();
    match within("close", client.recv()).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

/// A server pinging every `ping_ms` and closing after `idle_ms` of silence, and an echo client
/// of it (the server lives as long as the returned handle).
async fn echo_with_keepalive(ping_ms: u64, idle_ms: u64) -> (TestServer, EchoClient) {
    let mut config = wfs_runtime::Config::default();
    config.ping_interval = std::time::Duration::from_millis(ping_ms);
    config.idle_timeout = std::time::Duration::from_millis(idle_ms);
    let server = TestServer::start_with(config).await;
    let client = within(
        "echo",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    (server, client)
}

#[tokio::test]
async fn a_connection_that_answers_no_ping_is_closed_after_the_idle_timeout() {
    let (_server, mut client) = echo_with_keepalive(100, 400).await;
    // Not reading means not answering pings (tungstenite answers them as it reads).
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    match within("close", client.recv()).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!((code, reason.as_str()), (1001, "Idle timeout."))
        }
        other => panic!("expected close 1001, got {other:?}"),
    }
}

#[tokio::test]
async fn a_connection_that_answers_pings_outlives_the_idle_timeout() {
    let (_server, mut client) = echo_with_keepalive(50, 200).await;
    // Reading answers the pings (tungstenite queues each pong and flushes it on the next read)
    // and sends nothing else: five idle timeouts of pings and pongs only.
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(1000), client.recv()).await;
    assert!(quiet.is_err(), "only pings came, then: {quiet:?}");
    let hello = EchoMessage(serde_json::json!({"message": "still here"}).into());
    within("send", client.send_echo(&hello)).await.unwrap();
    match within("reply", client.recv()).await {
        Ok(EchoOutbound::Echo(reply)) => assert_eq!(reply, hello),
        other => panic!("expected the echo, got {other:?}"),
    }
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_with_503() {
    let mut config = wfs_runtime::Config::default();
    config.max_connections = 2;
    let server = TestServer::start_with(config).await;
    let _first = within(
        "1",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    let _second = within(
        "2",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    match within(
        "3",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    {
        Err(ClientError::Rejected { status, .. }) => assert_eq!(status, 503),
        other => panic!("expected 503, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001_after_queued_alerts() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut echo = within(
        "echo",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    let params = AlertParams {
        city_uuid: cairo,
        access_token: server.token(&server.alice),
        since: None,
    };
    let mut alert = within("alert", AlertClient::connect(&server.base_url, &params))
        .await
        .unwrap();
    eventually("subscribed", || server.app.hub.stats().subscribers == 1).await;
    server.app.publish_alert(cairo, "last words").await.unwrap();
    server.shut_down().await;
    let text = within("queued alert", alert.raw().recv_text())
        .await
        .expect("the accepted alert is delivered");
    assert!(text.contains("last words"));
    for result in [
        within("alert close", alert.recv()).await.map(|_| ()),
        within("echo close", echo.recv()).await.map(|_| ()),
    ] {
        match result {
            Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1001),
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
}
