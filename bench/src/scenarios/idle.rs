//! idle: C echo connections held open; the server's resident memory before and after, per
//! connection.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{WAIT, open_many};
use crate::Target;
use crate::procfs::Snapshot;

#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub connections: usize,
    /// Pause after the last connection opened, before memory is read.
    pub settle: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub scenario: &'static str,
    pub connections: usize,
    pub opened: usize,
    pub failed_connections: usize,
    pub connect_s: f64,
    pub before: Snapshot,
    pub after: Snapshot,
    /// (after - before) / opened, in bytes.
    pub bytes_per_connection: Option<f64>,
    /// Connections checked with an echo round trip after the measurement, and how many answered.
    pub checked: usize,
    pub alive: usize,
}

pub async fn idle(target: &Target, options: &IdleOptions) -> anyhow::Result<IdleResult> {
    let before = Snapshot::of(target.pid);
    let url = target.echo_url();
    let started = Instant::now();
    let (mut sockets, failed_connections) =
        open_many(options.connections, 128, |_| url.clone()).await;
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(options.settle).await;
    let after = Snapshot::of(target.pid);
    let opened = sockets.len();
    let bytes_per_connection = match (before.rss_kib, after.rss_kib) {
        (Some(before), Some(after)) if opened > 0 => {
            Some((after as f64 - before as f64) * 1024.0 / opened as f64)
        }
        _ => None,
    };
    // Still open and served? A sample answers one echo each.
    let checked = opened.min(100);
    let mut alive = 0;
    let text = r#"{"message":"still there?"}"#;
    for (_, socket) in sockets.iter_mut().take(checked) {
        let answered = tokio::time::timeout(WAIT, async {
            socket.send(Message::text(text)).await.ok()?;
            loop {
                match socket.next().await? {
                    Ok(Message::Text(_)) => return Some(()),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        })
        .await;
        alive += usize::from(matches!(answered, Ok(Some(()))));
    }
    drop(sockets);
    Ok(IdleResult {
        scenario: "idle",
        connections: options.connections,
        opened,
        failed_connections,
        connect_s,
        before,
        after,
        bytes_per_connection,
        checked,
        alive,
    })
}
