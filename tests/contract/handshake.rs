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

use crate::server::{TestServer, http, within};

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
