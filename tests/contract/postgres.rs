//! A private PostgreSQL cluster for this test binary (Debian's `postgresql`, on a free loopback
//! port), used when `WFS_TEST_DATABASE=postgres`: `cargo xtask ci` runs the whole contract
//! suite once on SQLite and once on PostgreSQL.
//!
//! The server refuses to run as root, so it runs as the `postgres` user. A watchdog shell stops
//! it and removes its files when this test process ends: statics are never dropped.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::server::within;

/// Whether this run uses PostgreSQL (`WFS_TEST_DATABASE=postgres`).
pub fn enabled() -> bool {
    std::env::var("WFS_TEST_DATABASE").is_ok_and(|database| database == "postgres")
}

static CLUSTER: OnceCell<String> = OnceCell::const_new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database in the cluster (started on first use).
pub async fn fresh_database() -> String {
    let base = CLUSTER.get_or_init(start_cluster).await;
    let name = format!("wfs_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    sqlx::any::install_default_drivers();
    let mut admin = within(
        "connect to postgres",
        sqlx::AnyConnection::connect(&format!("{base}/postgres")),
    )
    .await
    .expect("the cluster accepts connections");
    use sqlx::{Connection, Executor};
    within(
        "create database",
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))),
    )
    .await
    .expect("database created");
    format!("{base}/{name}")
}

fn binaries() -> std::path::PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (`cargo xtask ci` installs Debian's postgresql)")
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server binary under /usr/lib/postgresql/*/bin")
}

/// Creates a cluster in `dir/data`, owned by the `postgres` user; answers the binaries' folder.
fn init_cluster(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = binaries();
    std::fs::create_dir_all(dir).expect("cluster folder");
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .expect("chown runs");
    assert!(
        status.success(),
        "cannot give {} to the postgres user",
        dir.display()
    );
    let initdb = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .output()
        .expect("initdb runs");
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    bin
}

async fn start_cluster() -> String {
    let dir = std::env::temp_dir().join(format!("wfs-pg-{}", std::process::id()));
    let data = dir.join("data");
    let bin = init_cluster(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        "{postgres} -D {data} -p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} \
         -c fsync=off -c synchronous_commit=off -c max_connections=300 & pg=$!; \
         while [ -d /proc/{test} ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        test = std::process::id(),
    );
    // Not waited for on purpose: the watchdog outlives this call and stops the server when the
    // test process ends.
    #[allow(clippy::zombie_processes)]
    Command::new("runuser")
        .args(["-u", "postgres", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the PostgreSQL server starts");
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    within("PostgreSQL accepts connections", async {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        while sqlx::AnyConnection::connect(&format!("{base}/postgres"))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    base
}

/// A PostgreSQL cluster of one test's own, which the test may stop and start.
pub struct Cluster {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "wfs-pg-own-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let bin = init_cluster(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster { bin, dir, port };
        cluster.up().await;
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl runs")
    }

    /// Starts the server and waits (bounded by pg_ctl's own wait) until it accepts connections.
    pub async fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let output = self.pg_ctl(&["-w", "-t", "30", "-l", "/dev/null", "-o", &options, "start"]);
        assert!(
            output.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the server at once (open connections are cut).
    pub fn down(&self) {
        let output = self.pg_ctl(&["-w", "-t", "30", "-m", "immediate", "stop"]);
        assert!(
            output.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_database_outage_gives_clear_errors_and_heals_without_restart() {
    use wfs::contract::alert::{AlertClient, AlertOutbound, AlertParams};
    use wfs::contract::echo::{EchoClient, EchoParams};
    use wfs_runtime::client::ClientError;

    use crate::server::{Options, TestServer, eventually, http};

    let cluster = Cluster::start().await;
    let server = TestServer::start_with_options(Options {
        database_url: Some(cluster.url()),
        ..Default::default()
    })
    .await;
    let cairo = server.city("Cairo").await.uuid;
    let params = AlertParams {
        city_uuid: cairo,
        access_token: server.token(&server.alice),
        since: None,
    };
    let mut subscriber = within("alert", AlertClient::connect(&server.base_url, &params))
        .await
        .unwrap();
    eventually("subscribed", || server.app.hub.stats().subscribers == 1).await;
    let admin = format!("Bearer {}", server.token(&server.admin));
    let path = format!("/api/v1/cities/{cairo}/alerts");
    let publish = async |message: &str| {
        let alert = format!(r#"{{"message":"{message}"}}"#);
        let (status, _, body) = http(
            &server,
            "POST",
            &path,
            &[("Authorization", &admin)],
            Some(&alert),
        )
        .await;
        (status, body)
    };
    // One alert before the outage, so the connection alerts are written on is open when the
    // database goes away.
    let (status, body) = publish("before").await;
    assert_eq!(status, 201, "{body}");
    match within("alert", subscriber.recv()).await {
        Ok(AlertOutbound::Alert(alert)) => assert_eq!(alert.message, "before"),
        other => panic!("expected the alert, got {other:?}"),
    }

    cluster.down();
    let (status, body) = publish("during").await;
    assert!(
        status == 503,
        "a publisher is told, never a false success: {status} {body}"
    );
    assert!(body.contains("detail"), "{body}");
    let (status, _, body) = http(&server, "GET", "/health", &[], None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"database\":\"unavailable\""), "{body}");
    match within("handshake", AlertClient::connect(&server.base_url, &params)).await {
        Err(ClientError::Rejected { status, .. }) => {
            assert_eq!(status, 503, "not the client's fault")
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let (_, _, metrics) = http(&server, "GET", "/metrics", &[], None).await;
    assert_eq!(
        crate::metrics::sample(&metrics, "wfs_database_up"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        crate::metrics::sample(
            &metrics,
            r#"wfs_handshakes_refused_total{channel="alert",transport="websocket",reason="unavailable"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    // What needs no database keeps working.
    let mut echo = within(
        "echo",
        EchoClient::connect(&server.base_url, &EchoParams::default()),
    )
    .await
    .unwrap();
    within("echo", echo.raw().send_text(r#"{"message":"still here"}"#))
        .await
        .unwrap();
    assert!(
        within("echo", echo.raw().recv_text())
            .await
            .unwrap()
            .contains("still here")
    );

    cluster.up().await;
    let (status, body) = publish("after").await;
    assert_eq!(status, 201, "recovered without a restart: {body}");
    match within("alert", subscriber.recv()).await {
        Ok(AlertOutbound::Alert(alert)) => {
            assert_eq!(alert.message, "after", "the refused alert was never sent")
        }
        other => panic!("expected the alert, got {other:?}"),
    }
    let (status, _, body) = http(&server, "GET", "/health", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, metrics) = http(&server, "GET", "/metrics", &[], None).await;
    assert_eq!(
        crate::metrics::sample(&metrics, "wfs_database_up"),
        Some(1.0),
        "{metrics}"
    );
}
