//! The contract and its docs, served by the running server.

use crate::server::{TestServer, within};

async fn get(server: &TestServer, path: &str) -> (u16, String, String) {
    let address = server.base_url.trim_start_matches("ws://");
    let mut stream = within("connect", tokio::net::TcpStream::connect(address))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("write", stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut response = Vec::new();
    within("read", stream.read_to_end(&mut response))
        .await
        .expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn the_contract_is_served_as_written() {
    let server = TestServer::start().await;
    let (status, content_type, body) = get(&server, "/asyncapi.yaml").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/yaml"),
        "{content_type}"
    );
    assert_eq!(body, wfs::CONTRACT_YAML);
}

#[tokio::test]
async fn the_html_docs_are_served() {
    let server = TestServer::start().await;
    let (status, content_type, body) = get(&server, "/docs").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("Weather Forecast Service WebSocket API"));
    assert!(body.contains("/ws/v1/chat"));
}
