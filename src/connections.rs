//! What the server counts and logs about each WebSocket connection: the runtime's
//! [`Observer`] hook, feeding [`Metrics`] and one log line per closed connection.
//!
//! The close line names the channel, the close code, the duration, the frames each way and the
//! client's address; never the query string, which carries `access_token`.

use std::sync::Arc;

use poem::Request;
use wfs_runtime::observe::{Closed, Observer, Refusal, Watch};

use crate::client_addr::{TrustedProxies, client_ip};
use crate::metrics::Metrics;

/// The channel a request path addresses: `/ws/v1/chat` -> `chat`, `/sse/v1/alert` -> `alert`.
pub fn channel_of(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// The client's address as logged: the TCP peer (`127.0.0.1:50312`), or the address a trusted
/// proxy names in `X-Forwarded-For` (`203.0.113.7`, see [`crate::client_addr`]).
pub fn client_of(request: &Request, trusted: &TrustedProxies) -> String {
    let remote = request.remote_addr();
    match (remote.as_socket_addr(), client_ip(request, trusted)) {
        (Some(peer), Some(client)) if peer.ip().to_canonical() != client => client.to_string(),
        (Some(peer), _) => peer.to_string(),
        (None, _) => remote.to_string(),
    }
}

/// The runtime hook of this server.
#[derive(Debug)]
pub struct SocketObserver {
    metrics: Arc<Metrics>,
    trusted_proxies: TrustedProxies,
}

impl SocketObserver {
    pub fn new(metrics: Arc<Metrics>, trusted_proxies: TrustedProxies) -> SocketObserver {
        SocketObserver {
            metrics,
            trusted_proxies,
        }
    }
}

impl Observer for SocketObserver {
    fn opened(&self, request: &Request) -> Watch {
        let channel = channel_of(request.uri().path());
        Watch {
            counters: self.metrics.socket_counters(channel),
            channel: Arc::from(channel),
            client: client_of(request, &self.trusted_proxies),
        }
    }

    fn closed(&self, watch: &Watch, closed: Closed) {
        self.metrics.closed(&watch.channel, closed.code);
        tracing::info!(
            channel = %watch.channel,
            code = closed.code,
            duration_ms = closed.duration.as_millis() as u64,
            frames_in = closed.frames_in,
            frames_out = closed.frames_out,
            client = %watch.client,
            "websocket closed"
        );
    }

    fn refused(&self, request: &Request, refusal: Refusal) {
        self.metrics.refused(
            channel_of(request.uri().path()),
            "websocket",
            refusal.as_str(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_by_the_last_path_segment() {
        assert_eq!(channel_of("/ws/v1/chat"), "chat");
        assert_eq!(channel_of("/sse/v1/alert"), "alert");
        assert_eq!(channel_of("/ws/v1/echo/"), "echo");
    }
}
