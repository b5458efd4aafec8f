//! churn: connect, one echo, close, at a fixed rate; the server's memory and sockets before
//! and after.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{WAIT, connect};
use crate::Target;
use crate::procfs::Snapshot;
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct ChurnOptions {
    /// Cycles started per second.
    pub rate: u32,
    /// Unmeasured cycles at the same rate first, so that "before" includes what the first
    /// connections allocate once (pools, caches).
    pub warmup: Duration,
    pub duration: Duration,
    /// Pause before each memory reading.
    pub settle: Duration,
    /// Cycles in flight at most; a tick that finds none free is skipped (and counted).
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChurnResult {
    pub scenario: &'static str,
    pub rate: u32,
    pub duration_s: f64,
    pub cycles: usize,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The server as it was given to the scenario.
    pub start: Snapshot,
    /// After the warm-up cycles.
    pub before: Snapshot,
    /// After the measured cycles.
    pub after: Snapshot,
    /// (after - before) / before, in percent.
    pub rss_change_pct: Option<f64>,
    /// One cycle: connect, echo, close handshake.
    pub cycle: Summary,
}

/// Connect, send one message, read the reply, close (and wait for the server's close).
async fn cycle(url: String) -> anyhow::Result<()> {
    let mut socket = connect(&url).await?;
    tokio::time::timeout(WAIT, async {
        socket.send(Message::text(r#"{"message":"churn"}"#)).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_))) => break,
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => anyhow::bail!("closed before the reply"),
            }
        }
        socket.close(None).await?;
        while let Some(Ok(_)) = socket.next().await {}
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("cycle took over 10 s"))?
}

/// Runs cycles at `rate` for `duration`; answers (ok, failed, skipped, cycle times in µs).
async fn run(
    target: &Target,
    rate: u32,
    duration: Duration,
    max_in_flight: usize,
) -> (usize, usize, usize, Vec<u64>) {
    let semaphore = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    let mut skipped = 0;
    while Instant::now() < end {
        ticker.tick().await;
        let Ok(permit) = semaphore.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let url = target.echo_url();
        tasks.spawn(async move {
            let began = Instant::now();
            let result = cycle(url).await;
            drop(permit);
            (result.is_ok(), began.elapsed().as_micros() as u64)
        });
    }
    let (mut ok, mut failed, mut times) = (0, 0, Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((true, took)) => {
                ok += 1;
                times.push(took);
            }
            _ => failed += 1,
        }
    }
    (ok, failed, skipped, times)
}

pub async fn churn(target: &Target, options: &ChurnOptions) -> anyhow::Result<ChurnResult> {
    let start = Snapshot::of(target.pid);
    run(target, options.rate, options.warmup, options.max_in_flight).await;
    tokio::time::sleep(options.settle).await;
    let before = Snapshot::of(target.pid);
    let (ok, failed, skipped, mut times) = run(
        target,
        options.rate,
        options.duration,
        options.max_in_flight,
    )
    .await;
    tokio::time::sleep(options.settle).await;
    let after = Snapshot::of(target.pid);
    let rss_change_pct = match (before.rss_kib, after.rss_kib) {
        (Some(before), Some(after)) if before > 0 => {
            Some((after as f64 - before as f64) * 100.0 / before as f64)
        }
        _ => None,
    };
    Ok(ChurnResult {
        scenario: "churn",
        rate: options.rate,
        duration_s: options.duration.as_secs_f64(),
        cycles: ok + failed,
        ok,
        failed,
        skipped,
        start,
        before,
        after,
        rss_change_pct,
        cycle: Summary::of(&mut times),
    })
}
