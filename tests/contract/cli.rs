//! The `wfs` command line, run as the real binary: `cities` and `alert` with WIRE.md's outputs
//! and errors, `alert` against the running server.

use std::process::Output;

use wfs::contract::alert::{AlertClient, AlertOutbound, AlertParams};

use crate::server::{TestServer, eventually, within};

async fn wfs(args: &[&str]) -> Output {
    run_wfs(args, None).await
}

/// `wfs` on the database of `server` (SQLite file or PostgreSQL).
async fn wfs_for(server: &TestServer, args: &[&str]) -> Output {
    run_wfs(args, Some(&server.database_url)).await
}

async fn run_wfs(args: &[&str], database_url: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"));
    command
        .args(args)
        .env_remove("WFS_SERVER")
        .env_remove("WFS_DATABASE_URL")
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("WFS_DATABASE_URL", url);
    }
    within("the wfs command", command.output())
        .await
        .expect("wfs runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn cities_lists_every_city_sorted_by_name() {
    let server = TestServer::start().await;
    let dir = server.data_dir.display().to_string();
    let output = wfs_for(&server, &["cities", "--data-dir", &dir]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let names: Vec<String> = text(&output.stdout)
        .lines()
        .map(|line| line.rsplit_once(' ').expect("`<name> <uuid>`").0.to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "Cairo",
            "Istanbul",
            "Mexico City",
            "Sao Paulo",
            "Sydney",
            "Tokyo"
        ]
    );
    let cairo = server.city("Cairo").await;
    assert!(text(&output.stdout).starts_with(&format!("Cairo {}\n", cairo.uuid)));

    let output = wfs_for(&server, &["cities", "--data-dir", &dir, "--city", "CITY"]).await;
    assert_eq!(
        text(&output.stdout),
        format!("Mexico City {}\n", server.city("Mexico").await.uuid)
    );
    let output = wfs_for(
        &server,
        &["cities", "--data-dir", &dir, "--city", "Atlantis"],
    )
    .await;
    assert_eq!(
        (output.status.code(), text(&output.stderr).as_str()),
        (Some(1), "City not found.\n")
    );
}

#[tokio::test]
async fn alert_reaches_the_subscribers_of_the_running_server() {
    let server = TestServer::start().await;
    let dir = server.data_dir.display().to_string();
    let cairo = server.city("Cairo").await.uuid;
    let params = AlertParams {
        city_uuid: cairo,
        access_token: server.token(&server.bob),
        since: None,
    };
    let mut client = within("subscribe", AlertClient::connect(&server.base_url, &params))
        .await
        .unwrap();
    eventually("subscribed", || server.app.hub.stats().subscribers == 1).await;

    let uuid = cairo.to_string();
    let output = wfs_for(
        &server,
        &[
            "alert",
            "--city-uuid",
            &uuid,
            "--message",
            "Dust storm",
            "--server",
            &server.http_url,
            "--data-dir",
            &dir,
        ],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!("Alert 'Dust storm' sent to '{uuid}' channel.\n")
    );
    match within("alert", client.recv()).await {
        Ok(AlertOutbound::Alert(alert)) => assert_eq!(alert.message, "Dust storm"),
        other => panic!("expected the alert, got {other:?}"),
    }

    // The default message.
    let output = wfs_for(
        &server,
        &[
            "alert",
            "--city-uuid",
            &uuid,
            "--server",
            &server.http_url,
            "--data-dir",
            &dir,
        ],
    )
    .await;
    assert_eq!(
        text(&output.stdout),
        format!("Alert 'Hail storm is coming!' sent to '{uuid}' channel.\n")
    );
}

#[tokio::test]
async fn alert_errors_are_clear_and_exit_1() {
    let server = TestServer::start().await;
    let dir = server.data_dir.display().to_string();
    let output = wfs_for(
        &server,
        &[
            "alert",
            "--city-uuid",
            "abc",
            "--server",
            &server.http_url,
            "--data-dir",
            &dir,
        ],
    )
    .await;
    assert_eq!(
        (output.status.code(), text(&output.stderr).as_str()),
        (Some(1), "City uuid 'abc' is not valid!\n")
    );

    let unknown = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    let output = wfs_for(
        &server,
        &[
            "alert",
            "--city-uuid",
            unknown,
            "--server",
            &server.http_url,
            "--data-dir",
            &dir,
        ],
    )
    .await;
    assert_eq!(
        (output.status.code(), text(&output.stderr)),
        (
            Some(1),
            format!("City with uuid '{unknown}' does not exist!\n")
        )
    );

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cairo = server.city("Cairo").await.uuid.to_string();
    let output = wfs_for(
        &server,
        &[
            "alert",
            "--city-uuid",
            &cairo,
            "--server",
            &format!("http://{free}"),
            "--data-dir",
            &dir,
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("cannot reach the wfs server"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn a_wrong_argument_is_a_usage_error_not_a_panic() {
    let output = wfs(&["alert"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--city-uuid"),
        "{}",
        text(&output.stderr)
    );
}
