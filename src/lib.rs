//! wfs: the real-time API of the Weather Forecast Service, served from its AsyncAPI contract.
//!
//! # Layout
//! - [`contract`]: the code `build.rs` generates from `asyncapi/v1-schema.yaml` (types, one
//!   trait per channel, typed connections and clients, `routes`).
//! - [`echo`]: the echo channel.
//! - [`App`] and [`app`]: the application state and the poem route tree; [`serve`] runs it.

pub mod contract;
pub mod echo;

use std::sync::Arc;

use poem::listener::TcpAcceptor;
use poem::{EndpointExt, Route, Server};

/// The application: what every channel implementation shares.
#[derive(Debug, Default)]
pub struct App {}

/// The whole HTTP and WebSocket surface of the service.
///
/// Only echo is served so far; once alert and chat implement their traits this becomes
/// `contract::routes`, which requires every channel of the contract.
pub fn app(state: Arc<App>, config: Arc<wfs_runtime::Config>) -> Route {
    contract::mount_ws_v1_echo(Route::new(), state, config)
}

/// Serves `app` on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state, config).boxed(), shutdown, None)
        .await
}
