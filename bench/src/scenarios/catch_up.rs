//! catch-up: clients that reconnect to the alert channel with `since=` after missing M alerts
//! (wfs only: the baselines keep no history). An alert is published and its id kept, M more
//! are published with nobody listening, then each client connects with `since=<that id>`:
//! the time from its reconnection to the last missed alert, each checked in order with no gap
//! and no duplicate; then one live alert is published and timed to its receipt.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::fanout::{alert_text, parse_alert};
use super::{connect, now_nanos};
use crate::Target;
use crate::procfs::{CpuMeter, CpuUse};
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct CatchUpOptions {
    /// Alerts published while the clients are away.
    pub missed: usize,
    /// Clients reconnecting together.
    pub clients: usize,
    /// How long the catch-up, and then the live alert, may take.
    pub drain: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatchUpResult {
    pub scenario: &'static str,
    pub missed: usize,
    pub clients: usize,
    /// The id the clients resumed after.
    pub since: i64,
    /// How long publishing the missed alerts took.
    pub publish_s: f64,
    /// Clients that received every missed alert, in order, once each.
    pub complete: usize,
    /// Missed alerts received out of order, twice, or not at all (over every client).
    pub disordered: usize,
    /// Clients told `history_truncated` first.
    pub truncated: usize,
    pub failed_connections: usize,
    /// Reconnection to the last missed alert, per complete client.
    pub catch_up: Summary,
    /// Missed alerts delivered per second, over every client, from the first reconnection to
    /// the last catch-up.
    pub replayed_per_s: f64,
    /// CPU used by each side during the catch-up.
    pub cpu: CpuUse,
    pub server_us_per_replayed: Option<f64>,
    /// The database server's CPU time per replayed alert, when it runs apart (PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_us_per_replayed: Option<f64>,
    /// Publication to receipt of the live alert after the catch-up, per client.
    pub live: Summary,
    pub live_received: usize,
}

/// What one client saw.
struct Client {
    /// Reconnection to the last missed alert, when every one came in order.
    caught_up: Option<Duration>,
    disordered: usize,
    truncated: bool,
    /// Latency of the live alert, in µs.
    live: Option<u64>,
}

async fn client(
    url: String,
    missed: usize,
    drain: Duration,
    caught_up: mpsc::UnboundedSender<()>,
    mut go_live: watch::Receiver<bool>,
) -> anyhow::Result<Client> {
    let began = Instant::now();
    let mut socket = connect(&url).await?;
    let mut next = 1;
    let mut result = Client {
        caught_up: None,
        disordered: 0,
        truncated: false,
        live: None,
    };
    let deadline = began + drain;
    while next <= missed {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(frame))) = frame else { break };
        let Message::Text(text) = frame else { continue };
        if text.as_str().contains("history_truncated") {
            result.truncated = true;
            continue;
        }
        let Some((seq, _, _)) = parse_alert(text.as_str()) else {
            continue;
        };
        if seq == next {
            next += 1;
        } else {
            result.disordered += 1;
        }
    }
    if next > missed {
        result.caught_up = Some(began.elapsed());
    } else {
        result.disordered += missed + 1 - next;
    }
    let _ = caught_up.send(());
    // The live alert: published once every client has caught up (or given up).
    let _ = tokio::time::timeout(drain, go_live.wait_for(|live| *live)).await;
    let deadline = Instant::now() + drain;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(frame))) = frame else { break };
        let Message::Text(text) = frame else { continue };
        let at = now_nanos();
        if let Some((seq, published, _)) = parse_alert(text.as_str())
            && seq == missed + 1
        {
            result.live = Some((at.saturating_sub(published) / 1000) as u64);
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    Ok(result)
}

pub async fn catch_up(target: &Target, options: &CatchUpOptions) -> anyhow::Result<CatchUpResult> {
    let city = target.cities.first().context("the target has no cities")?;
    let since = target
        .publish(city, "bench catch-up: the last alert seen")
        .await?
        .ok_or_else(|| anyhow::anyhow!("the server gave no alert id (catch-up needs wfs)"))?;
    let started = Instant::now();
    for seq in 1..=options.missed {
        target.publish(city, &alert_text(seq, now_nanos())).await?;
    }
    let publish_s = started.elapsed().as_secs_f64();

    let url = format!("{}&since={since}", target.alert_url(city));
    let (caught_up, mut caught) = mpsc::unbounded_channel();
    let (go_live, live) = watch::channel(false);
    let meter = CpuMeter::start(target.pid).with_database(target.database_pid);
    let began = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..options.clients {
        clients.spawn(client(
            url.clone(),
            options.missed,
            options.drain,
            caught_up.clone(),
            live.clone(),
        ));
    }
    drop(caught_up);
    let deadline = Instant::now() + options.drain + Duration::from_secs(10);
    for _ in 0..options.clients {
        if tokio::time::timeout_at(deadline, caught.recv())
            .await
            .is_err()
        {
            break;
        }
    }
    let catch_up_s = began.elapsed().as_secs_f64();
    let cpu = meter.stop();
    target
        .publish(city, &alert_text(options.missed + 1, now_nanos()))
        .await?;
    go_live.send_replace(true);

    let (mut times, mut lives) = (Vec::new(), Vec::new());
    let (mut complete, mut disordered, mut truncated, mut failed_connections) = (0, 0, 0, 0);
    while let Some(joined) = clients.join_next().await {
        match joined {
            Ok(Ok(client)) => {
                if let Some(took) = client.caught_up {
                    complete += 1;
                    times.push(took.as_micros() as u64);
                }
                disordered += client.disordered;
                truncated += usize::from(client.truncated);
                lives.extend(client.live);
            }
            _ => failed_connections += 1,
        }
    }
    let replayed = complete * options.missed;
    Ok(CatchUpResult {
        scenario: "catch-up",
        missed: options.missed,
        clients: options.clients,
        since,
        publish_s,
        complete,
        disordered,
        truncated,
        failed_connections,
        catch_up: Summary::of(&mut times),
        replayed_per_s: crate::procfs::per_second(replayed, catch_up_s),
        server_us_per_replayed: crate::procfs::per_operation(cpu.server_cpu_s, replayed),
        database_us_per_replayed: crate::procfs::per_operation(cpu.database_cpu_s, replayed),
        cpu,
        live_received: lives.len(),
        live: Summary::of(&mut lives),
    })
}
