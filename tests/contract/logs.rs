//! The real `wfs serve` binary: it logs every request, never a token or a password, even at
//! trace level, and stops cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use wfs::contract::alert::{AlertClient, AlertParams};

use crate::server::within;

#[tokio::test]
async fn serve_logs_requests_but_never_secrets_and_stops_on_sigterm() {
    let data_dir = std::env::temp_dir().join(format!("wfs-logs-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = "very-secret-admin-password";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data_dir)
        .env("WFS_ADMIN_PASSWORD", password)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("wfs serve starts");
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    within("the server listens", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // A token obtained with the password, then used in the query string of a handshake.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let body = format!(r#"{{"username":"admin","password":"{password}"}}"#);
    let request = hyper::Request::post(format!("http://127.0.0.1:{port}/api/jwt/obtain"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = within("obtain", client.request(request))
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    use http_body_util::BodyExt;
    let pair: serde_json::Value = serde_json::from_slice(
        &within("body", response.into_body().collect())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    let access = pair["access"].as_str().expect("an access token").to_owned();
    let refresh = pair["refresh"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let cairo = wfs::store::city_uuid("Cairo");
    let params = AlertParams {
        city_uuid: cairo,
        access_token: access.clone(),
        since: None,
    };
    let alert = within(
        "alert",
        AlertClient::connect(&format!("ws://127.0.0.1:{port}"), &params),
    )
    .await
    .expect("accepted");
    drop(alert);

    let pid = child.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = within("the server stops", child.wait())
        .await
        .expect("exit status");
    let logs = within("logs", logs).await.unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);

    assert!(
        status.success(),
        "SIGTERM is a clean stop: {status}\n{logs}"
    );
    assert!(
        logs.contains("/ws/v1/alert") && logs.contains("/api/jwt/obtain"),
        "requests are logged:\n{logs}"
    );
    for secret in [access.as_str(), refresh.as_str(), password, "access_token="] {
        assert!(
            !logs.contains(secret),
            "a secret reached the log: {secret}\n{logs}"
        );
    }
}
