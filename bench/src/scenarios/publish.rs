//! publish: P publishers post alerts through the server's publish path as fast as they are
//! answered, for a bounded time and count, to one city with S subscribers. Measures alerts
//! accepted per second, each request's latency, and the server's CPU time per alert (the
//! request, the store, and the fan-out to every subscriber), with the database server's when
//! it runs apart (PostgreSQL); every delivery is counted and checked for order: publisher `p`
//! of `P` publishes alerts `p + 1`, `p + 1 + P`, ..., each after the previous one is answered,
//! so its alerts must arrive in its order (and, on wfs, in alert id order).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::fanout::{Subscriber, Tally, Transport, alert_text, listen};
use super::{now_nanos, open_all};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse, per_operation};
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
    /// Deliveries after a later alert of the same publisher, or after a higher alert id.
    pub out_of_order: usize,
    /// Publication to receipt, every delivery.
    pub latency: Summary,
    /// CPU used by each side from the first publication to the last delivery.
    pub cpu: CpuUse,
    pub server_us_per_alert: Option<f64>,
    pub server_us_per_delivery: Option<f64>,
    /// The database server's CPU time per alert, when it runs apart (PostgreSQL); SQLite's
    /// is in the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_us_per_alert: Option<f64>,
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
    super::wait_until(Duration::from_secs(20), || {
        warm.load(Ordering::Relaxed) >= connected
    })
    .await;
    let ready = warm.load(Ordering::Relaxed);

    let meter = CpuMeter::start(target.pid).with_database(target.database_pid);
    let started = Instant::now();
    let end = started + options.duration;
    let count = options.publishers.max(1);
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..count {
        let (target, city) = (target.clone(), city.clone());
        let max = options.max_alerts;
        publishers.spawn(async move {
            let (mut ok, mut errors, mut times, mut last) = (0usize, 0usize, Vec::new(), 0);
            // Publisher `p`'s alerts are p + 1, p + 1 + count, ...: the tally knows whose is
            // which, and checks each publisher's order.
            for seq in (publisher + 1..=max).step_by(count) {
                if Instant::now() >= end {
                    break;
                }
                let began = Instant::now();
                match target.publish(&city, &alert_text(seq, now_nanos())).await {
                    Ok(_) => ok += 1,
                    Err(_) => errors += 1,
                }
                times.push(began.elapsed().as_micros() as u64);
                last = seq;
            }
            (ok, errors, times, last)
        });
    }
    let (mut alerts, mut publish_errors, mut publish_times) = (0, 0, Vec::new());
    let mut sequences = 0;
    while let Some(joined) = publishers.join_next().await {
        if let Ok((ok, errors, mut times, last)) = joined {
            alerts += ok;
            publish_errors += errors;
            publish_times.append(&mut times);
            sequences = sequences.max(last);
        }
    }
    let publishing_s = started.elapsed().as_secs_f64();
    let expected = alerts * connected;
    super::wait_until(options.drain, || {
        received.load(Ordering::Relaxed) >= expected
    })
    .await;
    let cpu = meter.stop();
    stop.send_replace(true);

    let mut tally = Tally::new(expected);
    while let Some(joined) = listeners.join_next().await {
        if let Ok(seen) = joined {
            // Publishers race, so alerts are stored (and delivered) in no set order across
            // publishers; each publisher's own must keep theirs.
            tally.add(seen, sequences, count);
        }
    }
    let delivered = tally.latencies.len();
    Ok(PublishResult {
        scenario: "publish",
        subscribers: options.subscribers,
        publishers: count,
        duration_s: options.duration.as_secs_f64(),
        failed_connections,
        ready,
        alerts,
        publish_errors,
        alerts_per_s: crate::procfs::per_second(alerts, publishing_s),
        publish: Summary::of(&mut publish_times),
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates: tally.duplicates,
        out_of_order: tally.out_of_order,
        latency: Summary::of(&mut tally.latencies),
        server_us_per_alert: per_operation(cpu.server_cpu_s, alerts),
        server_us_per_delivery: per_operation(cpu.server_cpu_s, delivered),
        database_us_per_alert: per_operation(cpu.database_cpu_s, alerts),
        cpu,
    })
}
