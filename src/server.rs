//! The accept loop and the HTTP/1.1 connection around each request, in place of poem's
//! `Server`, so that clients that never finish a request cannot hold the server's sockets.
//!
//! poem's `Server` builds hyper's connection without a timer, so it has no header-read timeout
//! (a client that never finishes its headers keeps its socket forever), reads the first bytes
//! of every connection without a deadline to guess the HTTP version, and retries a failed
//! accept at once (at the file-descriptor limit, `EMFILE` spins a core). Here:
//! - hyper's own `header_read_timeout` closes a connection whose request head (the first, or
//!   the next one on a kept-alive connection) is not complete in time. Over TLS the handshake
//!   runs inside the first read, so it is covered too (and [`crate::tls`] bounds it as well);
//! - [`Admission`] caps connections per client IP and pending connections (no complete request
//!   head yet), evicting the oldest pending one when full;
//! - an accept that fails for lack of descriptors or memory pauses the loop, doubling the
//!   pause up to a second, instead of retrying at once.
//!
//! Requests reach the poem endpoint exactly as through poem's server (same request
//! conversion, same upgrade path for WebSockets). Only HTTP/1.1 is spoken: WebSockets need
//! it, and TLS offers nothing else (ALPN).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};

use crate::admission::{Admission, Lease, Refusal};

/// The transport limits of one server (from [`wfs_runtime::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections_per_ip: usize,
    /// 0: half the process's file-descriptor limit.
    pub max_pending_connections: usize,
    /// How long connections may take to finish once a shutdown begins.
    pub grace: Duration,
}

impl Limits {
    pub fn from_config(config: &wfs_runtime::Config) -> Limits {
        Limits {
            header_timeout: config.header_timeout,
            max_connections_per_ip: config.max_connections_per_ip,
            max_pending_connections: config.max_pending_connections,
            grace: config.close_timeout,
        }
    }

    /// The pending cap: as configured, or half the descriptors this process may open, so
    /// that stalled clients can never take the descriptors answered clients need.
    pub fn pending_cap(&self) -> usize {
        if self.max_pending_connections > 0 {
            return self.max_pending_connections;
        }
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        usize::try_from(limit / 2).unwrap_or(usize::MAX).max(16)
    }
}

/// Connections the kernel completes and queues before the accept loop takes them: a burst
/// of clients (a reconnect storm after a restart) must not find the queue full. The standard
/// library's 128 is too few; the kernel cuts this to `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener on `address` (`host:port`; the first address it resolves to) with a
/// backlog of [`LISTEN_BACKLOG`].
pub async fn bind(address: &str) -> io::Result<tokio::net::TcpListener> {
    let resolved = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolves to nothing",
            )
        })?;
    let socket = match resolved {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As the standard library does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts TCP connections with Nagle's algorithm off (`TCP_NODELAY`), as WebSocket servers
/// do: a frame, a handshake's answer or a TLS record leaves as soon as it is written, instead
/// of waiting behind an unacknowledged segment for the peer's delayed ACK (40 ms on Linux; it
/// made every WebSocket upgrade over TLS take 40 ms, docs/benchmarks.md).
pub struct TcpAcceptor {
    listener: tokio::net::TcpListener,
    local: LocalAddr,
}

impl TcpAcceptor {
    pub fn new(listener: tokio::net::TcpListener) -> io::Result<TcpAcceptor> {
        let local = LocalAddr(listener.local_addr()?.into());
        Ok(TcpAcceptor { listener, local })
    }
}

impl Acceptor for TcpAcceptor {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![self.local.clone()]
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, remote) = self.listener.accept().await?;
        // Fails only for a socket already reset; its request then fails on its own.
        let _ = stream.set_nodelay(true);
        Ok((
            stream,
            self.local.clone(),
            RemoteAddr(remote.into()),
            Scheme::HTTP,
        ))
    }
}

/// The longest pause of the accept loop after a failed accept.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// What a client over its per-address cap reads before the connection closes.
const TOO_MANY: &str = "Too many connections from your address; close some first.";

/// Serves `endpoint` on the connections of `acceptor` until `shutdown` resolves; then stops
/// accepting, lets each connection finish its current request, and waits for them at most
/// [`Limits::grace`].
pub async fn run<A, E>(
    mut acceptor: A,
    endpoint: E,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()>
where
    A: Acceptor + 'static,
    E: Endpoint + 'static,
{
    let endpoint: Arc<poem::endpoint::BoxEndpoint<'static>> =
        Arc::new(endpoint.map_to_response().boxed());
    let admission = Admission::new(limits.max_connections_per_ip, limits.pending_cap());
    tracing::info!(
        header_timeout_s = limits.header_timeout.as_secs_f32(),
        max_connections_per_ip = limits.max_connections_per_ip,
        max_pending_connections = admission.max_pending(),
        "transport limits"
    );
    let (stopping, stop_signal) = watch::channel(false);
    // Each connection task holds a sender; `recv` answers `None` once all have ended.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let mut pause = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        let (io, local, remote, scheme) = match accepted {
            Ok(accepted) => {
                pause = Duration::ZERO;
                accepted
            }
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                // Out of descriptors or memory: the pending connection stays in the backlog
                // and the listener stays readable, so retrying at once would spin.
                if pause.is_zero() {
                    tracing::warn!(%error, "cannot accept connections; pausing the accept loop until it works again");
                }
                pause = (pause * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_PAUSE);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let ip = remote.as_socket_addr().map(|address| address.ip());
        let lease = match admission.admit(ip) {
            Ok(lease) => lease,
            Err(refusal) => {
                tokio::spawn(refuse(io, refusal));
                continue;
            }
        };
        let connection = Connection {
            endpoint: endpoint.clone(),
            local,
            remote,
            scheme,
            lease: Arc::new(lease),
        };
        tokio::spawn(connection.serve(io, limits, stop_signal.clone(), alive.clone()));
    }
    drop(acceptor);
    stopping.send_replace(true);
    drop(alive);
    let _ = tokio::time::timeout(limits.grace * 2, all_ended.recv()).await;
    Ok(())
}

/// Errors that concern one connection only (it went away before it was accepted).
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Tells a client over its per-address cap why, then closes (bounded: it may not read).
async fn refuse<Io: AsyncWrite + Unpin>(mut io: Io, refusal: Refusal) {
    tracing::debug!(%refusal, "connection refused");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{TOO_MANY}",
        TOO_MANY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(response.as_bytes()).await?;
        io.shutdown().await
    })
    .await;
}

struct Connection {
    endpoint: Arc<poem::endpoint::BoxEndpoint<'static>>,
    local: LocalAddr,
    remote: RemoteAddr,
    scheme: Scheme,
    lease: Arc<Lease>,
}

impl Connection {
    async fn serve<Io>(
        self,
        io: Io,
        limits: Limits,
        mut stop: watch::Receiver<bool>,
        _alive: mpsc::Sender<()>,
    ) where
        Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let lease = self.lease.clone();
        let io = Counted {
            inner: io,
            _lease: self.lease.clone(),
        };
        let Connection {
            endpoint,
            local,
            remote,
            scheme,
            lease: answered,
        } = self;
        let service = hyper::service::service_fn(move |request| {
            answered.answered();
            let request: poem::Request =
                (request, local.clone(), remote.clone(), scheme.clone()).into();
            let endpoint = endpoint.clone();
            async move {
                let response = endpoint.get_response(request).await;
                Ok::<_, Infallible>(hyper::Response::<BoxBody<Bytes, io::Error>>::from(response))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            _ = &mut connection => return,
            () = lease.evicted() => return,
            _ = stop.wait_for(|stopping| *stopping) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(limits.grace, connection).await;
    }
}

/// A connection's stream, holding its [`Lease`] for as long as the stream lives: through an
/// upgrade, that is until the WebSocket closes.
struct Counted<Io> {
    inner: Io,
    _lease: Arc<Lease>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
