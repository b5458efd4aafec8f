//! Smoke test of the benchmark harness: every scenario of the load generator, at tiny sizes,
//! against a real wfs server (in process, on 127.0.0.1:0) and against the Rust baselines (the
//! ceiling, axum, fastwebsockets), so
//! that `cargo test --workspace` keeps the harness working. The figures are not checked, only
//! that each scenario runs to the end and sees what it should (no alert lost, every
//! connection open). Every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use wfs_bench::Target;
use wfs_bench::scenarios::{
    CatchUpOptions, ChatOptions, ChurnOptions, EchoOptions, FanoutOptions, HandshakeOptions,
    IdleOptions, LoginBurstOptions, PublishOptions, SlowlorisOptions, Transport, catch_up, chat,
    churn, echo, fanout, handshake, idle, login_burst, publish, slowloris,
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

/// A baseline server (`serve` of `wfs_bench::ceiling`, `axum_server` or `fastws`), in process.
async fn start_baseline<F>(serve: fn(tokio::net::TcpListener) -> F) -> std::net::SocketAddr
where
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(serve(listener));
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

    // Spread over cities, then the burst: back to back, four publishers in flight, each
    // publisher's alerts checked in its order.
    for (cities, interval, publishers, alerts) in [(1, 10, 1, 3), (3, 10, 1, 3), (1, 0, 4, 12)] {
        let result = fanout(
            target,
            &FanoutOptions {
                subscribers: 30,
                cities,
                alerts,
                interval: Duration::from_millis(interval),
                publishers,
                count_writes: false,
                drain: Duration::from_secs(5),
                transport: Transport::WebSocket,
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

    let result = handshake(
        target,
        &HandshakeOptions {
            connections: 30,
            concurrency: 8,
            settle: Duration::from_millis(50),
        },
    )
    .await
    .expect("handshake runs");
    assert_eq!((result.opened, result.alive), (30, 30), "{result:?}");
    assert!(result.server_us_per_handshake.is_some(), "{result:?}");

    let result = chat(
        target,
        &ChatOptions {
            members: 5,
            senders: 2,
            rate: 10.0,
            duration: Duration::from_millis(300),
            drain: Duration::from_secs(5),
        },
    )
    .await
    .expect("chat runs");
    assert_eq!(result.ready, 5, "{result:?}");
    assert!(result.sent > 0, "{result:?}");
    assert_eq!((result.lost, result.duplicates), (0, 0), "{result:?}");
    assert_eq!(
        (result.out_of_order, result.rate_limited),
        (0, 0),
        "{result:?}"
    );

    let result = publish(
        target,
        &PublishOptions {
            subscribers: 5,
            publishers: 2,
            duration: Duration::from_millis(300),
            max_alerts: 100,
            drain: Duration::from_secs(5),
        },
    )
    .await
    .expect("publish runs");
    assert!(result.alerts > 0, "{result:?}");
    assert_eq!(result.publish_errors, 0, "{result:?}");
    assert_eq!((result.lost, result.duplicates), (0, 0), "{result:?}");
    assert_eq!(result.out_of_order, 0, "{result:?}");
}

/// What only wfs has: the history (`since=`) and the SSE transport.
async fn wfs_only_scenarios(target: &Target) {
    let result = catch_up(
        target,
        &CatchUpOptions {
            missed: 20,
            clients: 2,
            drain: Duration::from_secs(5),
        },
    )
    .await
    .expect("catch-up runs");
    assert_eq!((result.complete, result.disordered), (2, 0), "{result:?}");
    assert_eq!(
        (result.live_received, result.truncated),
        (2, 0),
        "{result:?}"
    );

    let result = fanout(
        target,
        &FanoutOptions {
            subscribers: 10,
            cities: 1,
            alerts: 3,
            interval: Duration::from_millis(10),
            publishers: 1,
            count_writes: false,
            drain: Duration::from_secs(5),
            transport: Transport::Sse,
        },
    )
    .await
    .expect("SSE fan-out runs");
    assert_eq!(result.ready, 10, "{result:?}");
    assert_eq!(result.delivered, 30, "{result:?}");
    assert_eq!(
        (result.duplicates, result.out_of_order),
        (0, 0),
        "{result:?}"
    );
}

/// The scenarios of issue 10, which only wfs answers as they expect.
async fn hostile_scenarios(target: &Target) {
    let result = slowloris(
        target,
        &SlowlorisOptions {
            attack: 100,
            echo: EchoOptions {
                connections: 2,
                warmup: Duration::from_millis(50),
                duration: Duration::from_millis(200),
                payload: 16,
            },
        },
    )
    .await
    .expect("slowloris runs");
    assert_eq!(result.attack_held_at_start, 100, "{result:?}");
    assert!(result.during_attack.messages > 0, "{result:?}");
    assert_eq!(result.during_attack.errors, 0, "{result:?}");

    let result = login_burst(
        target,
        &LoginBurstOptions {
            logins: 4,
            after: Duration::from_millis(50),
        },
    )
    .await
    .expect("login-burst runs");
    assert_eq!(result.logins, 4, "{result:?}");
    assert!(!result.statuses.contains_key(&0), "{result:?}");
    assert!(result.rss_peak_kib.is_some(), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_wfs_and_the_rust_baselines() {
    tokio::time::timeout(LIMIT, async {
        let me = Some(std::process::id());
        let wfs = Target::wfs(start_wfs().await, "admin", PASSWORD, me)
            .await
            .expect("log in to wfs");
        assert_eq!(wfs.cities.len(), 6);
        every_scenario(&wfs).await;
        wfs_only_scenarios(&wfs).await;
        hostile_scenarios(&wfs).await;
        let ceiling = Target::baseline(start_baseline(wfs_bench::ceiling::serve).await, me);
        every_scenario(&ceiling).await;
        // (d) and (e) serve what the ceiling serves.
        let axum = Target::baseline(start_baseline(wfs_bench::axum_server::serve).await, me);
        every_scenario(&axum).await;
        let fastws = Target::baseline(start_baseline(wfs_bench::fastws::serve).await, me);
        every_scenario(&fastws).await;
    })
    .await
    .expect("the smoke test ends within its limit");
    let _ = std::fs::remove_dir_all(data_dir());
}
