//! Hooks through which a server counts and logs what its sockets do, without the runtime
//! depending on a metrics or logging library.
//!
//! A server hands an [`Observer`] to [`crate::Config::observe`]. The socket loop then calls it
//! once per connection (opened, closed) and once per refused upgrade; per frame it only bumps
//! the channel's [`SocketCounters`], plain atomics shared by the channel's connections: one
//! relaxed increment, no lock, no allocation. Without an observer nothing is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use poem::Request;

/// Counters of one channel, shared by all its connections. The server reads them when it is
/// scraped.
#[derive(Debug, Default)]
pub struct SocketCounters {
    open: AtomicI64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
}

impl SocketCounters {
    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Frames received (text and binary; not pings) since the start.
    pub fn frames_in(&self) -> u64 {
        self.frames_in.load(Ordering::Relaxed)
    }

    /// Frames sent (text; not pings or closes) since the start.
    pub fn frames_out(&self) -> u64 {
        self.frames_out.load(Ordering::Relaxed)
    }
}

/// What a server keeps about one connection from its upgrade to its close.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The counters of the connection's channel.
    pub counters: Arc<SocketCounters>,
    /// The channel's name, for the server's logs.
    pub channel: Arc<str>,
    /// Who the client is, as the server wants it logged (an address, never a token).
    pub client: String,
}

/// How a connection ended, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    /// The close code: the one the server sent, else the client's, 1005 for a client's close
    /// without a code, 1006 when the connection dropped without a close frame.
    pub code: u16,
    /// From the upgrade to the end.
    pub duration: Duration,
    /// Frames the client sent (text and binary; not pings).
    pub frames_in: u64,
    /// Frames the server sent (text; not pings or closes).
    pub frames_out: u64,
}

/// Why the runtime refused an upgrade (the server's own refusals it counts itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server is shutting down (HTTP 503).
    ShuttingDown,
    /// `max_connections` are open (HTTP 503).
    AtCapacity,
    /// Not a valid WebSocket upgrade request.
    NotWebSocket,
}

impl Refusal {
    /// A short name for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ShuttingDown => "shutting_down",
            Refusal::AtCapacity => "at_capacity",
            Refusal::NotWebSocket => "not_websocket",
        }
    }
}

/// What a server is told about its sockets.
pub trait Observer: Send + Sync + std::fmt::Debug + 'static {
    /// An upgrade is accepted: the counters its frames go to, and what to log about it.
    fn opened(&self, request: &Request) -> Watch;
    /// A connection ended (called once per [`Observer::opened`] whose upgrade completed).
    fn closed(&self, watch: &Watch, closed: Closed);
    /// The runtime refused an upgrade.
    fn refused(&self, request: &Request, refusal: Refusal);
}

/// One connection's tally, kept by its socket task: plain counts for the close report, and the
/// channel's shared atomics for the server's metrics.
pub(crate) struct Tally {
    watch: Option<(Arc<dyn Observer>, Watch)>,
    started: tokio::time::Instant,
    frames_in: u64,
    frames_out: u64,
    /// The close code, once known.
    pub(crate) code: u16,
}

impl Tally {
    pub(crate) fn new(watch: Option<(Arc<dyn Observer>, Watch)>) -> Tally {
        if let Some((_, watch)) = &watch {
            watch.counters.open.fetch_add(1, Ordering::Relaxed);
        }
        Tally {
            watch,
            started: tokio::time::Instant::now(),
            frames_in: 0,
            frames_out: 0,
            code: 1006,
        }
    }

    #[inline]
    pub(crate) fn frame_in(&mut self) {
        self.frames_in += 1;
        if let Some((_, watch)) = &self.watch {
            watch.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `count` frames went out in one flush: one increment of the shared counter per batch.
    #[inline]
    pub(crate) fn frames_out(&mut self, count: usize) {
        let count = count as u64;
        self.frames_out += count;
        if let Some((_, watch)) = &self.watch {
            watch
                .counters
                .frames_out
                .fetch_add(count, Ordering::Relaxed);
        }
    }
}

/// Reports the end of the connection, however the socket task ended (even cancelled), so the
/// open-connection count cannot drift.
impl Drop for Tally {
    fn drop(&mut self) {
        let Some((observer, watch)) = &self.watch else {
            return;
        };
        watch.counters.open.fetch_sub(1, Ordering::Relaxed);
        observer.closed(
            watch,
            Closed {
                code: self.code,
                duration: self.started.elapsed(),
                frames_in: self.frames_in,
                frames_out: self.frames_out,
            },
        );
    }
}
