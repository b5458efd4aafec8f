//! The `wfs` command line, run as the real binary: `cities` and `alert` with WIRE.md's outputs
//! and errors, `alert` against the running server (local or with credentials), and the errors
//! that must never mislead (wrong server, no scheme, TLS port, no data directory, `--listen`
//! without a host, an unwritable data directory).

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
        .env_remove("WFS_DATA_DIR")
        .env_remove("WFS_TOKEN")
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

/// `wfs args` in `dir`, with `stdin` as its standard input.
async fn wfs_in(args: &[&str], dir: &std::path::Path, stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
        .args(args)
        .current_dir(dir)
        .env_remove("WFS_SERVER")
        .env_remove("WFS_DATABASE_URL")
        .env_remove("WFS_DATA_DIR")
        .env_remove("WFS_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("wfs runs");
    let mut input = child.stdin.take().expect("stdin");
    within("write stdin", input.write_all(stdin.as_bytes()))
        .await
        .expect("stdin written");
    drop(input);
    within("the wfs command", child.wait_with_output())
        .await
        .expect("wfs runs")
}

/// An empty scratch folder, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wfs-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn client_commands_never_create_a_database_and_say_where_they_looked() {
    let scratch = Scratch::new("nodata");
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    let server = format!("http://{}", free_address());
    for args in [
        vec!["cities"],
        vec!["cities", "--city", "Cairo"],
        vec!["alert", "--city-uuid", &cairo, "--server", &server],
    ] {
        // From a folder that is not the server's: the default `./data`.
        let output = wfs_in(&args, &scratch.0, "").await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        let looked_in = scratch.0.join("data");
        assert!(
            stderr.contains(&looked_in.display().to_string()) && stderr.contains("--data-dir"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("admin user"),
            "{args:?} must not blame a missing admin: {stderr}"
        );
        // And an explicit one that does not exist.
        let missing = scratch.0.join("elsewhere");
        let mut with_dir = args.clone();
        let missing_text = missing.display().to_string();
        with_dir.extend(["--data-dir", &missing_text]);
        let output = wfs_in(&with_dir, &scratch.0, "").await;
        assert_eq!(output.status.code(), Some(1), "{with_dir:?}");
        assert!(text(&output.stderr).contains(&missing_text));
        let left: Vec<_> = std::fs::read_dir(&scratch.0).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

#[tokio::test]
async fn alert_publishes_to_a_remote_server_with_a_token_or_a_user() {
    let server = TestServer::start().await;
    let scratch = Scratch::new("remote");
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
    let admin_token = server.token(&server.admin);
    let ways: [(Vec<&str>, &str); 3] = [
        (vec!["--token", &admin_token], ""),
        (
            vec!["--user", "admin", "--password-stdin"],
            "admin-password-for-tests\n",
        ),
        // Standard input that is not a terminal is read without the flag.
        (vec!["--user", "admin"], "admin-password-for-tests\n"),
    ];
    for (n, (how, stdin)) in ways.into_iter().enumerate() {
        let message = format!("Remote alert {n}");
        let mut args = vec![
            "alert",
            "--city-uuid",
            &uuid,
            "--message",
            &message,
            "--server",
            &server.http_url,
        ];
        args.extend(how);
        // Away from the server's machine: no data directory at all.
        let output = wfs_in(&args, &scratch.0, stdin).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert_eq!(
            text(&output.stdout),
            format!("Alert '{message}' sent to '{uuid}' channel.\n")
        );
        match within("alert", client.recv()).await {
            Ok(AlertOutbound::Alert(alert)) => assert_eq!(alert.message, message),
            other => panic!("expected the alert, got {other:?}"),
        }
    }
    assert!(std::fs::read_dir(&scratch.0).unwrap().next().is_none());

    // A wrong password, a user who is not an administrator.
    let output = wfs_in(
        &[
            "alert",
            "--city-uuid",
            &uuid,
            "--server",
            &server.http_url,
            "--user",
            "admin",
        ],
        &scratch.0,
        "wrong\n",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("refused the user name or password"),
        "{}",
        text(&output.stderr)
    );
    let alice_token = server.token(&server.alice);
    let output = wfs_in(
        &[
            "alert",
            "--city-uuid",
            &uuid,
            "--server",
            &server.http_url,
            "--token",
            &alice_token,
        ],
        &scratch.0,
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("HTTP 403"),
        "{}",
        text(&output.stderr)
    );
}

/// A server that answers every request with `status` and `body` (`content_type`), as another
/// service on the port would.
async fn foreign_server(
    status: &'static str,
    content_type: &'static str,
    body: &'static str,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    stream.read(&mut buffer),
                )
                .await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    address
}

#[tokio::test]
async fn alert_tells_a_wrong_server_from_a_missing_city() {
    let scratch = Scratch::new("foreign");
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    for (address, expected) in [
        (
            foreign_server("404 Not Found", "text/html", "<h1>Not Found</h1>").await,
            "not a wfs server",
        ),
        (
            foreign_server(
                "404 Not Found",
                "application/json",
                r#"{"detail":"Not found."}"#,
            )
            .await,
            "is it a wfs server",
        ),
    ] {
        let server = format!("http://{address}");
        let output = wfs_in(
            &[
                "alert",
                "--city-uuid",
                &cairo,
                "--server",
                &server,
                "--token",
                "t",
            ],
            &scratch.0,
            "",
        )
        .await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("does not exist"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[tokio::test]
async fn alert_hints_at_a_missing_scheme_and_at_a_tls_port() {
    let scratch = Scratch::new("scheme");
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    let output = wfs_in(
        &[
            "alert",
            "--city-uuid",
            &cairo,
            "--server",
            "localhost:8000",
            "--token",
            "t",
        ],
        &scratch.0,
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("http://localhost:8000"),
        "{}",
        text(&output.stderr)
    );

    // `WFS_TLS=1` as documented; then plain http to it says the server speaks TLS.
    let served =
        crate::browser::Served::start_full(&[], "tls-password", &[("WFS_TLS", "1")], None).await;
    let server = format!("http://127.0.0.1:{}", served.port);
    let output = wfs_in(
        &[
            "alert",
            "--city-uuid",
            &cairo,
            "--server",
            &server,
            "--token",
            "t",
        ],
        &scratch.0,
        "",
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("speaks TLS")
            && stderr.contains(&format!("https://127.0.0.1:{}", served.port)),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_says_what_is_wrong_with_its_listen_address_and_data_directory() {
    let scratch = Scratch::new("serve");
    let output = wfs_in(&["serve", "--listen", "8030"], &scratch.0, "").await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("not an address (host:port)"), "{stderr}");
    assert!(!stderr.contains("in use"), "{stderr}");
    // Nothing was created on the way.
    assert!(std::fs::read_dir(&scratch.0).unwrap().next().is_none());

    // Even root cannot write under /sys: a data directory there is refused by name.
    for dir in ["/sys/wfs-test-data", "/sys/kernel"] {
        let address = free_address().to_string();
        let output = wfs_in(
            &["serve", "--listen", &address, "--data-dir", dir],
            &scratch.0,
            "",
        )
        .await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{dir}: {stderr}");
        assert!(
            stderr.contains("permission denied") && stderr.contains(dir),
            "{dir}: {stderr}"
        );
    }
}

#[tokio::test]
async fn cities_and_cert_list_only_their_own_flags() {
    let scratch = Scratch::new("help");
    for (command, own, foreign) in [
        (
            "cities",
            &["--city", "--data-dir", "--database-url"][..],
            &["--jwt-secret", "--listen", "--server", "--tls"][..],
        ),
        (
            "cert",
            &["--data-dir"][..],
            &["--jwt-secret", "--database-url", "--listen", "--city"][..],
        ),
    ] {
        let output = wfs_in(&[command, "--help"], &scratch.0, "").await;
        assert!(output.status.success());
        let help = text(&output.stdout);
        for flag in own {
            assert!(
                help.contains(flag),
                "{command} --help lacks {flag}:\n{help}"
            );
        }
        for flag in foreign {
            assert!(
                !help.contains(flag),
                "{command} --help lists {flag}:\n{help}"
            );
        }
    }
    // `serve --help` says what an origin written without a scheme means.
    let output = wfs_in(&["serve", "--help"], &scratch.0, "").await;
    let help = text(&output.stdout);
    assert!(
        help.contains("An entry without a scheme") && help.contains("never allows a browser"),
        "{help}"
    );
}

#[tokio::test]
async fn connect_sends_lines_and_prints_frames_like_websocat() {
    let server = TestServer::start().await;
    let scratch = Scratch::new("connect");
    let echo = format!("{}/ws/v1/echo", server.base_url);
    let output = wfs_in(
        &["connect", &echo],
        &scratch.0,
        "{\"message\":\"hi\"}\n\"Hello WebSocket!\"\n",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "{\"message\":\"hi\"}\n\"Hello WebSocket!\"\n"
    );

    // A close from the server is shown with its code and reason.
    let token = server.token(&server.alice);
    let nowhere = uuid::Uuid::nil();
    let alert = format!(
        "{}/ws/v1/alert?city_uuid={nowhere}&access_token={token}",
        server.base_url
    );
    let output = wfs_in(&["connect", &alert], &scratch.0, "").await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!("closed: 1008 City with {nowhere} doesn't exist.\n")
    );
}
