//! fanout: S subscribers of the alert channel (WebSocket, or Server-Sent Events), on one city
//! or spread over several; alerts are published through the server's normal path, each
//! carrying its publication time, and every delivery's latency (publish to receipt) is
//! recorded. With no interval between publications and several publishers it is the burst
//! scenario: several publish requests in flight at once, so several frames wait in every
//! subscriber's queue at once; the server's write system calls can then be counted
//! ([`crate::syscalls`]) to show how many frames one write carries.
//!
//! Order: with one publisher every subscriber must receive the alerts in the order published.
//! With several, publication order across publishers is not defined (their requests race), but
//! each publisher waits for its request's answer before sending the next, and the server hands
//! an alert to the subscribers before answering, so each publisher's alerts must arrive in its
//! order; alert `seq` is publisher `(seq - 1) % P`'s. A server whose frames carry an alert `id`
//! (wfs) also promises every subscriber the city's alerts in id order, which is checked too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{Socket, connect, now_nanos, open_all};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse};
use crate::sse::{self, SseStream};
use crate::stats::Summary;
use crate::syscalls::{WriteCalls, WriteCounter};

/// How subscribers are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `/ws/v1/alert`.
    #[value(name = "websocket")]
    WebSocket,
    /// `/sse/v1/alert` (wfs only).
    Sse,
}

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    pub subscribers: usize,
    /// Over how many of the target's cities the subscribers are spread (1 = all on one).
    pub cities: usize,
    /// Alerts published (round robin over the cities used).
    pub alerts: usize,
    /// Time between two publications of each publisher (the next goes at once if one takes
    /// longer); zero publishes back to back.
    pub interval: Duration,
    /// Publish requests in flight at once, each publisher sending its next alert when its
    /// previous one is answered.
    pub publishers: usize,
    /// Count the server's write system calls over the measured window (`perf stat`).
    pub count_writes: bool,
    /// How long to wait for deliveries after the last publication.
    pub drain: Duration,
    pub transport: Transport,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    pub scenario: &'static str,
    pub transport: Transport,
    pub subscribers: usize,
    pub failed_connections: usize,
    pub cities: usize,
    pub alerts: usize,
    pub interval_ms: f64,
    pub publishers: usize,
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
    /// The server's write system calls over the same window, when counted.
    pub writes: Option<WriteCalls>,
    /// Of those, per delivery: below 1 when one write carries several frames.
    pub writes_per_delivery: Option<f64>,
}

/// The text every alert carries: its sequence number and publication time.
pub(super) fn alert_text(seq: usize, nanos: u128) -> String {
    format!("bench-{seq}-{nanos}")
}

/// The sequence number and publication time of a frame that carries an [`alert_text`], and
/// the alert's `id` when the server gives one (wfs does).
pub(super) fn parse_alert(frame: &str) -> Option<(usize, u128, Option<i64>)> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    let rest = value["message"].as_str()?.strip_prefix("bench-")?;
    let (seq, nanos) = rest.split_once('-')?;
    Some((seq.parse().ok()?, nanos.parse().ok()?, value["id"].as_i64()))
}

/// A subscriber, over either transport.
pub(super) enum Subscriber {
    WebSocket(Box<Socket>),
    Sse(Box<SseStream>),
}

/// A received frame's text (WebSocket frames are not copied).
pub(super) enum Text {
    WebSocket(Utf8Bytes),
    Sse(String),
}

impl Text {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Text::WebSocket(text) => text.as_str(),
            Text::Sse(text) => text,
        }
    }
}

impl Subscriber {
    /// Connects a subscriber of `city`.
    pub(super) async fn open(
        target: &Target,
        transport: Transport,
        city: &str,
    ) -> anyhow::Result<Subscriber> {
        Ok(match transport {
            Transport::WebSocket => {
                Subscriber::WebSocket(Box::new(connect(&target.alert_url(city)).await?))
            }
            Transport::Sse => Subscriber::Sse(Box::new(
                sse::open(target.address, &target.sse_path(city)).await?,
            )),
        })
    }

    /// The next text frame or event; `None` when the connection ends.
    pub(super) async fn next_text(&mut self) -> Option<Text> {
        match self {
            Subscriber::WebSocket(socket) => loop {
                match socket.next().await? {
                    Ok(Message::Text(text)) => return Some(Text::WebSocket(text)),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            },
            Subscriber::Sse(stream) => stream.next_data().await.map(Text::Sse),
        }
    }
}

/// One delivery a subscriber saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Delivery {
    pub seq: usize,
    /// The alert's id, when the frame carries one.
    pub id: Option<i64>,
    /// Publication to receipt, in µs.
    pub latency_us: u64,
    /// Receipt time, in ns since the epoch.
    pub at: u128,
}

/// What one subscriber saw, in the order it saw it.
pub(super) type Seen = Vec<Delivery>;

/// Reads alerts until `stop`: counts the first warm-up alert (seq 0) into `warm` and every
/// other alert into `received`.
pub(super) async fn listen(
    mut subscriber: Subscriber,
    mut stop: watch::Receiver<bool>,
    warm: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
) -> Seen {
    let mut seen = Seen::new();
    let mut warmed = false;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            frame = subscriber.next_text() => match frame {
                Some(text) => {
                    let at = now_nanos();
                    let Some((seq, published, id)) = parse_alert(text.as_str()) else { continue };
                    if seq == 0 {
                        if !warmed {
                            warmed = true;
                            warm.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let latency_us = (at.saturating_sub(published) / 1000) as u64;
                    seen.push(Delivery { seq, id, latency_us, at });
                    received.fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
    }
    drop(subscriber);
    seen
}

/// What every subscriber's [`Seen`] adds up to, for alerts `1..=alerts`.
pub(super) struct Tally {
    pub latencies: Vec<u64>,
    pub duplicates: usize,
    pub out_of_order: usize,
    pub last_receipt: u128,
}

impl Tally {
    pub(super) fn new(expected: usize) -> Tally {
        Tally {
            latencies: Vec::with_capacity(expected),
            duplicates: 0,
            out_of_order: 0,
            last_receipt: 0,
        }
    }

    /// Adds one subscriber's deliveries of alerts `1..=alerts`, published by `publishers`
    /// publishers (alert `seq` is publisher `(seq - 1) % publishers`'s). A delivery is out of
    /// order when it comes after a later alert of the same publisher, or after an alert with a
    /// higher id (when frames carry ids).
    pub(super) fn add(&mut self, seen: Seen, alerts: usize, publishers: usize) {
        let publishers = publishers.max(1);
        let mut got = vec![false; alerts + 1];
        let mut last_seq = vec![0; publishers];
        let mut last_id = None;
        for delivery in seen {
            let seq = delivery.seq;
            if seq == 0 || seq > alerts {
                continue;
            }
            if got[seq] {
                self.duplicates += 1;
                continue;
            }
            got[seq] = true;
            let publisher = (seq - 1) % publishers;
            let behind_publisher = seq < last_seq[publisher];
            let behind_id = delivery
                .id
                .zip(last_id)
                .is_some_and(|(id, last)| id <= last);
            if behind_publisher || behind_id {
                self.out_of_order += 1;
            }
            last_seq[publisher] = last_seq[publisher].max(seq);
            last_id = delivery.id.max(last_id);
            self.latencies.push(delivery.latency_us);
            self.last_receipt = self.last_receipt.max(delivery.at);
        }
    }
}

pub async fn fanout(target: &Target, options: &FanoutOptions) -> anyhow::Result<FanoutResult> {
    let cities: Vec<String> = target
        .cities
        .iter()
        .take(options.cities.max(1))
        .cloned()
        .collect();
    let started = Instant::now();
    let transport = options.transport;
    let (subscribers, failed_connections) = open_all(options.subscribers, 64, |index| {
        let target = target.clone();
        let city = cities[index % cities.len()].clone();
        async move { Subscriber::open(&target, transport, &city).await }
    })
    .await;
    let connect_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(!subscribers.is_empty(), "no subscriber connected");
    let mut per_city = vec![0usize; cities.len()];
    let (stop, stopped) = watch::channel(false);
    let warm = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    for (index, subscriber) in subscribers {
        per_city[index % cities.len()] += 1;
        listeners.spawn(listen(
            subscriber,
            stopped.clone(),
            warm.clone(),
            received.clone(),
        ));
    }
    let connected: usize = per_city.iter().sum();

    // Warm-up: one alert per city, until every subscriber has one (subscriptions are live).
    // Repeated every 2 s (longer than one alert takes to reach 10,000 subscribers on the
    // slowest server, so normally never): a server that subscribes a connection only after
    // answering its handshake (the ceiling does) can let the first pass a subscriber by.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next_round = Instant::now();
    while warm.load(Ordering::Relaxed) < connected && Instant::now() < deadline {
        if Instant::now() >= next_round {
            for city in &cities {
                target.publish(city, &alert_text(0, now_nanos())).await?;
            }
            next_round = Instant::now() + Duration::from_secs(2);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = warm.load(Ordering::Relaxed);

    let publishers = options.publishers.max(1);
    let counter = match (options.count_writes, target.pid) {
        (true, Some(pid)) => WriteCounter::start(pid).await,
        _ => None,
    };
    let meter = CpuMeter::start(target.pid);
    let first_publish = now_nanos();
    let mut publishing = tokio::task::JoinSet::new();
    for publisher in 0..publishers {
        let (target, cities, per_city) = (target.clone(), cities.clone(), per_city.clone());
        let (alerts, interval) = (options.alerts, options.interval);
        publishing.spawn(async move {
            let (mut expected, mut errors, mut times) = (0, 0, Vec::new());
            // A zero interval publishes back to back (tokio's interval refuses a zero period).
            let mut ticker = (!interval.is_zero()).then(|| {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker
            });
            for seq in (publisher + 1..=alerts).step_by(publishers) {
                if let Some(ticker) = &mut ticker {
                    ticker.tick().await;
                }
                let city = (seq - 1) % cities.len();
                let began = Instant::now();
                match target
                    .publish(&cities[city], &alert_text(seq, now_nanos()))
                    .await
                {
                    Ok(_) => expected += per_city[city],
                    Err(_) => errors += 1,
                }
                times.push(began.elapsed().as_micros() as u64);
            }
            (expected, errors, times)
        });
    }
    let mut expected = 0;
    let mut publish_times = Vec::with_capacity(options.alerts);
    let mut publish_errors = 0;
    while let Some(joined) = publishing.join_next().await {
        match joined {
            Ok((due, errors, mut times)) => {
                expected += due;
                publish_errors += errors;
                publish_times.append(&mut times);
            }
            Err(_) => publish_errors += 1,
        }
    }
    super::wait_until(options.drain, || {
        received.load(Ordering::Relaxed) >= expected
    })
    .await;
    let cpu = meter.stop();
    let writes = match counter {
        Some(counter) => counter.stop().await,
        None => None,
    };
    stop.send_replace(true);

    let mut tally = Tally::new(expected);
    tally.last_receipt = first_publish;
    while let Some(joined) = listeners.join_next().await {
        if let Ok(seen) = joined {
            tally.add(seen, options.alerts, publishers);
        }
    }
    let delivered = tally.latencies.len();
    let per_delivery = |seconds: Option<f64>| crate::procfs::per_operation(seconds, delivered);
    let span_s = (tally.last_receipt.saturating_sub(first_publish)) as f64 / 1e9;
    Ok(FanoutResult {
        scenario: "fanout",
        transport,
        subscribers: options.subscribers,
        failed_connections,
        cities: cities.len(),
        alerts: options.alerts,
        interval_ms: options.interval.as_secs_f64() * 1000.0,
        publishers,
        ready,
        connect_s,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates: tally.duplicates,
        out_of_order: tally.out_of_order,
        latency: Summary::of(&mut tally.latencies),
        deliveries_per_s: crate::procfs::per_second(delivered, span_s),
        publish: Summary::of(&mut publish_times),
        publish_errors,
        server_us_per_delivery: per_delivery(cpu.server_cpu_s),
        client_us_per_delivery: per_delivery(cpu.client_cpu_s),
        cpu,
        writes_per_delivery: writes
            .filter(|_| delivered > 0)
            .map(|calls| calls.total as f64 / delivered as f64),
        writes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_texts_round_trip_through_any_server_frame() {
        let text = alert_text(7, 1_700_000_000_123_456_789);
        let ours = format!(r#"{{"type":"alert","id":3,"message":"{text}","city_uuid":"x"}}"#);
        assert_eq!(
            parse_alert(&ours),
            Some((7, 1_700_000_000_123_456_789, Some(3)))
        );
        let baseline = format!(r#"{{"message":"{text}"}}"#);
        assert_eq!(
            parse_alert(&baseline),
            Some((7, 1_700_000_000_123_456_789, None))
        );
        assert_eq!(parse_alert(r#"{"message":"hello"}"#), None);
    }

    fn seen(deliveries: &[(usize, Option<i64>, u64, u128)]) -> Seen {
        deliveries
            .iter()
            .map(|&(seq, id, latency_us, at)| Delivery {
                seq,
                id,
                latency_us,
                at,
            })
            .collect()
    }

    #[test]
    fn the_tally_counts_duplicates_and_disorder() {
        let mut tally = Tally::new(4);
        tally.add(
            seen(&[
                (1, None, 10, 1),
                (3, None, 30, 3),
                (2, None, 20, 2),
                (3, None, 31, 4),
            ]),
            3,
            1,
        );
        assert_eq!(tally.latencies, [10, 30, 20]);
        assert_eq!((tally.duplicates, tally.out_of_order), (1, 1));
        assert_eq!(tally.last_receipt, 3);
    }

    #[test]
    fn with_several_publishers_order_is_per_publisher_and_by_id() {
        // Two publishers: 1, 3, 5 are the first's, 2, 4, 6 the second's. Their alerts may
        // interleave in any way, each publisher's in its order.
        let mut tally = Tally::new(6);
        tally.add(
            seen(&[
                (2, None, 0, 0),
                (1, None, 0, 0),
                (4, None, 0, 0),
                (3, None, 0, 0),
            ]),
            6,
            2,
        );
        assert_eq!(tally.out_of_order, 0);
        // The first publisher's 3 after its 5: out of order.
        tally.add(
            seen(&[(1, None, 0, 0), (5, None, 0, 0), (3, None, 0, 0)]),
            6,
            2,
        );
        assert_eq!(tally.out_of_order, 1);
        // Each publisher in its order, but ids going back: the server broke its id order.
        tally.add(seen(&[(2, Some(8), 0, 0), (1, Some(7), 0, 0)]), 6, 2);
        assert_eq!(tally.out_of_order, 2);
        tally.add(seen(&[(2, Some(7), 0, 0), (1, Some(8), 0, 0)]), 6, 2);
        assert_eq!((tally.out_of_order, tally.duplicates), (2, 0));
    }
}
