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

async fn start_cluster() -> String {
    let bin = binaries();
    let dir = std::env::temp_dir().join(format!("wfs-pg-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).expect("cluster folder");
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&dir)
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
        .arg(&data)
        .stdout(Stdio::null())
        .output()
        .expect("initdb runs");
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
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
