//! echo: N connections, each sending its next message as soon as the previous reply is back.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{WAIT, open_many};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse};
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct EchoOptions {
    pub connections: usize,
    /// Run, unmeasured, before the measurement starts.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
    /// Length of the `message` string in each frame.
    pub payload: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EchoResult {
    pub scenario: &'static str,
    pub connections: usize,
    pub failed_connections: usize,
    pub duration_s: f64,
    /// Round trips completed within the measured window.
    pub messages: usize,
    pub messages_per_s: f64,
    pub rtt: Summary,
    /// Replies that differed from what was sent.
    pub mismatched: usize,
    /// Connections that ended early (closed, or no reply within 10 s).
    pub errors: usize,
    /// CPU used by each side during the measured window (saturated at `seconds`).
    pub cpu: CpuUse,
    /// The server's CPU time per round trip, in µs: what its cost per echo is, whether or not
    /// the load generator kept it busy.
    pub server_us_per_message: Option<f64>,
}

pub async fn echo(target: &Target, options: &EchoOptions) -> anyhow::Result<EchoResult> {
    let url = target.echo_url();
    let (sockets, failed_connections) = open_many(options.connections, 64, |_| url.clone()).await;
    anyhow::ensure!(!sockets.is_empty(), "no echo connection opened");
    let text = serde_json::json!({ "message": "x".repeat(options.payload) }).to_string();
    let measure_from = Instant::now() + options.warmup;
    let measure_to = measure_from + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (_, mut socket) in sockets {
        let text = text.clone();
        tasks.spawn(async move {
            let mut rtts = Vec::new();
            let (mut mismatched, mut failed) = (0, false);
            loop {
                let sent = Instant::now();
                if sent >= measure_to {
                    break;
                }
                if socket.send(Message::text(text.clone())).await.is_err() {
                    failed = true;
                    break;
                }
                let reply = loop {
                    match tokio::time::timeout(WAIT, socket.next()).await {
                        Ok(Some(Ok(Message::Text(reply)))) => break Some(reply),
                        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                        _ => break None,
                    }
                };
                let Some(reply) = reply else {
                    failed = true;
                    break;
                };
                let received = Instant::now();
                if reply.as_str() != text {
                    mismatched += 1;
                }
                if sent >= measure_from && received <= measure_to {
                    rtts.push((received - sent).as_micros() as u64);
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
            (rtts, mismatched, failed)
        });
    }
    let wait_until = |at: Instant| tokio::time::sleep_until(at);
    wait_until(measure_from).await;
    let meter = CpuMeter::start(target.pid);
    wait_until(measure_to).await;
    let cpu = meter.stop();
    let mut rtts = Vec::new();
    let (mut mismatched, mut errors) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((mut samples, bad, failed)) => {
                rtts.append(&mut samples);
                mismatched += bad;
                errors += usize::from(failed);
            }
            Err(_) => errors += 1,
        }
    }
    let messages = rtts.len();
    let duration_s = options.duration.as_secs_f64();
    Ok(EchoResult {
        scenario: "echo",
        connections: options.connections,
        failed_connections,
        duration_s,
        messages,
        messages_per_s: messages as f64 / duration_s,
        rtt: Summary::of(&mut rtts),
        mismatched,
        errors,
        server_us_per_message: crate::procfs::per_operation(cpu.server_cpu_s, messages),
        cpu,
    })
}
