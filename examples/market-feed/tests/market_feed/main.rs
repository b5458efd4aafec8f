//! market-feed's tests, one binary: a real server on 127.0.0.1:0, the generated `FeedClient`,
//! and a timeout around every wait.
//!
//! Every frame a test reads goes through `FeedClient::recv`, which checks it against the
//! contract, so each test also proves the server sent only what `asyncapi.yaml` allows.

mod binary;
mod conform;
mod feed;

use std::sync::Arc;
use std::time::Duration;

use market_feed::Market;
use market_feed::contract::feed::{FeedClient, FeedOutbound, FeedParams};
use market_feed::contract::types::{
    MarketChannel, Ping, Subscribe, Subscription, Symbol, Unsubscribe,
};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

/// Time between market ticks in these tests: short, so that pushes come quickly.
pub const TICK: Duration = Duration::from_millis(20);

/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server; stops when dropped.
pub struct Server {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a server with its own market ticking every [`TICK`].
pub async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("the listener's address");
    let market: Arc<Market> = Market::start(TICK);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(market_feed::serve(listener, market, async {
        let _ = stopped.await;
    }));
    Server {
        url: format!("ws://{address}"),
        stop: Some(stop),
    }
}

/// A generated client connected to `server`.
pub async fn connect(server: &Server) -> FeedClient {
    timeout(
        WAIT,
        FeedClient::connect(&server.url, &FeedParams::default()),
    )
    .await
    .expect("the handshake finishes in time")
    .expect("the server accepts the connection")
}

/// The next frame, which must be one the contract allows.
pub async fn recv(client: &mut FeedClient) -> FeedOutbound {
    timeout(WAIT, client.recv())
        .await
        .expect("a frame arrives in time")
        .expect("the frame is one the contract allows")
}

/// The `req_id` of a reply; `None` for a push.
pub fn req_id(frame: &FeedOutbound) -> Option<u64> {
    match frame {
        FeedOutbound::Pong(pong) => Some(pong.req_id.0),
        FeedOutbound::Subscribed(reply) => Some(reply.req_id.0),
        FeedOutbound::Unsubscribed(reply) => Some(reply.req_id.0),
        FeedOutbound::Error(reply) => Some(reply.req_id.0),
        FeedOutbound::Ticker(_) | FeedOutbound::Trade(_) => None,
    }
}

/// A push as (`ticker` or `trade`, symbol); `None` for a reply.
pub fn push(frame: &FeedOutbound) -> Option<(&'static str, String)> {
    match frame {
        FeedOutbound::Ticker(ticker) => Some(("ticker", ticker.symbol.to_string())),
        FeedOutbound::Trade(trade) => Some(("trade", trade.symbol.to_string())),
        _ => None,
    }
}

/// Reads up to the reply to request `id` (the next reply must be it): the reply, and the
/// pushes that arrived before it.
pub async fn reply(client: &mut FeedClient, id: u64) -> (FeedOutbound, Vec<FeedOutbound>) {
    let mut pushes = Vec::new();
    loop {
        let frame = recv(client).await;
        match req_id(&frame) {
            Some(got) => {
                assert_eq!(got, id, "the next reply answers request {id}: {frame:?}");
                return (frame, pushes);
            }
            None => pushes.push(frame),
        }
    }
}

/// Pushes read until `enough` says so, within [`WAIT`]; a reply among them fails the test.
pub async fn pushes_until(
    client: &mut FeedClient,
    mut enough: impl FnMut(&[(&'static str, String)]) -> bool,
) -> Vec<(&'static str, String)> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !enough(&seen) {
        let frame = tokio::time::timeout_at(deadline, client.recv())
            .await
            .unwrap_or_else(|_| panic!("enough pushes within {WAIT:?}; got {seen:?}"))
            .expect("the frame is one the contract allows");
        seen.push(push(&frame).unwrap_or_else(|| panic!("a push, not {frame:?}")));
    }
    seen
}

/// Every push that arrives within `window` (a bounded wait: the window is the timeout).
pub async fn pushes_during(
    client: &mut FeedClient,
    window: Duration,
) -> Vec<(&'static str, String)> {
    let deadline = Instant::now() + window;
    let mut seen = Vec::new();
    while let Ok(frame) = tokio::time::timeout_at(deadline, client.recv()).await {
        let frame = frame.expect("the frame is one the contract allows");
        seen.push(push(&frame).unwrap_or_else(|| panic!("a push, not {frame:?}")));
    }
    seen
}

/// How many of `seen` are `kind` updates of `symbol`.
pub fn count(seen: &[(&'static str, String)], kind: &str, symbol: &str) -> usize {
    seen.iter()
        .filter(|(k, s)| *k == kind && s == symbol)
        .count()
}

pub fn symbols(names: &[&str]) -> Vec<Symbol> {
    names
        .iter()
        .map(|name| Symbol::try_from(*name).expect("a symbol the contract accepts"))
        .collect()
}

pub fn ping(req_id: u64) -> Ping {
    Ping {
        method: "ping".to_owned(),
        req_id: req_id.into(),
    }
}

pub fn subscribe(req_id: u64, channel: MarketChannel, names: &[&str]) -> Subscribe {
    Subscribe {
        method: "subscribe".to_owned(),
        req_id: req_id.into(),
        params: Subscription {
            channel,
            symbols: symbols(names),
        },
    }
}

pub fn unsubscribe(req_id: u64, channel: MarketChannel, names: &[&str]) -> Unsubscribe {
    Unsubscribe {
        method: "unsubscribe".to_owned(),
        req_id: req_id.into(),
        params: Subscription {
            channel,
            symbols: symbols(names),
        },
    }
}
