//! handshake: C authenticated alert connections opened as fast as the server accepts them (a
//! thundering herd after a deploy), with a bounded number of handshakes in flight, and all
//! held open. Measures handshakes per second, the server's CPU time per handshake (token,
//! user and city checks included, on wfs), each handshake's latency, and the server's memory
//! per authenticated subscriber; one alert per city afterwards shows the subscriptions live.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::fanout::{Subscriber, alert_text, listen};
use super::{connect, now_nanos, open_all};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse, Snapshot};
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct HandshakeOptions {
    pub connections: usize,
    /// Handshakes in flight at most; each next one starts as soon as one completes.
    pub concurrency: usize,
    /// Pause after the last handshake, before memory is read.
    pub settle: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandshakeResult {
    pub scenario: &'static str,
    pub connections: usize,
    pub concurrency: usize,
    pub opened: usize,
    pub failed_connections: usize,
    /// From the first connect to the last completed handshake.
    pub open_s: f64,
    pub handshakes_per_s: f64,
    /// Connect to the end of the upgrade, every handshake that completed.
    pub latency: Summary,
    /// CPU used by each side while the connections were opened.
    pub cpu: CpuUse,
    pub server_us_per_handshake: Option<f64>,
    pub client_us_per_handshake: Option<f64>,
    /// The database server's CPU time per handshake, when it runs apart (PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_us_per_handshake: Option<f64>,
    pub before: Snapshot,
    pub after: Snapshot,
    /// (after - before) / opened, in bytes.
    pub bytes_per_connection: Option<f64>,
    /// Subscribers that received the alert published for their city after the measurement.
    pub alive: usize,
}

pub async fn handshake(
    target: &Target,
    options: &HandshakeOptions,
) -> anyhow::Result<HandshakeResult> {
    let cities = target.cities.clone();
    anyhow::ensure!(!cities.is_empty(), "the target has no cities");
    let before = Snapshot::of(target.pid);
    let meter = CpuMeter::start(target.pid).with_database(target.database_pid);
    let started = Instant::now();
    let (sockets, failed_connections) =
        open_all(options.connections, options.concurrency, |index| {
            let url = target.alert_url(&cities[index % cities.len()]);
            async move {
                let began = Instant::now();
                let socket = connect(&url).await?;
                anyhow::Ok((socket, began.elapsed()))
            }
        })
        .await;
    let open_s = started.elapsed().as_secs_f64();
    let cpu = meter.stop();
    tokio::time::sleep(options.settle).await;
    let after = Snapshot::of(target.pid);
    let opened = sockets.len();
    let mut latencies: Vec<u64> = sockets
        .iter()
        .map(|(_, (_, took))| took.as_micros() as u64)
        .collect();
    let bytes_per_connection = match (before.rss_kib, after.rss_kib) {
        (Some(before), Some(after)) if opened > 0 => {
            Some((after as f64 - before as f64) * 1024.0 / opened as f64)
        }
        _ => None,
    };

    // Live? One alert per city; every subscriber should get its city's.
    let (stop, stopped) = watch::channel(false);
    let warm = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    for (_, (socket, _)) in sockets {
        listeners.spawn(listen(
            Subscriber::WebSocket(Box::new(socket)),
            stopped.clone(),
            warm.clone(),
            received.clone(),
        ));
    }
    let published = async {
        for city in &cities {
            target.publish(city, &alert_text(0, now_nanos())).await?;
        }
        anyhow::Ok(())
    }
    .await;
    if published.is_ok() {
        let all_warm = || warm.load(Ordering::Relaxed) >= opened;
        super::wait_until(Duration::from_secs(20), all_warm).await;
    }
    let alive = warm.load(Ordering::Relaxed);
    stop.send_replace(true);
    while listeners.join_next().await.is_some() {}

    let per_handshake = |seconds: Option<f64>| crate::procfs::per_operation(seconds, opened);
    Ok(HandshakeResult {
        scenario: "handshake",
        connections: options.connections,
        concurrency: options.concurrency,
        opened,
        failed_connections,
        open_s,
        handshakes_per_s: crate::procfs::per_second(opened, open_s),
        latency: Summary::of(&mut latencies),
        server_us_per_handshake: per_handshake(cpu.server_cpu_s),
        client_us_per_handshake: per_handshake(cpu.client_cpu_s),
        database_us_per_handshake: crate::procfs::per_operation(cpu.database_cpu_s, opened),
        cpu,
        before,
        after,
        bytes_per_connection,
        alive,
    })
}
