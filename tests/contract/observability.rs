//! What an operator sees of the real `wfs` binary: `--version`, the version and the allowed
//! hosts and origins at start, the access log (duration, client address), one line per closed
//! WebSocket, no colour codes into a pipe, warnings for an unreachable Redis, `/metrics` on its
//! own port with `--metrics-listen`, and `--public-url`.

use wfs::contract::echo::{EchoClient, EchoOutbound};
use wfs::contract::types::EchoMessage;
use wfs_runtime::client::request;

use crate::process::{RunningWfs, free_port, get, get_from};
use crate::server::within;

#[tokio::test]
async fn version_flag_prints_the_version() {
    let output = within(
        "wfs --version",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .arg("--version")
            .output(),
    )
    .await
    .expect("wfs runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("wfs {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn logs_carry_version_duration_client_and_each_close_once_without_colour() {
    let server = RunningWfs::start(&[]).await;
    let version = env!("CARGO_PKG_VERSION");
    let start = server.wait_for("serving", 1).await;
    assert!(start.contains(&format!("wfs {version} serving")), "{start}");
    assert!(
        start.contains("allowed hosts: localhost, 127.0.0.1, [::1]"),
        "{start}"
    );
    assert!(
        !start.contains("reachable from other machines"),
        "no warning on loopback:\n{start}"
    );

    let (status, body) = get(server.port, "/health", "127.0.0.1", &[]).await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["version"], version);

    let mut echo = within(
        "echo",
        EchoClient::connect_with(request(&server.ws_url(), "/ws/v1/echo", &[], &[]).unwrap()),
    )
    .await
    .expect("accepted");
    let hi: EchoMessage = serde_json::from_value(serde_json::json!({"message": "hi"})).unwrap();
    for _ in 0..2 {
        within("send", echo.send_echo(&hi)).await.unwrap();
        let EchoOutbound::Echo(_) = within("reply", echo.recv()).await.unwrap();
    }
    within("close", echo.close()).await.unwrap();

    let logs = server.wait_for("websocket closed", 1).await;
    let (status, logs_after) = server.stop().await;
    assert!(status.success(), "{logs_after}");
    assert!(
        !logs_after.contains('\u{1b}'),
        "colour codes into a pipe:\n{logs_after}"
    );

    let health_line = logs
        .lines()
        .find(|line| line.contains("request") && line.contains("path=/health"))
        .unwrap_or_else(|| panic!("the health check is logged:\n{logs}"));
    assert!(health_line.contains("status=200"), "{health_line}");
    assert!(health_line.contains("duration_ms="), "{health_line}");
    assert!(health_line.contains("client=127.0.0.1:"), "{health_line}");

    let closes: Vec<&str> = logs_after
        .lines()
        .filter(|line| line.contains("websocket closed"))
        .collect();
    assert_eq!(closes.len(), 1, "each close is logged once:\n{logs_after}");
    for field in [
        "channel=echo",
        "code=1000",
        "duration_ms=",
        "frames_in=2",
        "frames_out=2",
        "client=127.0.0.1:",
    ] {
        assert!(closes[0].contains(field), "`{field}` in {}", closes[0]);
    }
}

#[tokio::test]
async fn the_access_log_names_the_client_a_trusted_proxy_reports_and_no_other() {
    let server = RunningWfs::start(&["--trusted-proxies", "127.0.0.2"]).await;
    server.wait_for("serving", 1).await;
    // From 127.0.0.1, not a trusted proxy: its X-Forwarded-For is the client's own claim.
    let forged = [("x-forwarded-for", "198.51.100.9")];
    let (status, _) = get(server.port, "/api/v1/cities", "127.0.0.1", &forged).await;
    assert_eq!(status, 200);
    let logs = server.wait_for("path=/api/v1/cities", 1).await;
    let line = logs
        .lines()
        .find(|line| line.contains("path=/api/v1/cities"))
        .unwrap();
    assert!(line.contains("client=127.0.0.1:"), "the peer: {line}");
    assert!(!line.contains("198.51.100.9"), "a forged address: {line}");

    // From 127.0.0.2, the trusted proxy: the address it names is the client.
    let (status, _) = get_from(
        [127, 0, 0, 2],
        server.port,
        "/asyncapi.yaml",
        "127.0.0.1",
        &[("x-forwarded-for", "203.0.113.7")],
    )
    .await;
    assert_eq!(status, 200);
    let logs = server.wait_for("path=/asyncapi.yaml", 1).await;
    let line = logs
        .lines()
        .find(|line| line.contains("path=/asyncapi.yaml"))
        .unwrap();
    assert!(
        line.contains("client=203.0.113.7"),
        "the proxy's client: {line}"
    );
    let (status, logs) = server.stop().await;
    assert!(status.success(), "{logs}");
}

#[tokio::test]
async fn an_unreachable_redis_is_warned_about_at_once_and_at_every_retry() {
    // Nothing listens on a port just released.
    let redis_url = format!("redis://127.0.0.1:{}", free_port());
    let server = RunningWfs::start(&["--redis-url", &redis_url]).await;
    // The backoff starts at 100 ms: three tries take well under the wait.
    let logs = server.wait_for("Redis unreachable", 3).await;
    let first = logs
        .lines()
        .find(|line| line.contains("Redis unreachable"))
        .unwrap();
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains(&redis_url), "names the URL: {first}");
    assert!(first.contains("attempt=1"), "{first}");
    assert!(first.contains("retry_in_ms=100"), "{first}");
    assert!(logs.contains("attempt=2"), "{logs}");
    let (status, output) = server.stop().await;
    assert!(status.success(), "{status}\n{output}");
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_its_own_port_only() {
    let metrics_port = free_port();
    let metrics_address = format!("127.0.0.1:{metrics_port}");
    let server = RunningWfs::start(&["--metrics-listen", &metrics_address]).await;
    let (status, body) = get(metrics_port, "/metrics", "10.0.0.9:9100", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            r#"wfs_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    let (status, _) = get(server.port, "/metrics", "127.0.0.1", &[]).await;
    assert_eq!(status, 404, "not on the main port when it has its own");
    let (status, _) = get(metrics_port, "/health", "127.0.0.1", &[]).await;
    assert_eq!(status, 404, "the metrics port serves metrics only");
    let logs = server.output();
    assert!(
        logs.contains(&format!("metrics on http://{metrics_address}/metrics")),
        "{logs}"
    );
    let (status, output) = server.stop().await;
    assert!(status.success(), "{status}\n{output}");
}

#[tokio::test]
async fn metrics_are_on_the_main_port_by_default() {
    let server = RunningWfs::start(&[]).await;
    let (status, body) = get(server.port, "/metrics", "127.0.0.1", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("wfs_database_up 1"), "{body}");
    let (status, output) = server.stop().await;
    assert!(status.success(), "{status}\n{output}");
}

#[tokio::test]
async fn public_url_allows_its_host_and_origin_and_says_so_at_start() {
    let server = RunningWfs::start(&["--public-url", "https://wfs.example.com"]).await;
    let logs = server.wait_for("allowed hosts", 1).await;
    let line = logs
        .lines()
        .find(|line| line.contains("allowed hosts"))
        .unwrap();
    assert!(line.contains("wfs.example.com"), "{line}");
    assert!(line.contains("https://wfs.example.com"), "{line}");

    // What a proxy for https://wfs.example.com forwards: that Host, that Origin.
    let (status, _) = get(server.port, "/", "wfs.example.com", &[]).await;
    assert_eq!(status, 200);
    let handshake = request(
        &server.ws_url(),
        "/ws/v1/echo",
        &[],
        &[
            ("host", "wfs.example.com".to_owned()),
            ("origin", "https://wfs.example.com".to_owned()),
        ],
    )
    .unwrap();
    within(
        "echo from the public origin",
        EchoClient::connect_with(handshake),
    )
    .await
    .expect("the public origin is allowed");
    // Still nothing else.
    let (status, body) = get(server.port, "/", "other.example.com", &[]).await;
    assert_eq!((status, body.as_str()), (403, "Host not allowed"));
    let handshake = request(
        &server.ws_url(),
        "/ws/v1/echo",
        &[],
        &[("origin", "http://wfs.example.com".to_owned())],
    )
    .unwrap();
    assert!(
        within(
            "echo from the http origin",
            EchoClient::connect_with(handshake)
        )
        .await
        .is_err(),
        "http:// is not the public origin"
    );
    let (status, output) = server.stop().await;
    assert!(status.success(), "{status}\n{output}");
}

#[tokio::test]
async fn a_public_url_that_cannot_be_used_is_refused_before_anything_starts() {
    let output = within(
        "wfs serve --public-url",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args(["serve", "--public-url", "wfs.example.com/app"])
            .args(["--data-dir", "/nonexistent/wfs-never-created"])
            .output(),
    )
    .await
    .expect("wfs runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--public-url"), "{stderr}");
    assert!(stderr.contains("http:// or https://"), "{stderr}");
    assert!(!std::path::Path::new("/nonexistent/wfs-never-created").exists());
}
