//! publish: P publishers post alerts through the server's publish path as fast as they are
//! answered, for a bounded time and count, to one city with S subscribers. Measures alerts
//! accepted per second, each request's latency, and the server's CPU time per alert (the
//! request, the store, and the fan-out to every subscriber); every delivery is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::fanout::{Subscriber, Tally, Transport, alert_text, listen};
use super::{now_nanos, open_all};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse};
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub subscribers: usize,
    /// Publish requests in flight at once.
    pub publishers: usize,
    /// How long they publish.
    pub duration: Duration,
    /// At most this many alerts in all.
    pub max_alerts: usize,
    /// How long to wait for deliveries after the last publication.
    pub drain: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    pub scenario: &'static str,
    pub subscribers: usize,
    pub publishers: usize,
    pub duration_s: f64,
    pub failed_connections: usize,
    pub ready: usize,
    /// Alerts the server accepted.
    pub alerts: usize,
    pub publish_errors: usize,
    /// Accepted alerts per second of publishing.
    pub alerts_per_s: f64,
    /// Every publish request, sent to answered.
    pub publish: Summary,
    pub expected: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
    /// Publication to receipt, every delivery.
    pub latency: Summary,
    /// CPU used by each side from the first publication to the last delivery.
    pub cpu: CpuUse,
    pub server_us_per_alert: Option<f64>,
    pub server_us_per_delivery: Option<f64>,
}

pub async fn publish(target: &Target, options: &PublishOptions) -> anyhow::Result<PublishResult> {
    let city = target
        .cities
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the target has no cities"))?;
    let (subscribers, failed_connections) = open_all(options.subscribers, 64, |_| {
        let target = target.clone();
        let city = city.clone();
        async move { Subscriber::open(&target, Transport::WebSocket, &city).await }
    })
    .await;
    let connected = subscribers.len();
    anyhow::ensure!(connected > 0, "no subscriber connected");
    let (stop, stopped) = watch::channel(false);
    let warm = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    for (_, subscriber) in subscribers {
        listeners.spawn(listen(
            subscriber,
            stopped.clone(),
            warm.clone(),
            received.clone(),
        ));
    }
    target.publish(&city, &alert_text(0, now_nanos())).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while warm.load(Ordering::Relaxed) < connected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = warm.load(Ordering::Relaxed);

    let meter = CpuMeter::start(target.pid);
    let started = Instant::now();
    let end = started + options.duration;
    let next_seq = Arc::new(AtomicUsize::new(1));
    let mut publishers = tokio::task::JoinSet::new();
    for _ in 0..options.publishers.max(1) {
        let (target, city, next_seq) = (target.clone(), city.clone(), next_seq.clone());
        let max = options.max_alerts;
        publishers.spawn(async move {
            let (mut ok, mut errors, mut times) = (0usize, 0usize, Vec::new());
            while Instant::now() < end {
                let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                if seq > max {
                    break;
                }
                let began = Instant::now();
                match target.publish(&city, &alert_text(seq, now_nanos())).await {
                    Ok(_) => ok += 1,
                    Err(_) => errors += 1,
                }
                times.push(began.elapsed().as_micros() as u64);
            }
            (ok, errors, times)
        });
    }
    let (mut alerts, mut publish_errors, mut publish_times) = (0, 0, Vec::new());
    while let Some(joined) = publishers.join_next().await {
        if let Ok((ok, errors, mut times)) = joined {
            alerts += ok;
            publish_errors += errors;
            publish_times.append(&mut times);
        }
    }
    let publishing_s = started.elapsed().as_secs_f64();
    let expected = alerts * connected;
    let deadline = Instant::now() + options.drain;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = meter.stop();
    stop.send_replace(true);

    let sequences = next_seq.load(Ordering::Relaxed);
    let mut tally = Tally::new(expected);
    while let Some(joined) = listeners.join_next().await {
        if let Ok(seen) = joined {
            // Publishers race, so alerts may be stored (and delivered) in another order than
            // their sequence numbers: only losses and duplicates count here.
            tally.add(seen, sequences, false);
        }
    }
    let delivered = tally.latencies.len();
    let per = |count: usize| {
        cpu.server_cpu_s
            .filter(|_| count > 0)
            .map(|s| s * 1e6 / count as f64)
    };
    Ok(PublishResult {
        scenario: "publish",
        subscribers: options.subscribers,
        publishers: options.publishers.max(1),
        duration_s: options.duration.as_secs_f64(),
        failed_connections,
        ready,
        alerts,
        publish_errors,
        alerts_per_s: if publishing_s > 0.0 {
            alerts as f64 / publishing_s
        } else {
            0.0
        },
        publish: Summary::of(&mut publish_times),
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates: tally.duplicates,
        latency: Summary::of(&mut tally.latencies),
        server_us_per_alert: per(alerts),
        server_us_per_delivery: per(delivered),
        cpu,
    })
}
