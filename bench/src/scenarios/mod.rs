//! The scenarios. Each connects real WebSocket clients (tokio-tungstenite) to a
//! [`Target`](crate::Target), bounded in count and time, and returns what it measured.

mod catch_up;
mod chat;
mod churn;
mod echo;
mod fanout;
mod handshake;
mod idle;
mod login_burst;
mod publish;
mod slowloris;
mod two_instances;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use catch_up::{CatchUpOptions, CatchUpResult, catch_up};
pub use chat::{ChatOptions, ChatResult, chat};
pub use churn::{ChurnOptions, ChurnResult, churn};
pub use echo::{EchoOptions, EchoResult, echo};
pub use fanout::{FanoutOptions, FanoutResult, Transport, fanout};
pub use handshake::{HandshakeOptions, HandshakeResult, handshake};
pub use idle::{IdleOptions, IdleResult, idle};
pub use login_burst::{LoginBurstOptions, LoginBurstResult, login_burst};
pub use publish::{PublishOptions, PublishResult, publish};
pub use slowloris::{SlowlorisOptions, SlowlorisResult, slowloris};
pub use two_instances::{Instance, TwoInstancesOptions, TwoInstancesResult, two_instances};

/// A client connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connection attempt, a handshake or a reply that takes longer than this has failed.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `done` every 5 ms until it holds or `limit` has passed; whether it held. For the
/// counters the listeners bump (warm subscribers, deliveries received).
pub(crate) async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Opens a WebSocket to `url`, bounded by [`WAIT`]. The client's buffers are small (4 KiB
/// read buffer), so that 10,000 connections fit the load generator's memory comfortably.
pub async fn connect(url: &str) -> anyhow::Result<Socket> {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4 * 1024;
    config.write_buffer_size = 0;
    let (socket, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(
            url,
            Some(config),
            true,
            crate::tls::config().map(tokio_tungstenite::Connector::Rustls),
        ),
    )
    .await
    .context("no handshake within 10 s")?
    .context("handshake failed")?;
    Ok(socket)
}

/// Wall-clock nanoseconds since the Unix epoch: the publisher and the subscribers run in
/// different tasks (or processes) on one machine, so they share this clock.
pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default()
}

/// Opens `count` connections with at most `concurrency` handshakes in flight; `url(i)` names
/// the address of connection `i`. Answers the sockets that opened (by index) and how many
/// failed.
pub async fn open_many(
    count: usize,
    concurrency: usize,
    url: impl Fn(usize) -> String,
) -> (Vec<(usize, Socket)>, usize) {
    open_all(count, concurrency, |index| {
        let url = url(index);
        async move { connect(&url).await }
    })
    .await
}

/// Runs `open(i)` for `i` in `0..count` with at most `concurrency` of them in flight, each
/// started as soon as one ends. Answers what opened (by index) and how many failed.
pub async fn open_all<T, F, Fut>(
    count: usize,
    concurrency: usize,
    open: F,
) -> (Vec<(usize, T)>, usize)
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let Ok(permit) = semaphore.clone().acquire_owned().await else {
            break;
        };
        let opening = open(index);
        tasks.spawn(async move {
            let opened = opening.await;
            drop(permit);
            (index, opened)
        });
    }
    let mut opened = Vec::with_capacity(count);
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, Ok(item))) => opened.push((index, item)),
            _ => failed += 1,
        }
    }
    opened.sort_by_key(|(index, _)| *index);
    (opened, failed)
}
