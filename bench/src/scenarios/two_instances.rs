//! two-instances: two `wfs serve` processes sharing one Redis and one database, subscribers
//! split between them (even ones on the first, odd ones on the second), alerts published on
//! the first: every delivery's latency on each instance, so the Redis hop shows as the
//! difference between the two.

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
pub struct TwoInstancesOptions {
    /// Subscribers in all, half on each instance.
    pub subscribers: usize,
    pub alerts: usize,
    /// Time between two publications.
    pub interval: Duration,
    pub drain: Duration,
}

/// What the subscribers of one instance saw.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub subscribers: usize,
    pub failed_connections: usize,
    pub ready: usize,
    pub expected: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub out_of_order: usize,
    /// Publication (on the first instance) to receipt.
    pub latency: Summary,
    /// The instance's CPU from the first publication to the last delivery.
    pub cpu: CpuUse,
    pub server_us_per_delivery: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TwoInstancesResult {
    pub scenario: &'static str,
    pub subscribers: usize,
    pub alerts: usize,
    pub interval_ms: f64,
    pub publish_errors: usize,
    /// The instance alerts are published on.
    pub publishing: Instance,
    /// The other one, reached through Redis.
    pub other: Instance,
}

struct Side {
    target: Target,
    connected: usize,
    failed: usize,
    warm: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
    listeners: tokio::task::JoinSet<super::fanout::Seen>,
}

async fn side(target: Target, count: usize, city: &str, stopped: &watch::Receiver<bool>) -> Side {
    let (subscribers, failed) = open_all(count, 64, |_| {
        let (target, city) = (target.clone(), city.to_owned());
        async move { Subscriber::open(&target, Transport::WebSocket, &city).await }
    })
    .await;
    let warm = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    let connected = subscribers.len();
    for (_, subscriber) in subscribers {
        listeners.spawn(listen(
            subscriber,
            stopped.clone(),
            warm.clone(),
            received.clone(),
        ));
    }
    Side {
        target,
        connected,
        failed,
        warm,
        received,
        listeners,
    }
}

pub async fn two_instances(
    first: &Target,
    second: &Target,
    options: &TwoInstancesOptions,
) -> anyhow::Result<TwoInstancesResult> {
    let city = first
        .cities
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the target has no cities"))?;
    let (stop, stopped) = watch::channel(false);
    let half = options.subscribers / 2;
    let mut sides = [
        side(first.clone(), options.subscribers - half, &city, &stopped).await,
        side(second.clone(), half, &city, &stopped).await,
    ];
    anyhow::ensure!(
        sides.iter().all(|side| side.connected > 0),
        "no subscriber connected to one of the instances"
    );
    // Warm-up until every subscriber on both instances has an alert: both subscriptions to
    // Redis are live. Repeated, since the other instance subscribes to Redis a moment after
    // its first subscriber arrives.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sides
        .iter()
        .any(|side| side.warm.load(Ordering::Relaxed) < side.connected)
        && Instant::now() < deadline
    {
        first.publish(&city, &alert_text(0, now_nanos())).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready: Vec<usize> = sides
        .iter()
        .map(|side| side.warm.load(Ordering::Relaxed))
        .collect();

    let meters = [
        CpuMeter::start(sides[0].target.pid),
        CpuMeter::start(sides[1].target.pid),
    ];
    let (mut published, mut publish_errors) = (0, 0);
    let mut ticker = tokio::time::interval(options.interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=options.alerts {
        ticker.tick().await;
        match first.publish(&city, &alert_text(seq, now_nanos())).await {
            Ok(_) => published += 1,
            Err(_) => publish_errors += 1,
        }
    }
    super::wait_until(options.drain, || {
        sides
            .iter()
            .all(|side| side.received.load(Ordering::Relaxed) >= published * side.connected)
    })
    .await;
    let cpu = [meters[0].stop(), meters[1].stop()];
    stop.send_replace(true);

    let [first, second] = &mut sides;
    let publishing = instance(first, ready[0], cpu[0], published, options.alerts).await;
    let other = instance(second, ready[1], cpu[1], published, options.alerts).await;
    Ok(TwoInstancesResult {
        scenario: "two-instances",
        subscribers: options.subscribers,
        alerts: options.alerts,
        interval_ms: options.interval.as_secs_f64() * 1000.0,
        publish_errors,
        publishing,
        other,
    })
}

/// What one instance's subscribers received, once they have all stopped listening.
async fn instance(
    side: &mut Side,
    ready: usize,
    cpu: CpuUse,
    published: usize,
    alerts: usize,
) -> Instance {
    let expected = published * side.connected;
    let mut tally = Tally::new(expected);
    while let Some(joined) = side.listeners.join_next().await {
        if let Ok(seen) = joined {
            tally.add(seen, alerts, 1);
        }
    }
    let delivered = tally.latencies.len();
    Instance {
        subscribers: side.connected + side.failed,
        failed_connections: side.failed,
        ready,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates: tally.duplicates,
        out_of_order: tally.out_of_order,
        latency: Summary::of(&mut tally.latencies),
        cpu,
        server_us_per_delivery: crate::procfs::per_operation(cpu.server_cpu_s, delivered),
    }
}
