//! wfs: the real-time API of the Weather Forecast Service, served from its AsyncAPI contract.
//!
//! # Layout
//! - [`contract`]: the code `build.rs` generates from `asyncapi/v1-schema.yaml` (types, one
//!   trait per channel, typed connections and clients, `routes`).
//! - [`app`](mod@app): the shared state ([`App`]): store, tokens, hub and bus, alert publishing and the
//!   channel handshake.
//! - [`echo`], [`alert`], [`chat`]: one file per channel, each implementing its trait for [`App`];
//!   [`rate`]: the per-connection chat rate limit.
//! - [`hub`]: per-city fan-out ([`hub::Hub`], one [`hub::Fanout`] per channel, typed by the
//!   message it carries) and the [`hub::Bus`] that carries publications; [`redis_bus`] carries
//!   them across instances; [`health`] reports on both.
//! - [`metrics`]: Prometheus metrics at `/metrics`; [`connections`] feeds them (and the close
//!   log) from the runtime's socket hook.
//! - [`store`]: cities, users and alerts (SQLite or PostgreSQL), a file per table;
//!   [`auth`]: JWT tokens, the signing secret, passwords.
//! - [`http`]: the Host/Origin gate and the access log; [`public_url`]: `--public-url` and the
//!   start-up report of what the gate allows; [`cors`]: CORS for the allowed origins on `/api`
//!   and `/sse/v1/alert`; [`api`]: the REST API (poem-openapi) under `/api`, its bodies bounded
//!   by [`body_limit`]; [`sse`]: alerts as Server-Sent Events; [`pages`]: the browser pages.
//! - [`accounts`]: `wfs user ...` and the admin account on the first start; [`client_addr`]:
//!   who the client of a request is (the peer, or what a trusted proxy says).
//! - [`cli`] with [`connect`] (`wfs connect`), [`publish`] (the client side of `wfs alert`) and
//!   [`data_dir`] (where client commands look, never creating anything).
//! - [`app()`] assembles the route tree; [`serve`] runs it until shutdown, on [`server`]'s
//!   accept loop, which bounds slow and numerous clients with [`admission`]. Nothing else
//!   lives here.

pub mod accounts;
pub mod admission;
pub mod alert;
pub mod api;
pub mod app;
pub mod auth;
pub mod body_limit;
pub mod chat;
pub mod cli;
pub mod client_addr;
pub mod connect;
pub mod connections;
pub mod contract;
pub mod cors;
pub mod data_dir;
pub mod echo;
pub mod health;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod pages;
pub mod public_url;
pub mod publish;
pub mod rate;
pub mod redis_bus;
pub mod server;
pub mod sse;
pub mod store;
pub mod tls;

use std::sync::Arc;

use poem::web::Html;
use poem::{EndpointExt, IntoResponse, get, handler};

// The state moved to `app.rs`; these paths stay for code written against the old layout.
pub use crate::app::{App, HistoryPolicy, PublishError, alert_payload};

/// The contract as written: the single source of truth, served as is.
pub const CONTRACT_YAML: &str = include_str!("../asyncapi/v1-schema.yaml");

/// The contract's HTML docs, rendered by `cargo xtask docs` (kept fresh by `--check` in CI).
pub const DOCS_HTML: &str = include_str!("../docs/index.html");

/// The whole HTTP and WebSocket surface of the service, behind the Host/Origin gate.
pub fn app(
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    policy: http::AccessPolicy,
) -> impl poem::Endpoint {
    let state_metrics = state.metrics.clone();
    let trusted_proxies = state.trusted_proxies.clone();
    let openapi = api::service();
    let (api_spec, api_docs) = (openapi.spec_endpoint(), openapi.swagger_ui());
    let api = openapi;
    pages::routes(contract::routes(state.clone(), config.clone()))
        .at("/asyncapi.yaml", get(contract_yaml))
        // `/docs/` too: links and habits add the slash.
        .at("/docs", get(docs))
        .at("/docs/", get(docs))
        .at("/health", get(health::health))
        .at("/metrics", get(metrics::metrics))
        .nest_no_strip(
            "/api",
            api::json_errors(api)
                .with(body_limit::BodyLimit::new(
                    body_limit::API_BODY_LIMIT,
                    config.header_timeout,
                ))
                .with(cors::cors(&policy)),
        )
        .at("/api/openapi.json", api_spec)
        .nest("/api/docs", api_docs)
        .at(
            "/sse/v1/alert",
            get(sse::alert_stream).with(cors::cors(&policy)),
        )
        .data(state)
        .data(config)
        .with(
            http::Gate::new(policy)
                .counting(state_metrics)
                .trusting(trusted_proxies),
        )
}

/// Serves only `/metrics` on `listener` (`--metrics-listen`) until `shutdown` resolves. No
/// Host check: this listener is meant for the monitoring network, which scrapes by address.
/// It runs on the same accept loop as the main port, with `config`'s timeouts and caps.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<App>,
    config: &wfs_runtime::Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.metrics.serve_separately();
    let route = poem::Route::new()
        .at("/metrics", get(metrics::metrics_only))
        .data(state);
    let limits = server::Limits::from_config(config);
    server::run(server::TcpAcceptor::new(listener)?, route, limits, shutdown).await
}

#[handler]
fn contract_yaml() -> impl IntoResponse {
    CONTRACT_YAML.with_content_type("application/yaml; charset=utf-8")
}

#[handler]
fn docs() -> Html<&'static str> {
    Html(DOCS_HTML)
}

/// Serves on an already bound listener until `shutdown` resolves; then every WebSocket is
/// closed with 1001 after the frames already queued for it, and the server stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    policy: http::AccessPolicy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = server::TcpAcceptor::new(listener)?;
    serve_on(acceptor, state, config, policy, shutdown).await
}

/// [`serve`] over TLS: https and wss on the listener's port, nothing in plain text.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    identity: &tls::Identity,
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    policy: http::AccessPolicy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls::TlsAcceptor::new(server::TcpAcceptor::new(listener)?, identity)
        .map_err(std::io::Error::other)?
        .with_handshake_timeout(config.header_timeout);
    serve_on(acceptor, state, config, policy, shutdown).await
}

async fn serve_on(
    acceptor: impl poem::listener::Acceptor + 'static,
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    policy: http::AccessPolicy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The first server of a process wins; tests that share a config keep the first's counts.
    config.observe(Arc::new(connections::SocketObserver::new(
        state.metrics.clone(),
        state.trusted_proxies.clone(),
    )));
    let sockets = config.clone();
    let shutdown = async move {
        shutdown.await;
        sockets.shut_down().await;
    };
    let limits = server::Limits::from_config(&config);
    server::run(acceptor, app(state, config, policy), limits, shutdown).await
}
