//! The contract and its docs, served by the running server.

use crate::server::{TestServer, http};

#[tokio::test]
async fn the_contract_is_served_as_written() {
    let server = TestServer::start().await;
    let (status, content_type, body) = http(&server, "GET", "/asyncapi.yaml", &[], None).await;
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
    // With or without the trailing slash.
    for path in ["/docs", "/docs/"] {
        let (status, content_type, body) = http(&server, "GET", path, &[], None).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert!(body.contains("Weather Forecast Service WebSocket API"));
        assert!(body.contains("/ws/v1/chat"));
    }
}
