//! wfs: the real-time API of the Weather Forecast Service, served from its AsyncAPI contract.
//!
//! # Layout
//! - [`contract`]: the code `build.rs` generates from `asyncapi/v1-schema.yaml` (types, one
//!   trait per channel, typed connections and clients, `routes`).
//! - [`echo`]: the echo channel.
//! - [`App`] and [`app`]: the application state and the poem route tree (the channels, the
//!   contract at `/asyncapi.yaml` and its HTML docs at `/docs`); [`serve`] runs it.

pub mod auth;
pub mod contract;
pub mod echo;
pub mod store;

use std::sync::Arc;

use poem::listener::TcpAcceptor;
use poem::web::Html;
use poem::{EndpointExt, IntoResponse, Route, Server, get, handler};

/// The application: what every channel implementation shares.
#[derive(Debug, Default)]
pub struct App {}

/// The contract as written: the single source of truth, served as is.
pub const CONTRACT_YAML: &str = include_str!("../asyncapi/v1-schema.yaml");

/// The contract's HTML docs, rendered by `cargo xtask docs` (kept fresh by `--check` in CI).
pub const DOCS_HTML: &str = include_str!("../docs/index.html");

/// The whole HTTP and WebSocket surface of the service.
///
/// Only echo is served so far; once alert and chat implement their traits this becomes
/// `contract::routes`, which requires every channel of the contract.
pub fn app(state: Arc<App>, config: Arc<wfs_runtime::Config>) -> Route {
    let route = Route::new()
        .at("/asyncapi.yaml", get(contract_yaml))
        .at("/docs", get(docs));
    contract::mount_ws_v1_echo(route, state, config)
}

#[handler]
fn contract_yaml() -> impl IntoResponse {
    CONTRACT_YAML.with_content_type("application/yaml; charset=utf-8")
}

#[handler]
fn docs() -> Html<&'static str> {
    Html(DOCS_HTML)
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
