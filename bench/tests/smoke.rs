//! Smoke test of the benchmark harness: every scenario of the load generator, at tiny sizes,
//! against a real wfs server (in process, on 127.0.0.1:0) and against the ceiling server, so
//! that `cargo test --workspace` keeps the harness working. The figures are not checked, only
//! that each scenario runs to the end and sees what it should (no alert lost, every
//! connection open). Every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use wfs_bench::Target;
use wfs_bench::scenarios::{
    ChurnOptions, EchoOptions, FanoutOptions, IdleOptions, churn, echo, fanout, idle,
};

const PASSWORD: &str = "smoke-admin-password";

/// The whole test is bounded by this.
const LIMIT: Duration = Duration::from_secs(60);

fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wfs-bench-smoke-{}", std::process::id()))
}

/// A wfs server as `wfs serve` builds it, on a fresh data directory; stops with the runtime.
async fn start_wfs() -> std::net::SocketAddr {
    let data = data_dir();
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("data directory");
    let url = format!("sqlite://{}?mode=rwc", data.join("wfs.sqlite3").display());
    let store = wfs::store::Store::open(&url).await.expect("store");
    store.ensure_admin(Some(PASSWORD)).await.expect("admin");
    let secret = wfs::auth::Jwt::load_or_create_secret(&data, None).expect("secret");
    let jwt = wfs::auth::Jwt::new(secret, Duration::from_secs(600), Duration::from_secs(600))
        .expect("key");
    let app = Arc::new(wfs::App::new(store, jwt));
    let config = Arc::new(wfs_runtime::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let policy = wfs::http::AccessPolicy::local(address.port(), false);
    tokio::spawn(wfs::serve(
        listener,
        app,
        config,
        policy,
        std::future::pending(),
    ));
    address
}

async fn start_ceiling() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(wfs_bench::ceiling::serve(listener));
    address
}

async fn every_scenario(target: &Target) {
    let result = echo(
        target,
        &EchoOptions {
            connections: 3,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
            payload: 16,
        },
    )
    .await
    .expect("echo runs");
    assert!(result.messages > 0, "{result:?}");
    assert_eq!((result.errors, result.mismatched), (0, 0), "{result:?}");

    for cities in [1, 3] {
        let result = fanout(
            target,
            &FanoutOptions {
                subscribers: 30,
                cities,
                alerts: 3,
                interval: Duration::from_millis(10),
                drain: Duration::from_secs(5),
            },
        )
        .await
        .expect("fanout runs");
        assert_eq!(result.ready, 30, "{result:?}");
        assert!(result.expected > 0, "{result:?}");
        assert_eq!((result.lost, result.duplicates), (0, 0), "{result:?}");
        assert_eq!(result.out_of_order, 0, "{result:?}");
    }

    let result = idle(
        target,
        &IdleOptions {
            connections: 50,
            settle: Duration::from_millis(50),
        },
    )
    .await
    .expect("idle runs");
    assert_eq!((result.opened, result.alive), (50, 50), "{result:?}");
    assert!(result.after.rss_kib.is_some(), "{result:?}");

    let result = churn(
        target,
        &ChurnOptions {
            rate: 100,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(200),
            settle: Duration::from_millis(50),
            max_in_flight: 50,
        },
    )
    .await
    .expect("churn runs");
    assert!(result.ok > 0, "{result:?}");
    assert_eq!(result.failed, 0, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_wfs_and_the_ceiling() {
    tokio::time::timeout(LIMIT, async {
        let me = Some(std::process::id());
        let wfs = Target::wfs(start_wfs().await, "admin", PASSWORD, me)
            .await
            .expect("log in to wfs");
        assert_eq!(wfs.cities.len(), 6);
        every_scenario(&wfs).await;
        let ceiling = Target::baseline(start_ceiling().await, me);
        every_scenario(&ceiling).await;
    })
    .await
    .expect("the smoke test ends within its limit");
    let _ = std::fs::remove_dir_all(data_dir());
}
