//! `/metrics`: the Prometheus text exposition of a real server, read after driving it: open
//! connections, frames and closes per channel, refused handshakes by reason, fan-out
//! deliveries, publish latency, replayed alerts, slow-consumer closes, database and Redis state,
//! build info. And the Host decision: `/health` and `/metrics` answer any Host, nothing else
//! does.

use wfs::contract::alert::{AlertClient, AlertParams};
use wfs::contract::echo::{EchoClient, EchoOutbound, EchoParams};
use wfs::contract::types::EchoMessage;
use wfs_runtime::client::{ClientError, request};

use crate::server::{TestServer, eventually, http, next_alert, within};

/// The scrape of `server`: its status, content type and text.
async fn scrape(server: &TestServer) -> String {
    let (status, content_type, body) = http(server, "GET", "/metrics", &[], None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    body
}

/// The value of the sample `series` (`name{labels}` exactly as exposed), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Scrapes until `series` has `value` (metrics of a closing connection land a moment later).
async fn until_sample(server: &TestServer, series: &str, value: f64) -> String {
    within(&format!("{series} = {value}"), async {
        loop {
            let text = scrape(server).await;
            if sample(&text, series) == Some(value) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test]
async fn connections_frames_and_closes_are_counted_per_channel() {
    let server = TestServer::start().await;
    let mut echo = within(
        "echo",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    let open = r#"wfs_connections{channel="echo",transport="websocket"}"#;
    until_sample(&server, open, 1.0).await;
    let hi: EchoMessage = serde_json::from_value(serde_json::json!({"message": "hi"})).unwrap();
    for _ in 0..3 {
        within("send", echo.send_echo(&hi)).await.unwrap();
        let EchoOutbound::Echo(_) = within("reply", echo.recv()).await.unwrap();
    }
    within("close", echo.close()).await.unwrap();

    let text = until_sample(&server, open, 0.0).await;
    assert_eq!(
        sample(&text, r#"wfs_frames_received_total{channel="echo"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"wfs_frames_sent_total{channel="echo"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"wfs_websocket_closes_total{channel="echo",code="1000"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn refused_handshakes_are_counted_by_reason() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let token = server.token(&server.alice);
    let alert = |query: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>| {
        let request = request(&server.base_url, "/ws/v1/alert", &query, &headers).unwrap();
        async move { within("alert handshake", AlertClient::connect_with(request)).await }
    };
    // A bad token (403), a foreign Origin (403), an unknown city (accepted, then 1008).
    let bad_token = alert(
        vec![
            ("city_uuid", cairo.to_string()),
            ("access_token", "x".into()),
        ],
        vec![],
    )
    .await;
    assert!(matches!(
        bad_token,
        Err(ClientError::Rejected { status: 403, .. })
    ));
    let foreign = alert(
        vec![
            ("city_uuid", cairo.to_string()),
            ("access_token", token.clone()),
        ],
        vec![("origin", "http://evil.example".into())],
    )
    .await;
    assert!(matches!(
        foreign,
        Err(ClientError::Rejected { status: 403, .. })
    ));
    let mut unknown = alert(
        vec![
            ("city_uuid", uuid::Uuid::new_v4().to_string()),
            ("access_token", token.clone()),
        ],
        vec![],
    )
    .await
    .expect("accepted, then closed");
    assert!(matches!(
        within("close", unknown.recv()).await,
        Err(ClientError::Closed { code: 1008, .. })
    ));

    let text = scrape(&server).await;
    for reason in ["token", "origin", "unknown_city"] {
        let series = format!(
            r#"wfs_handshakes_refused_total{{channel="alert",transport="websocket",reason="{reason}"}}"#
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{series}\n{text}");
    }
}

#[tokio::test]
async fn fan_out_publish_latency_and_replayed_alerts_are_counted() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut first = server.subscribe_alerts(cairo, None).await;
    let mut second = server.subscribe_alerts(cairo, None).await;
    eventually("subscribed", || server.app.hub.stats().subscribers == 2).await;
    for message in ["one", "two"] {
        server.app.publish_alert(cairo, message).await.unwrap();
    }
    for client in [&mut first, &mut second] {
        next_alert(client).await;
        next_alert(client).await;
    }
    // A client that reconnects from the start is sent both again from the store.
    let mut late = server.subscribe_alerts(cairo, Some(0)).await;
    next_alert(&mut late).await;
    next_alert(&mut late).await;

    let text = scrape(&server).await;
    assert_eq!(
        sample(&text, r#"wfs_fanout_deliveries_total{channel="alert"}"#),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"wfs_publish_duration_seconds_count{channel="alert"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"wfs_publish_duration_seconds_bucket{channel="alert",le="+Inf"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"wfs_alerts_replayed_total{transport="websocket"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"wfs_frames_sent_total{channel="alert"}"#),
        Some(6.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_slow_consumer_close_is_counted() {
    let mut config = wfs_runtime::Config::default();
    config.outbound_queue = 4;
    let server = TestServer::start_with(config).await;
    let cairo = server.city("Cairo").await.uuid;
    let params = AlertParams {
        city_uuid: cairo,
        access_token: server.token(&server.alice),
        since: None,
    };
    // Not read while alerts are published: its socket buffers fill, then its queue of 4, and
    // it is cut off; reading then gets what was in flight and the 1013 close.
    let mut slow = within("alert", AlertClient::connect(&server.base_url, &params))
        .await
        .unwrap();
    eventually("subscribed", || server.app.hub.stats().subscribers == 1).await;
    let filler = "x".repeat(32 * 1024);
    for index in 0..300 {
        server
            .app
            .publish_alert(cairo, &format!("{index} {filler}"))
            .await
            .unwrap();
    }
    let close = loop {
        if let Err(error) = within("the slow subscriber", slow.recv()).await {
            break error;
        }
    };
    assert!(
        matches!(close, ClientError::Closed { code: 1013, .. }),
        "{close:?}"
    );
    let text = until_sample(
        &server,
        r#"wfs_slow_consumer_closes_total{channel="alert"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        sample(
            &text,
            r#"wfs_websocket_closes_total{channel="alert",code="1013"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn build_info_database_and_redis_state_are_reported() {
    let server = TestServer::start().await;
    let text = scrape(&server).await;
    let build = format!(
        r#"wfs_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");
    assert_eq!(sample(&text, "wfs_database_up"), Some(1.0), "{text}");
    assert!(
        !text.contains("wfs_redis_connected"),
        "no Redis configured, none reported:\n{text}"
    );
    assert!(text.contains("# TYPE wfs_connections gauge"), "{text}");

    // An instance whose Redis does not answer (nothing listens on port 1).
    let redis = server
        .another_instance(Some("redis://127.0.0.1:1".to_owned()))
        .await;
    let text = scrape(&redis).await;
    assert_eq!(sample(&text, "wfs_redis_connected"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "wfs_database_up"), Some(1.0), "{text}");
}

#[tokio::test]
async fn health_and_metrics_answer_any_host_and_nothing_else_does() {
    let server = TestServer::start().await;
    // A load balancer or Prometheus probing by IP address sends that address as Host.
    let by_ip = [("Host", "10.1.2.3:8000")];
    for path in ["/health", "/metrics"] {
        let (status, _, body) = http(&server, "GET", path, &by_ip, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for path in ["/", "/api/v1/cities", "/asyncapi.yaml", "/ws/v1/echo"] {
        let (status, _, body) = http(&server, "GET", path, &by_ip, None).await;
        assert_eq!((status, body.as_str()), (403, "Host not allowed"), "{path}");
    }
    let (_, _, health) = http(&server, "GET", "/health", &[], None).await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    // The probe paths are exact: nothing under them escapes the check.
    let (status, _, _) = http(&server, "GET", "/health/../api/v1/cities", &by_ip, None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn sse_streams_and_their_replays_are_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Keep-alive comments every 100 ms: how the server notices a client has gone.
    let mut config = wfs_runtime::Config::default();
    config.ping_interval = std::time::Duration::from_millis(100);
    let server = TestServer::start_with(config).await;
    let cairo = server.city("Cairo").await.uuid;
    server
        .app
        .publish_alert(cairo, "stored first")
        .await
        .unwrap();
    // A browser reconnecting from the start: the stored alert is replayed.
    let mut stream = within("connect", tokio::net::TcpStream::connect(server.address))
        .await
        .unwrap();
    let request = format!(
        "GET /sse/v1/alert?city_uuid={cairo}&access_token={} HTTP/1.1\r\nHost: {}\r\nLast-Event-ID: 0\r\n\r\n",
        server.token(&server.alice),
        server.address
    );
    within("write", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut received = Vec::new();
    within("the replayed alert", async {
        while !String::from_utf8_lossy(&received).contains("stored first") {
            let mut chunk = [0; 1024];
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the stream ended early");
            received.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    let open = r#"wfs_connections{channel="alert",transport="sse"}"#;
    let text = until_sample(&server, open, 1.0).await;
    assert_eq!(
        sample(&text, r#"wfs_alerts_replayed_total{transport="sse"}"#),
        Some(1.0),
        "{text}"
    );
    drop(stream);
    until_sample(&server, open, 0.0).await;
}

#[tokio::test]
async fn refusals_made_by_the_runtime_are_counted_too() {
    let mut config = wfs_runtime::Config::default();
    config.max_connections = 1;
    let server = TestServer::start_with(config).await;
    // A plain GET of a channel address (a browser following a link) is no upgrade.
    let (status, _, _) = http(&server, "GET", "/ws/v1/echo", &[], None).await;
    assert!((400..500).contains(&status), "{status}");
    let _only = within(
        "echo",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    let over = within(
        "echo over the limit",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await;
    assert!(matches!(
        over,
        Err(ClientError::Rejected { status: 503, .. })
    ));

    let text = scrape(&server).await;
    for reason in ["at_capacity", "not_websocket"] {
        let series = format!(
            r#"wfs_handshakes_refused_total{{channel="echo",transport="websocket",reason="{reason}"}}"#
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{series}\n{text}");
    }
}
