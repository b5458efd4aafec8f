//! chat: M members in one room of the chat channel, S of them sending at a fixed rate each;
//! every member receives every message, its own included. Each message carries its sender,
//! its sequence number and its send time, so every delivery's latency is measured and losses,
//! duplicates and reordering (per sender) are counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, Interval};
use tokio_tungstenite::tungstenite::Message;

use super::{Socket, WAIT, now_nanos, open_many};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse};
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct ChatOptions {
    pub members: usize,
    /// Members that send (the first ones).
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// How long the senders send.
    pub duration: Duration,
    /// How long to wait for deliveries after the last message.
    pub drain: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatResult {
    pub scenario: &'static str,
    pub members: usize,
    pub senders: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub joined: usize,
    pub failed_connections: usize,
    /// Members that got the warm-up message (the room is live for them).
    pub ready: usize,
    /// Messages the senders wrote.
    pub sent: usize,
    /// `error` frames with code `rate_limited` (the server dropped a message).
    pub rate_limited: usize,
    /// Deliveries due: every message to every member.
    pub expected: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub out_of_order: usize,
    /// Send to receipt, every delivery.
    pub latency: Summary,
    /// From the first message sent to the last receipt.
    pub deliveries_per_s: f64,
    pub cpu: CpuUse,
    pub server_us_per_delivery: Option<f64>,
    pub client_us_per_delivery: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warm,
    Run,
    Stop,
}

fn chat_text(sender: usize, seq: usize, nanos: u128) -> String {
    serde_json::json!({ "message": format!("bench-chat-{sender}-{seq}-{nanos}") }).to_string()
}

/// (sender, sequence number, send time) of a frame that carries a [`chat_text`].
fn parse_chat(frame: &str) -> Option<(usize, usize, u128)> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    let rest = value["message"].as_str()?.strip_prefix("bench-chat-")?;
    let mut parts = rest.splitn(3, '-');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// What one member saw and did.
#[derive(Default)]
struct Member {
    /// (sender, seq, latency µs, receipt ns), warm-up messages left out.
    seen: Vec<(usize, usize, u64, u128)>,
    sent: usize,
    rate_limited: usize,
}

struct Shared {
    warm: AtomicUsize,
    received: AtomicUsize,
    sent: AtomicUsize,
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn member(
    socket: Socket,
    sender: Option<usize>,
    options: ChatOptions,
    mut phase: watch::Receiver<Phase>,
    shared: Arc<Shared>,
) -> Member {
    let (mut sink, mut stream) = socket.split();
    let mut result = Member::default();
    let mut warmed = false;
    // Sender 0 repeats the warm-up message until every member has one.
    let mut warm_ticker =
        (sender == Some(0)).then(|| tokio::time::interval(Duration::from_millis(200)));
    let mut send_ticker: Option<Interval> = None;
    let mut end = Instant::now();
    let mut seq = 0;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *phase.borrow_and_update();
                match now {
                    Phase::Stop => break,
                    Phase::Run => {
                        warm_ticker = None;
                        if sender.is_some() && options.rate > 0.0 {
                            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
                            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            send_ticker = Some(ticker);
                            end = Instant::now() + options.duration;
                        }
                    }
                    Phase::Warm => {}
                }
            }
            _ = tick(&mut warm_ticker) => {
                if sink.send(Message::text(chat_text(0, 0, now_nanos()))).await.is_err() {
                    break;
                }
            }
            _ = tick(&mut send_ticker) => {
                if Instant::now() >= end {
                    send_ticker = None;
                    continue;
                }
                seq += 1;
                let text = chat_text(sender.unwrap_or_default(), seq, now_nanos());
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
                result.sent += 1;
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = frame else { continue };
                let at = now_nanos();
                match parse_chat(text.as_str()) {
                    Some((_, 0, _)) => {
                        if !warmed {
                            warmed = true;
                            shared.warm.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some((from, seq, sent_at)) => {
                        let latency = (at.saturating_sub(sent_at) / 1000) as u64;
                        result.seen.push((from, seq, latency, at));
                        shared.received.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        if text.as_str().contains("rate_limited") {
                            result.rate_limited += 1;
                        }
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    result
}

pub async fn chat(target: &Target, options: &ChatOptions) -> anyhow::Result<ChatResult> {
    let city = target
        .cities
        .first()
        .ok_or_else(|| anyhow::anyhow!("the target has no cities"))?;
    let url = target.chat_url(city);
    let (sockets, failed_connections) = open_many(options.members, 64, |_| url.clone()).await;
    let joined = sockets.len();
    anyhow::ensure!(joined > 0, "no member joined");
    let senders = options.senders.min(joined);
    let shared = Arc::new(Shared {
        warm: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
        sent: AtomicUsize::new(0),
    });
    let (phase, phases) = watch::channel(Phase::Warm);
    let mut members = tokio::task::JoinSet::new();
    for (index, (_, socket)) in sockets.into_iter().enumerate() {
        members.spawn(member(
            socket,
            (index < senders).then_some(index),
            options.clone(),
            phases.clone(),
            shared.clone(),
        ));
    }
    super::wait_until(WAIT * 2, || shared.warm.load(Ordering::Relaxed) >= joined).await;
    let ready = shared.warm.load(Ordering::Relaxed);
    // Let the warm-up's last repeats arrive before anything is counted or timed.
    tokio::time::sleep(Duration::from_millis(250)).await;

    let meter = CpuMeter::start(target.pid);
    let first_send = now_nanos();
    phase.send_replace(Phase::Run);
    tokio::time::sleep(options.duration).await;
    // The last ticks: a sender stops at its own end, a moment after this one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    super::wait_until(options.drain, || {
        shared.received.load(Ordering::Relaxed) >= shared.sent.load(Ordering::Relaxed) * joined
    })
    .await;
    let cpu = meter.stop();
    phase.send_replace(Phase::Stop);

    let (mut sent, mut rate_limited) = (0, 0);
    let mut seen_by_member = Vec::with_capacity(joined);
    while let Some(joined_member) = members.join_next().await {
        if let Ok(member) = joined_member {
            sent += member.sent;
            rate_limited += member.rate_limited;
            seen_by_member.push(member.seen);
        }
    }
    let expected = sent * joined;
    let mut latencies = Vec::with_capacity(expected);
    let (mut duplicates, mut out_of_order, mut last_receipt) = (0, 0, first_send);
    for seen in seen_by_member {
        let mut last: Vec<usize> = vec![0; senders];
        let mut got = std::collections::HashSet::with_capacity(seen.len());
        for (from, seq, latency, at) in seen {
            if from >= senders {
                continue;
            }
            if !got.insert((from, seq)) {
                duplicates += 1;
                continue;
            }
            // Behind the highest seen from that sender, as `fanout::Tally` counts it: 1, 5, 2,
            // 3, 4 is three deliveries out of order, not one.
            if seq < last[from] {
                out_of_order += 1;
            }
            last[from] = last[from].max(seq);
            latencies.push(latency);
            last_receipt = last_receipt.max(at);
        }
    }
    let delivered = latencies.len();
    let per_delivery = |seconds: Option<f64>| crate::procfs::per_operation(seconds, delivered);
    let span_s = last_receipt.saturating_sub(first_send) as f64 / 1e9;
    Ok(ChatResult {
        scenario: "chat",
        members: options.members,
        senders,
        rate: options.rate,
        duration_s: options.duration.as_secs_f64(),
        joined,
        failed_connections,
        ready,
        sent,
        rate_limited,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates,
        out_of_order,
        latency: Summary::of(&mut latencies),
        deliveries_per_s: crate::procfs::per_second(delivered, span_s),
        server_us_per_delivery: per_delivery(cpu.server_cpu_s),
        client_us_per_delivery: per_delivery(cpu.client_cpu_s),
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_texts_round_trip_through_a_broadcast() {
        let sent: serde_json::Value = serde_json::from_str(&chat_text(3, 12, 99)).unwrap();
        let broadcast = serde_json::json!({
            "type": "chat", "message": sent["message"], "user": "admin",
        })
        .to_string();
        assert_eq!(parse_chat(&broadcast), Some((3, 12, 99)));
        assert_eq!(
            parse_chat(r#"{"type":"welcome","message":"Welcome in Cairo chat."}"#),
            None
        );
    }
}
