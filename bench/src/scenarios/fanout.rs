//! fanout: S subscribers of the alert channel, on one city or spread over several; alerts are
//! published through the server's normal path, each carrying its publication time, and every
//! delivery's latency (publish to receipt) is recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{Socket, now_nanos, open_many};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse};
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    pub subscribers: usize,
    /// Over how many of the target's cities the subscribers are spread (1 = all on one).
    pub cities: usize,
    /// Alerts published (round robin over the cities used).
    pub alerts: usize,
    /// Time between two publications (the next goes at once if one takes longer).
    pub interval: Duration,
    /// How long to wait for deliveries after the last publication.
    pub drain: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    pub scenario: &'static str,
    pub subscribers: usize,
    pub failed_connections: usize,
    pub cities: usize,
    pub alerts: usize,
    /// Subscribers that got the warm-up alert of their city (published before measuring, so
    /// that every subscription is known to be live).
    pub ready: usize,
    pub connect_s: f64,
    /// Deliveries due: for each alert, the subscribers of its city.
    pub expected: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub out_of_order: usize,
    /// Publish to receipt, every delivery.
    pub latency: Summary,
    /// Deliveries per second, from the first publication to the last receipt.
    pub deliveries_per_s: f64,
    /// How long each publish request took (answered by the server).
    pub publish: Summary,
    pub publish_errors: usize,
    /// CPU used by each side from the first publication to the last delivery (or the drain
    /// limit).
    pub cpu: CpuUse,
    /// Server CPU time per delivery, in µs.
    pub server_us_per_delivery: Option<f64>,
    /// Load generator CPU time per delivery, in µs.
    pub client_us_per_delivery: Option<f64>,
}

/// The text every alert carries: its sequence number and publication time.
fn alert_text(seq: usize, nanos: u128) -> String {
    format!("bench-{seq}-{nanos}")
}

fn parse_alert(frame: &str) -> Option<(usize, u128)> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    let rest = value["message"].as_str()?.strip_prefix("bench-")?;
    let (seq, nanos) = rest.split_once('-')?;
    Some((seq.parse().ok()?, nanos.parse().ok()?))
}

/// What one subscriber saw: (sequence number, latency in µs, receipt time in ns).
type Seen = Vec<(usize, u64, u128)>;

async fn listen(
    mut socket: Socket,
    mut stop: watch::Receiver<bool>,
    warm: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
) -> Seen {
    let mut seen = Seen::new();
    let mut warmed = false;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let at = now_nanos();
                    let Some((seq, published)) = parse_alert(text.as_str()) else { continue };
                    if seq == 0 {
                        if !warmed {
                            warmed = true;
                            warm.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let latency = at.saturating_sub(published) / 1000;
                    seen.push((seq, latency as u64, at));
                    received.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
    }
    drop(socket);
    seen
}

pub async fn fanout(target: &Target, options: &FanoutOptions) -> anyhow::Result<FanoutResult> {
    let cities: Vec<String> = target
        .cities
        .iter()
        .take(options.cities.max(1))
        .cloned()
        .collect();
    let started = Instant::now();
    let (sockets, failed_connections) = open_many(options.subscribers, 64, |index| {
        target.alert_url(&cities[index % cities.len()])
    })
    .await;
    let connect_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(!sockets.is_empty(), "no subscriber connected");
    let mut per_city = vec![0usize; cities.len()];
    let (stop, stopped) = watch::channel(false);
    let warm = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    for (index, socket) in sockets {
        per_city[index % cities.len()] += 1;
        listeners.spawn(listen(
            socket,
            stopped.clone(),
            warm.clone(),
            received.clone(),
        ));
    }
    let connected: usize = per_city.iter().sum();

    // Warm-up: one alert per city, until every subscriber has one (subscriptions are live).
    for city in &cities {
        target.publish(city, &alert_text(0, now_nanos())).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while warm.load(Ordering::Relaxed) < connected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = warm.load(Ordering::Relaxed);

    let mut expected = 0;
    let mut publish_times = Vec::with_capacity(options.alerts);
    let mut publish_errors = 0;
    let meter = CpuMeter::start(target.pid);
    let first_publish = now_nanos();
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=options.alerts {
        ticker.tick().await;
        let city = (seq - 1) % cities.len();
        let began = Instant::now();
        match target
            .publish(&cities[city], &alert_text(seq, now_nanos()))
            .await
        {
            Ok(()) => expected += per_city[city],
            Err(_) => publish_errors += 1,
        }
        publish_times.push(began.elapsed().as_micros() as u64);
    }
    let deadline = Instant::now() + options.drain;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = meter.stop();
    stop.send_replace(true);

    let mut latencies = Vec::with_capacity(expected);
    let (mut duplicates, mut out_of_order, mut last_receipt) = (0, 0, first_publish);
    while let Some(joined) = listeners.join_next().await {
        let Ok(seen) = joined else { continue };
        let mut got = vec![false; options.alerts + 1];
        let mut last_seq = 0;
        for (seq, latency, at) in seen {
            if seq > options.alerts {
                continue;
            }
            if got[seq] {
                duplicates += 1;
                continue;
            }
            got[seq] = true;
            if seq < last_seq {
                out_of_order += 1;
            }
            last_seq = seq;
            latencies.push(latency);
            last_receipt = last_receipt.max(at);
        }
    }
    let delivered = latencies.len();
    let per_delivery = |seconds: Option<f64>| {
        seconds
            .filter(|_| delivered > 0)
            .map(|s| s * 1e6 / delivered as f64)
    };
    let span_s = (last_receipt.saturating_sub(first_publish)) as f64 / 1e9;
    Ok(FanoutResult {
        scenario: "fanout",
        subscribers: options.subscribers,
        failed_connections,
        cities: cities.len(),
        alerts: options.alerts,
        ready,
        connect_s,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates,
        out_of_order,
        latency: Summary::of(&mut latencies),
        deliveries_per_s: if span_s > 0.0 {
            delivered as f64 / span_s
        } else {
            0.0
        },
        publish: Summary::of(&mut publish_times),
        publish_errors,
        server_us_per_delivery: per_delivery(cpu.server_cpu_s),
        client_us_per_delivery: per_delivery(cpu.client_cpu_s),
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_texts_round_trip_through_any_server_frame() {
        let text = alert_text(7, 1_700_000_000_123_456_789);
        let ours = format!(r#"{{"type":"alert","id":3,"message":"{text}","city_uuid":"x"}}"#);
        assert_eq!(parse_alert(&ours), Some((7, 1_700_000_000_123_456_789)));
        assert_eq!(parse_alert(r#"{"message":"hello"}"#), None);
    }
}
