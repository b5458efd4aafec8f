//! The pages over plain HTTP: WIRE.md's titles, the contract download, embedded scripts and
//! style, no built-in credentials, city names escaped. (What the pages do is tested in a real
//! browser: `browser.rs`.)

use crate::server::{TestServer, http};

#[tokio::test]
async fn every_page_has_its_wire_title_and_no_credentials() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    for (path, title) in [
        ("/".to_owned(), "Weather Forecast Service API"),
        ("/websocket/echo".to_owned(), "Echo WebSocket Application"),
        (
            format!("/websocket/alert?city_uuid={cairo}"),
            "Weather Forecast Service Alert",
        ),
        (
            "/websocket/chat".to_owned(),
            "Weather Forecast Service Chat",
        ),
        // The old service's alert page over Server-Sent Events.
        (
            format!("/sse/alert?city_uuid={cairo}"),
            "Weather Forecast Service Alert",
        ),
    ] {
        let (status, content_type, body) = http(&server, "GET", &path, &[], None).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert!(
            body.contains(&format!("<title>{title}</title>")),
            "{path} lacks its title"
        );
        assert!(
            !body.to_lowercase().contains("admin"),
            "{path} names a user"
        );
    }
    for script in ["wfs.js", "echo.js", "alert.js", "chat.js", "sse-alert.js"] {
        let (status, content_type, body) =
            http(&server, "GET", &format!("/static/{script}"), &[], None).await;
        assert_eq!(status, 200, "{script}");
        assert!(
            content_type.starts_with("text/javascript"),
            "{content_type}"
        );
        assert!(
            !body.to_lowercase().contains("admin"),
            "{script} names a user"
        );
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{script} loads from elsewhere"
        );
    }
    let (status, content_type, _) = http(&server, "GET", "/static/style.css", &[], None).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/css; charset=utf-8")
    );
}

#[tokio::test]
async fn the_index_links_each_city_and_the_documents() {
    let server = TestServer::start().await;
    let (_, _, body) = http(&server, "GET", "/", &[], None).await;
    for city in [
        "Cairo",
        "Istanbul",
        "Mexico City",
        "Sao Paulo",
        "Sydney",
        "Tokyo",
    ] {
        let uuid = server.city(city).await.uuid;
        assert!(
            body.contains(&format!(
                "<a href=\"/websocket/alert?city_uuid={uuid}\">{city}</a>"
            )),
            "no alert link for {city}"
        );
        assert!(
            body.contains(&format!("<a href=\"/sse/alert?city_uuid={uuid}\">")),
            "no SSE alert link for {city}"
        );
    }
    for link in ["/docs", "/api/docs/", "/asyncapi.yaml"] {
        assert!(
            body.contains(&format!("href=\"{link}\"")),
            "no link to {link}"
        );
    }
}

#[tokio::test]
async fn the_contract_downloads_as_v1_schema_yaml() {
    let server = TestServer::start().await;
    let (status, content_type, body) =
        http(&server, "GET", "/websocket/docs/schema/manual", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/yaml");
    assert_eq!(body, wfs::CONTRACT_YAML);
    let head = raw_head(&server, "/websocket/docs/schema/manual").await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-disposition: attachment; filename=\"v1-schema.yaml\""),
        "{head}"
    );
}

/// The response head as text (the shared helper only returns the content type).
async fn raw_head(server: &TestServer, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.address
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    crate::server::within("read", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}
