//! wfs-bench: the load generator of `cargo xtask bench`, and the ceiling server it compares
//! against.
//!
//! # Layout
//! - [`target`]: the server under test (address, paths, how alerts are published, its pid).
//! - [`scenarios`]: echo, fanout (over WebSocket or SSE; also the burst), idle, churn,
//!   slowloris, login-burst, handshake, catch-up, chat and publish; each takes its options and
//!   a target and returns a serialisable result, which the `wfs-bench` binary prints as one
//!   JSON line.
//! - [`sse`]: the few lines of Server-Sent Events client the SSE fan-out needs.
//! - [`tls`]: the client side of TLS, trusting only the server's own certificate.
//! - [`ceiling`]: baseline (a), the minimal tokio-tungstenite echo and broadcast server, with
//!   no framework and no validation (binary `wfs-bench-ceiling`).
//! - [`axum_server`]: baseline (d), the same echo and fan-out written as axum's WebSocket
//!   examples are (binary `wfs-bench-axum`).
//! - [`fastws`]: baseline (e), the ceiling's shape on `fastwebsockets` (binary
//!   `wfs-bench-fastws`).
//! - [`http`]: the few HTTP/1.1 requests the load generator makes (log in, publish), written
//!   by hand so that every server pays the same, visible, cost for a publication.
//! - [`procfs`]: a server's resident memory, open sockets and CPU time (and its database's,
//!   when that is PostgreSQL), read from `/proc`.
//! - [`syscalls`]: the server's write system calls over a window, counted with `perf stat`.
//! - [`stats`]: latency summaries (p50, p99, max).
//!
//! Every wait is bounded by a timeout and every load loop by a count and a time, so a run
//! against a server that stops answering ends with an error instead of hanging.

pub mod axum_server;
pub mod ceiling;
pub mod fastws;
pub mod http;
pub mod procfs;
pub mod scenarios;
pub mod sse;
pub mod stats;
pub mod syscalls;
pub mod target;
pub mod tls;

pub use target::{Publish, Target};

/// Raises this process's soft limit of open files to its hard limit: 10,000 connections need
/// 10,000 descriptors. Returns the soft limit now in force.
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024),
    }
}

/// The `main` of a baseline server binary (`wfs-bench-ceiling`, `-axum`, `-fastws`): reads
/// `[--listen ADDR]` (default `127.0.0.1:0`), binds, prints `listening on ADDR` once bound (what
/// `cargo xtask bench` waits for), and runs `serve` on a multi-threaded runtime.
pub fn run_baseline<F, Fut>(name: &str, serve: F) -> anyhow::Result<()>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    use anyhow::Context;
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().context("--listen needs an address")?,
            other => anyhow::bail!("unknown argument {other}; usage: {name} [--listen ADDR]"),
        }
    }
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener).await.context("accept failed")
    })
}
