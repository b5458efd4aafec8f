//! Origins: CORS on the SSE stream and the REST API for the allowed origins only (preflights
//! included), and `Origin` headers written without a scheme, as the old service's tests send
//! them (`Origin: localhost:8000`). The same in a real browser: `browser.rs`.

use wfs::contract::echo::EchoClient;
use wfs::http::AccessPolicy;
use wfs_runtime::client::{ClientError, request};

use crate::server::{Options, TestServer, http, within};

/// A page on another site that the operator allows.
const PAGES: &str = "http://pages.example:8000";

async fn server_allowing(origins: &[&str]) -> TestServer {
    let hosts = vec!["127.0.0.1".to_owned()];
    let origins = origins.iter().map(|o| (*o).to_owned()).collect();
    TestServer::start_with_options(Options {
        policy: Some(AccessPolicy::new(hosts, origins)),
        ..Options::default()
    })
    .await
}

/// The head of the answer to `method path` with `headers`, lower-cased; the body is not read
/// (an SSE stream never ends).
async fn head(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = within("connect", tokio::net::TcpStream::connect(server.address))
        .await
        .expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.address
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    within("write", stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut received = Vec::new();
    within("the head", async {
        let mut buffer = [0u8; 1024];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "closed before the end of the head");
            received.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        line.split_once(':')
            .filter(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim())
    })
}

#[tokio::test]
async fn cors_allows_the_configured_origins_on_the_sse_stream_and_the_rest_api() {
    let server = server_allowing(&[PAGES]).await;
    let cairo = server.city("Cairo").await.uuid;
    let token = server.token(&server.alice);
    let stream = format!("/sse/v1/alert?city_uuid={cairo}&access_token={token}");

    // The old alert page's EventSource, from the pages' origin.
    let answer = head(&server, "GET", &stream, &[("Origin", PAGES)]).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(PAGES));
    assert!(header(&answer, "content-type").is_some_and(|t| t.starts_with("text/event-stream")));

    // A REST call from that page, and its preflight.
    let answer = head(&server, "GET", "/api/v1/cities", &[("Origin", PAGES)]).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(PAGES));
    assert_eq!(header(&answer, "vary"), Some("origin"));
    let preflight = [
        ("Origin", PAGES),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ),
    ];
    for path in [
        format!("/api/v1/cities/{cairo}/alerts"),
        "/api/jwt/obtain".to_owned(),
        stream.clone(),
    ] {
        let answer = head(&server, "OPTIONS", &path, &preflight).await;
        assert_eq!(status(&answer), 200, "{path}: {answer}");
        assert_eq!(header(&answer, "access-control-allow-origin"), Some(PAGES));
        let methods = header(&answer, "access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains("post"), "{path}: {methods}");
        let allowed = header(&answer, "access-control-allow-headers").unwrap_or_default();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    }

    // Without an Origin (not a browser) nothing changes, and no CORS header is added.
    let answer = head(&server, "GET", "/api/v1/cities", &[]).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_refuses_every_other_origin_in_wire_words() {
    let server = server_allowing(&[PAGES, "pages.example:8000"]).await;
    let cairo = server.city("Cairo").await.uuid;
    let token = server.token(&server.alice);
    let stream = format!("/sse/v1/alert?city_uuid={cairo}&access_token={token}");
    // Another site, another port, another scheme, and the bare entry's browser forms.
    for origin in [
        "http://evil.example",
        "http://pages.example:8001",
        "https://pages.example:8000",
        "http://pages.example:8000.evil.example",
        "null",
    ] {
        for (method, path, extra) in [
            ("GET", stream.as_str(), None),
            ("GET", "/api/v1/cities", None),
            ("OPTIONS", "/api/jwt/obtain", Some("POST")),
        ] {
            let mut headers = vec![("Origin", origin)];
            if let Some(wanted) = extra {
                headers.push(("Access-Control-Request-Method", wanted));
            }
            let answer = head(&server, method, path, &headers).await;
            assert_eq!(status(&answer), 403, "{origin} {method} {path}: {answer}");
            assert_eq!(header(&answer, "access-control-allow-origin"), None);
            let (_, _, body) = http(&server, method, path, &headers, None).await;
            assert_eq!(body, "Origin not allowed", "{origin} {method} {path}");
        }
    }
}

async fn echo_with_origin(server: &TestServer, origin: &str) -> Result<EchoClient, ClientError> {
    let request = request(
        &server.base_url,
        "/ws/v1/echo",
        &[],
        &[("origin", origin.to_owned())],
    )?;
    within("echo handshake", EchoClient::connect_with(request)).await
}

fn refused(result: Result<EchoClient, ClientError>, origin: &str) {
    match result {
        Err(ClientError::Rejected { status, body }) => {
            assert_eq!(
                (status, body.as_str()),
                (403, "Origin not allowed"),
                "{origin}"
            )
        }
        other => panic!("{origin}: expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn an_origin_without_a_scheme_is_allowed_as_the_old_tests_send_it() {
    // The defaults: the server's own address, with or without its scheme.
    let server = TestServer::start().await;
    let port = server.address.port();
    for origin in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        echo_with_origin(&server, &origin)
            .await
            .unwrap_or_else(|error| panic!("{origin} refused: {error}"));
    }
    for origin in [
        format!("localhost:{}", port.wrapping_add(1)),
        format!("evil-localhost:{port}"),
        format!("https://localhost:{port}"),
    ] {
        refused(echo_with_origin(&server, &origin).await, &origin);
    }
}

#[tokio::test]
async fn a_bare_entry_never_widens_a_schemed_one() {
    let server = server_allowing(&["https://wfs.example", "wfs.example", "*.example.org"]).await;
    for origin in ["https://wfs.example", "wfs.example", "app.example.org"] {
        echo_with_origin(&server, origin)
            .await
            .unwrap_or_else(|error| panic!("{origin} refused: {error}"));
    }
    // The bare entries allow no browser origin, whatever the scheme.
    for origin in [
        "http://wfs.example",
        "http://app.example.org",
        "https://app.example.org",
        "example.org",
    ] {
        refused(echo_with_origin(&server, origin).await, origin);
    }
}
