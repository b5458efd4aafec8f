//! market-feed: a market-data WebSocket service generated from its own AsyncAPI document.
//!
//! It is the proof that the generator is not tied to the Weather Forecast Service: one address
//! (`/v1/feed`), requests answered by replies that carry the request's `req_id` (`ping`,
//! `subscribe`, `unsubscribe`), and pushes (`ticker`, `trade`) for what each client
//! subscribed to. Nothing here is specific to wfs: the crate depends on `wfs-runtime` and
//! builds its contract code with `wfs-codegen` in `build.rs`, as any user's crate would.
//!
//! # Layout
//! - [`contract`]: the code `build.rs` generates from `asyncapi.yaml` (the only `include!`).
//! - [`market`]: the in-memory market: listed symbols, deterministic ticks published on an
//!   interval, and who is subscribed to what.
//! - `feed`: `impl FeedChannel for Market`, the requests and their replies.
//! - [`serve`]: the route tree on a listener until shutdown.

pub mod contract {
    //! Generated from `asyncapi.yaml` by `build.rs`: types, the `FeedChannel` trait, the
    //! typed `FeedConnection` and `FeedClient`, and `routes`.
    include!(concat!(env!("OUT_DIR"), "/contract.rs"));
}
mod feed;
pub mod market;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wfs_runtime::poem::Server;
use wfs_runtime::poem::listener::TcpAcceptor;

pub use market::Market;

/// The address the feed is served at (the contract's channel address).
pub const FEED_PATH: &str = "/v1/feed";

/// Serves the feed of `market` on an already bound listener until `shutdown` resolves; then
/// every WebSocket is closed with 1001 after the frames already queued for it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    market: Arc<Market>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = Arc::new(wfs_runtime::Config::default());
    let route = contract::routes(market, config.clone());
    let sockets = config.clone();
    let shutdown = async move {
        shutdown.await;
        sockets.shut_down().await;
    };
    Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
        .run_with_graceful_shutdown(route, shutdown, Some(Duration::from_secs(5)))
        .await
}
