//! The handshake table of WIRE.md and the old service's handshake defects: Host and Origin
//! (exact, never by substring), tokens (verified signature, `alg: none` refused, expiry, unknown
//! users), and `city_uuid` (canonical UUIDs only, compared case-insensitively).

use std::time::Duration;

use base64::Engine;
use wfs::auth::{Jwt, TokenKind};
use wfs::contract::alert::{AlertClient, AlertOutbound};
use wfs::contract::chat::ChatClient;
use wfs::contract::echo::{EchoClient, EchoParams};
use wfs_runtime::client::{ClientError, request};

use crate::server::{TestServer, exchange, http, within};

async fn alert_with_query(
    server: &TestServer,
    query: &[(&str, String)],
    headers: &[(&str, String)],
) -> Result<AlertClient, ClientError> {
    let request = request(&server.base_url, "/ws/v1/alert", query, headers)?;
    within("alert handshake", AlertClient::connect_with(request)).await
}

async fn expect_http(result: Result<AlertClient, ClientError>, status: u16, body_contains: &str) {
    match result {
        Err(ClientError::Rejected { status: got, body }) => {
            assert_eq!(got, status, "body: {body}");
            assert!(
                body.contains(body_contains),
                "`{body}` should contain `{body_contains}`"
            );
        }
        other => panic!("expected HTTP {status}, got {other:?}"),
    }
}

async fn expect_close(result: Result<AlertClient, ClientError>, code: u16, reason: &str) {
    let mut client = result.expect("the handshake is accepted before the close");
    match within("close", client.recv()).await {
        Err(ClientError::Closed {
            code: got,
            reason: got_reason,
        }) => {
            assert_eq!((got, got_reason.as_str()), (code, reason));
        }
        other => panic!("expected close {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_origin_not_allowed_is_refused_with_403() {
    let server = TestServer::start().await;
    let token = server.token(&server.alice);
    let cairo = server.city("Cairo").await;
    for origin in [
        "http://evil.example".to_owned(),
        // The old service matched by substring: these passed.
        format!("http://evil-localhost:{}.example", server.address.port()),
        format!("http://localhost:{}.evil.example", server.address.port()),
    ] {
        let result = alert_with_query(
            &server,
            &[
                ("city_uuid", cairo.uuid.to_string()),
                ("access_token", token.clone()),
            ],
            &[("origin", origin)],
        )
        .await;
        expect_http(result, 403, "Origin not allowed").await;
    }
}

#[tokio::test]
async fn the_servers_own_origin_and_no_origin_are_allowed() {
    let server = TestServer::start().await;
    let own = format!("http://localhost:{}", server.address.port());
    let request = request(&server.base_url, "/ws/v1/echo", &[], &[("origin", own)]).unwrap();
    within("echo with origin", EchoClient::connect_with(request))
        .await
        .expect("own origin accepted");
    // No Origin header (a script, not a browser) is allowed, never a 500.
    within(
        "echo without origin",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .expect("no origin accepted");
}

#[tokio::test]
async fn a_host_not_allowed_is_refused_with_403() {
    let server = TestServer::start().await;
    let (status, content_type, body) = http(
        &server,
        "GET",
        "/asyncapi.yaml",
        &[("Host", "evil-localhost:8000.example")],
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (403, "Host not allowed"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let request = request(
        &server.base_url,
        "/ws/v1/echo",
        &[],
        &[("host", "evil.example".to_owned())],
    )
    .unwrap();
    match within("echo", EchoClient::connect_with(request)).await {
        Err(ClientError::Rejected { status, body }) => {
            assert_eq!((status, body.as_str()), (403, "Host not allowed"))
        }
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_bad_forged_expired_and_unsigned_tokens_are_refused_with_403() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid.to_string();
    let secret = Jwt::load_or_create_secret(&server.data_dir, None).unwrap();
    let forged = Jwt::new(
        b"not the server's secret".to_vec(),
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .unwrap()
    .issue(server.alice.id, TokenKind::Access);
    let short = Jwt::new(secret, Duration::ZERO, Duration::ZERO)
        .unwrap()
        .issue(server.alice.id, TokenKind::Access);
    let refresh = server.jwt.issue(server.alice.id, TokenKind::Refresh);
    let unknown_user = server.jwt.issue(999_999, TokenKind::Access);
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = format!(
        r#"{{"id":{},"exp":{},"iat":0,"token_type":"access","jti":"x"}}"#,
        server.alice.id,
        u32::MAX
    );
    let unsigned = format!(
        "{}.{}.",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(&claims)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // `short` expires
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("not-a-token".to_owned())),
        ("forged signature", Some(forged)),
        ("expired", Some(short)),
        ("refresh instead of access", Some(refresh)),
        ("unknown user", Some(unknown_user)),
        ("alg none", Some(unsigned)),
    ];
    for (what, token) in cases {
        let mut query = vec![("city_uuid", cairo.clone())];
        if let Some(token) = token {
            query.push(("access_token", token));
        }
        match alert_with_query(&server, &query, &[]).await {
            Err(ClientError::Rejected { status, body }) => {
                assert_eq!(status, 403, "{what}: {body}");
                assert!(!body.is_empty(), "{what}: a short reason is given");
            }
            other => panic!("{what}: expected 403, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn raw_and_base64_wrapped_tokens_are_both_accepted() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid.to_string();
    let token = server.token(&server.alice);
    let wrapped = base64::engine::general_purpose::STANDARD.encode(&token);
    for token in [token, wrapped] {
        let mut client = alert_with_query(
            &server,
            &[("city_uuid", cairo.clone()), ("access_token", token)],
            &[],
        )
        .await
        .expect("accepted");
        within(
            "publish",
            server
                .app
                .publish_alert(server.city("Cairo").await.uuid, "ping"),
        )
        .await
        .unwrap();
        let AlertOutbound::Alert(alert) = within("alert", client.recv()).await.expect("an alert")
        else {
            panic!("expected an alert");
        };
        assert_eq!(alert.message, "ping");
    }
}

#[tokio::test]
async fn a_missing_or_invalid_city_uuid_is_accepted_then_closed_with_1008() {
    let server = TestServer::start().await;
    let token = server.token(&server.alice);
    let reason = "Query parameter city_uuid is missing or is invalid.";
    expect_close(
        alert_with_query(&server, &[("access_token", token.clone())], &[]).await,
        1008,
        reason,
    )
    .await;
    // `1` was looked up as a row id by the old service; `abc` crashed its connection.
    for bad in [
        "1",
        "abc",
        "6ba7b8109dad11d180b400c04fd430c8",
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
    ] {
        let result = alert_with_query(
            &server,
            &[
                ("city_uuid", bad.to_owned()),
                ("access_token", token.clone()),
            ],
            &[],
        )
        .await;
        expect_close(result, 1008, reason).await;
    }
}

#[tokio::test]
async fn an_unknown_city_is_accepted_then_closed_with_1008_naming_it() {
    let server = TestServer::start().await;
    let token = server.token(&server.alice);
    let unknown = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    let result = alert_with_query(
        &server,
        &[
            ("city_uuid", unknown.to_owned()),
            ("access_token", token.clone()),
        ],
        &[],
    )
    .await;
    expect_close(result, 1008, &format!("City with {unknown} doesn't exist.")).await;
    let request = request(
        &server.base_url,
        "/ws/v1/chat",
        &[("city_uuid", unknown.to_owned()), ("access_token", token)],
        &[],
    )
    .unwrap();
    let mut chat = within("chat", ChatClient::connect_with(request))
        .await
        .expect("accepted");
    match within("close", chat.recv()).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(
                (code, reason),
                (1008, format!("City with {unknown} doesn't exist."))
            );
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upper_case_uuid_subscribes_to_the_same_city_as_the_publisher() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let query = [
        ("city_uuid", cairo.to_string().to_uppercase()),
        ("access_token", server.token(&server.bob)),
    ];
    let mut client = alert_with_query(&server, &query, &[])
        .await
        .expect("accepted");
    within("publish", server.app.publish_alert(cairo, "Sandstorm"))
        .await
        .unwrap();
    let AlertOutbound::Alert(alert) = within("alert", client.recv()).await.expect("alert") else {
        panic!("expected an alert");
    };
    assert_eq!(
        (alert.message.as_str(), alert.city_uuid),
        ("Sandstorm", cairo)
    );
}

/// Sends `head` (request line and headers, without the blank line) on a fresh connection and
/// reads the whole answer: (status, body).
async fn raw_request(server: &TestServer, head: &str) -> (u16, String) {
    let stream = within("connect", tokio::net::TcpStream::connect(server.address))
        .await
        .expect("connect");
    let response = exchange(stream, &format!("{head}\r\nConnection: close\r\n\r\n")).await;
    let whole = format!("{}\r\n\r\n{}", response.head, response.body);
    (response.status, whole)
}

#[tokio::test]
async fn malformed_handshakes_get_a_4xx_with_a_reason_never_a_500() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let token = server.token(&server.alice);
    let host = format!("Host: {}", server.address);
    let upgrade =
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    let channels = [
        "/ws/v1/echo".to_owned(),
        format!("/ws/v1/alert?city_uuid={cairo}&access_token={token}"),
        format!("/ws/v1/chat?city_uuid={cairo}&access_token={token}"),
        // Refused after the upgrade (1008) needs the upgrade too.
        format!("/ws/v1/alert?city_uuid=abc&access_token={token}"),
    ];
    let mut rows: Vec<(String, String, u16, &str)> = Vec::new();
    for channel in &channels {
        rows.push((
            format!("HTTP/1.0 upgrade on {channel}"),
            format!("GET {channel} HTTP/1.0\r\n{host}\r\n{upgrade}\r\nSec-WebSocket-Version: 13"),
            400,
            "need HTTP/1.1",
        ));
    }
    rows.extend([
        (
            "duplicate Host".to_owned(),
            format!("GET /health HTTP/1.1\r\n{host}\r\n{host}"),
            400,
            "Duplicate Host header",
        ),
        (
            "duplicate Host on a handshake".to_owned(),
            format!("GET /ws/v1/echo HTTP/1.1\r\n{host}\r\nHost: evil.example\r\n{upgrade}\r\nSec-WebSocket-Version: 13"),
            400,
            "Duplicate Host header",
        ),
        (
            "absolute-form target with another host".to_owned(),
            format!("GET http://evil.example/asyncapi.yaml HTTP/1.1\r\n{host}"),
            403,
            "Host not allowed",
        ),
        (
            "absolute-form handshake with another host".to_owned(),
            format!("GET http://evil.example/ws/v1/echo HTTP/1.1\r\n{host}\r\n{upgrade}\r\nSec-WebSocket-Version: 13"),
            403,
            "Host not allowed",
        ),
        (
            "absolute-form target with this host".to_owned(),
            format!("GET http://{}/health HTTP/1.1\r\nHost: evil.example", server.address),
            200,
            "",
        ),
        (
            "two Origin headers, both allowed".to_owned(),
            format!(
                "GET /ws/v1/echo HTTP/1.1\r\n{host}\r\n{upgrade}\r\nSec-WebSocket-Version: 13\r\nOrigin: {0}\r\nOrigin: {0}",
                server.http_url
            ),
            400,
            "Duplicate Origin header",
        ),
        (
            "WebSocket version 8".to_owned(),
            format!("GET /ws/v1/echo HTTP/1.1\r\n{host}\r\n{upgrade}\r\nSec-WebSocket-Version: 8"),
            426,
            "version 13",
        ),
        (
            "a plain GET on a channel".to_owned(),
            format!("GET /ws/v1/echo HTTP/1.1\r\n{host}"),
            400,
            "Not a WebSocket handshake",
        ),
    ]);
    for (what, head, status, reason) in rows {
        let (got, response) = raw_request(&server, &head).await;
        assert_eq!(got, status, "{what}: {response}");
        assert!(response.contains(reason), "{what}: {response}");
        if status == 426 {
            assert!(
                response
                    .to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{what}: {response}"
            );
        }
    }
}
