//! wfs: the real-time API of the Weather Forecast Service, served from its AsyncAPI contract.
//!
//! # Layout
//! - [`contract`]: the code `build.rs` generates from `asyncapi/v1-schema.yaml` (types, one
//!   trait per channel, typed connections and clients, `routes`).
//! - [`echo`], [`alert`], [`chat`]: one file per channel, each implementing its trait for [`App`];
//!   [`rate`]: the per-connection chat rate limit.
//! - [`hub`]: per-city fan-out ([`hub::Hub`]) and the [`hub::Bus`] that carries publications;
//!   [`redis_bus`] carries them across instances; [`health`] reports on both.
//! - [`store`]: cities, users and alerts (SQLite); [`auth`]: JWT tokens.
//! - [`http`]: the Host/Origin gate; [`cors`]: CORS for the allowed origins on `/api` and
//!   `/sse/v1/alert`; [`api`]: the REST API (poem-openapi) under `/api`;
//!   [`sse`]: alerts as Server-Sent Events; [`pages`]: the browser pages.
//! - [`app`] builds the route tree; [`serve`] runs it until shutdown.

pub mod alert;
pub mod api;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod connect;
pub mod contract;
pub mod cors;
pub mod data_dir;
pub mod echo;
pub mod health;
pub mod http;
pub mod hub;
pub mod pages;
pub mod publish;
pub mod rate;
pub mod redis_bus;
pub mod sse;
pub mod store;
pub mod tls;

use std::sync::Arc;

use poem::listener::TcpAcceptor;
use poem::web::Html;
use poem::{EndpointExt, IntoResponse, Server, get, handler};
use uuid::Uuid;
use wfs_runtime::{Frame, Handshake, ParamsError, Reject};

use crate::contract::types::Alert;
use crate::hub::{Bus, BusError, Hub, LocalBus, Publication, Topic};
use crate::store::{City, Store, StoreError, User};

/// The contract as written: the single source of truth, served as is.
pub const CONTRACT_YAML: &str = include_str!("../asyncapi/v1-schema.yaml");

/// The contract's HTML docs, rendered by `cargo xtask docs` (kept fresh by `--check` in CI).
pub const DOCS_HTML: &str = include_str!("../docs/index.html");

/// What every channel implementation shares.
pub struct App {
    pub store: Store,
    pub jwt: auth::Jwt,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    /// How much alert history each city keeps for clients that reconnect with `since`.
    pub history: HistoryPolicy,
    /// How fast each chat connection may send.
    pub chat_limit: rate::ChatLimit,
    /// Alerts are published one at a time, so their ids and their delivery order agree.
    /// Alerts are published by operators, rarely; this costs nothing.
    alert_order: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("hub", &self.hub.stats())
            .finish_non_exhaustive()
    }
}

/// How much alert history each city keeps: at most `keep` alerts, none older than `max_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    pub keep: u32,
    pub max_age: std::time::Duration,
}

impl Default for HistoryPolicy {
    fn default() -> HistoryPolicy {
        HistoryPolicy {
            keep: 1000,
            max_age: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The contract's `Alert` for a stored alert.
pub fn alert_payload(stored: store::StoredAlert) -> Result<Alert, wfs_runtime::SendError> {
    let id = u64::try_from(stored.id)
        .ok()
        .and_then(std::num::NonZeroU64::new)
        .ok_or_else(|| {
            wfs_runtime::SendError::Contract(format!("alert id {} is not positive", stored.id))
        })?;
    Ok(Alert {
        type_: "alert".to_owned(),
        id,
        city_uuid: stored.city_uuid,
        message: stored.message,
        created_at: stored.created_at,
    })
}

/// Why an alert was not published. Nothing was sent when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the alert could not be stored: {0}")]
    Store(#[from] StoreError),
    #[error("the alert could not be sent: {0}")]
    Bus(#[from] BusError),
    #[error("the alert does not match the contract: {0}")]
    Contract(#[from] wfs_runtime::SendError),
}

impl App {
    /// An application on one instance (in-process fan-out).
    pub fn new(store: Store, jwt: auth::Jwt) -> App {
        let hub = Arc::new(Hub::default());
        App {
            store,
            jwt,
            bus: Arc::new(LocalBus::new(hub.clone())),
            hub,
            history: HistoryPolicy::default(),
            chat_limit: rate::ChatLimit::default(),
            alert_order: tokio::sync::Mutex::new(()),
        }
    }

    /// This application with another bus (Redis, to reach other instances).
    pub fn with_bus(mut self, bus: Arc<dyn Bus>) -> App {
        self.bus = bus;
        self
    }

    /// This application with another history policy.
    pub fn with_history(mut self, history: HistoryPolicy) -> App {
        self.history = history;
        self
    }

    /// This application with another chat rate limit.
    pub fn with_chat_limit(mut self, chat_limit: rate::ChatLimit) -> App {
        self.chat_limit = chat_limit;
        self
    }

    /// Stores an alert for `city` and pushes it to the city's subscribers. `None` when there is
    /// no such city.
    pub async fn publish_alert(
        &self,
        city: Uuid,
        message: &str,
    ) -> Result<Option<Alert>, PublishError> {
        if self.store.city(city).await?.is_none() {
            return Ok(None);
        }
        let _order = self.alert_order.lock().await;
        // Published while the database's write lock is held, so alerts reach the bus in id
        // order even when several instances publish for the same city.
        let (_, published) = self
            .store
            .insert_alert_then(city, message, |stored| async move {
                let id = stored.id;
                let alert = alert_payload(stored)?;
                let frame = Frame::new(&alert)?;
                let publication = Publication {
                    id: Some(id),
                    frame: frame.bytes(),
                };
                if let Err(error) = self.bus.publish(Topic::Alert(city), publication).await {
                    // Stored and delivered here; other instances catch up from the database
                    // when the bus is back, so the alert is not lost.
                    tracing::warn!(%error, "alert delivered on this instance only for now");
                }
                Ok::<_, PublishError>(alert)
            })
            .await?;
        let alert = published?;
        if let Err(error) = self
            .store
            .prune_alerts(city, self.history.keep, self.history.max_age)
            .await
        {
            // The alert is stored and goes out; an old one kept a little longer harms no one.
            tracing::warn!(%error, "alert history not pruned");
        }
        Ok(Some(alert))
    }

    /// The handshake of the alert and chat channels, in WIRE.md's order: the token (HTTP 403),
    /// then `city_uuid` (accepted, then closed with 1008), then the city itself (1008).
    pub async fn admit(
        &self,
        handshake: &Handshake,
        city: Result<Uuid, ParamsError>,
    ) -> Result<(User, City), Reject> {
        let user = auth::authenticate(&self.jwt, &self.store, handshake.query("access_token"))
            .await
            .map_err(|error| {
                if error.is_server_error() {
                    // The store is down: not the client's fault, and worth retrying.
                    tracing::error!(%error, "token check failed");
                    Reject::Http {
                        status: 503,
                        body: "The user store is unavailable; try again later.".to_owned(),
                    }
                } else {
                    Reject::forbidden(error.to_string())
                }
            })?;
        let city_uuid = match city {
            Ok(city_uuid) => city_uuid,
            Err(error) if error.concerns("city_uuid") => {
                return Err(Reject::close(
                    1008,
                    "Query parameter city_uuid is missing or is invalid.",
                ));
            }
            Err(error) => {
                let name = error
                    .problems
                    .first()
                    .map(|problem| problem.name.as_str())
                    .unwrap_or("?");
                return Err(Reject::close(
                    1008,
                    format!("Query parameter {name} is invalid."),
                ));
            }
        };
        match self.store.city(city_uuid).await {
            Ok(Some(city)) => Ok((user, city)),
            Ok(None) => Err(Reject::close(
                1008,
                format!(
                    "City with {} doesn't exist.",
                    handshake.query("city_uuid").unwrap_or_default()
                ),
            )),
            Err(error) => {
                tracing::error!(%error, "city lookup failed");
                Err(Reject::Http {
                    status: 503,
                    body: "The city store is unavailable; try again later.".to_owned(),
                })
            }
        }
    }
}

/// The whole HTTP and WebSocket surface of the service, behind the Host/Origin gate.
pub fn app(
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    policy: http::AccessPolicy,
) -> impl poem::Endpoint {
    let openapi = api::service();
    let (api_spec, api_docs) = (openapi.spec_endpoint(), openapi.swagger_ui());
    let api = openapi;
    pages::routes(contract::routes(state.clone(), config.clone()))
        .at("/asyncapi.yaml", get(contract_yaml))
        // `/docs/` too: links and habits add the slash.
        .at("/docs", get(docs))
        .at("/docs/", get(docs))
        .at("/health", get(health::health))
        .nest_no_strip("/api", api::json_errors(api).with(cors::cors(&policy)))
        .at("/api/openapi.json", api_spec)
        .nest("/api/docs", api_docs)
        .at(
            "/sse/v1/alert",
            get(sse::alert_stream).with(cors::cors(&policy)),
        )
        .data(state)
        .data(config)
        .with(http::Gate::new(policy))
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
    let acceptor = TcpAcceptor::from_tokio(listener)?;
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
    let acceptor = tls::TlsAcceptor::new(TcpAcceptor::from_tokio(listener)?, identity)
        .map_err(std::io::Error::other)?;
    serve_on(acceptor, state, config, policy, shutdown).await
}

async fn serve_on(
    acceptor: impl poem::listener::Acceptor + 'static,
    state: Arc<App>,
    config: Arc<wfs_runtime::Config>,
    policy: http::AccessPolicy,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sockets = config.clone();
    let shutdown = async move {
        shutdown.await;
        sockets.shut_down().await;
    };
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app(state, config.clone(), policy),
            shutdown,
            Some(config.close_timeout),
        )
        .await
}
