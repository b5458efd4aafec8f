//! login-burst: N wrong-password logins at once (`POST /api/jwt/obtain`), and the server's
//! resident memory before, at its peak during the burst (sampled every 10 ms), and a while
//! after. Each password check is an argon2 hash (tens of MiB each), so an unbounded burst
//! shows here as RSS.
//!
//! Each attempt comes from its own loopback address and names its own (unknown) user, so
//! per-address and per-user login limits do not cut the burst short: what is measured is
//! the bound on the hashing itself. (wfs hashes for unknown users too, so that the answer
//! takes as long as for a known one.)

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;

use super::WAIT;
use crate::Target;
use crate::procfs;

#[derive(Debug, Clone)]
pub struct LoginBurstOptions {
    pub logins: usize,
    /// How long after the burst the memory is read again.
    pub after: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginBurstResult {
    pub scenario: &'static str,
    pub logins: usize,
    /// How many logins got each HTTP status (0: no answer within 60 s).
    pub statuses: BTreeMap<u16, usize>,
    /// From the first request to the last answer.
    pub burst_s: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub after_s: f64,
}

/// One wrong-password login from `from`: the HTTP status, 0 on no answer.
async fn login(server: SocketAddr, from: Ipv4Addr, user: &str) -> u16 {
    let attempt = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
        let mut stream = socket.connect(server).await?;
        let body =
            serde_json::json!({ "username": user, "password": "wrong password" }).to_string();
        let request = format!(
            "POST /api/jwt/obtain HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let status = String::from_utf8_lossy(&answer)
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or(0);
        anyhow::Ok(status)
    };
    // Hashes queue behind each other: allow far more than one check takes.
    match tokio::time::timeout(WAIT * 6, attempt).await {
        Ok(Ok(status)) => status,
        _ => 0,
    }
}

pub async fn login_burst(
    target: &Target,
    options: &LoginBurstOptions,
) -> anyhow::Result<LoginBurstResult> {
    let pid = target.pid;
    let rss = move || pid.and_then(procfs::rss_kib);
    let rss_before_kib = rss();
    let started = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for n in 0..options.logins {
        let from = Ipv4Addr::new(127, 0, 2, u8::try_from(n % 250 + 1).unwrap_or(1));
        let server = target.address;
        logins.spawn(async move { login(server, from, &format!("nobody-{n}")).await });
    }
    let mut rss_peak_kib = rss_before_kib;
    let mut statuses = BTreeMap::new();
    let mut sampler = tokio::time::interval(Duration::from_millis(10));
    while !logins.is_empty() {
        tokio::select! {
            joined = logins.join_next() => {
                if let Some(joined) = joined {
                    *statuses.entry(joined.unwrap_or(0)).or_insert(0) += 1;
                }
            }
            _ = sampler.tick() => {
                rss_peak_kib = rss_peak_kib.max(rss());
            }
        }
    }
    let burst_s = started.elapsed().as_secs_f64();
    rss_peak_kib = rss_peak_kib.max(rss());
    let after_started = Instant::now();
    tokio::time::sleep(options.after).await;
    Ok(LoginBurstResult {
        scenario: "login-burst",
        logins: options.logins,
        statuses,
        burst_s,
        rss_before_kib,
        rss_peak_kib,
        rss_after_kib: rss(),
        after_s: after_started.elapsed().as_secs_f64(),
    })
}
