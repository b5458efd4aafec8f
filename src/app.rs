//! The application state every channel, page and endpoint shares ([`App`]): the store, the
//! token issuer, the fan-out hub and its bus, the alert history policy, the metrics, and the one
//! way an alert is published (stored, then sent, in id order) and a channel handshake is
//! admitted (refusals counted by reason).

use std::sync::Arc;

use uuid::Uuid;
use wfs_runtime::{Frame, Handshake, ParamsError, Reject};

use crate::auth;
use crate::contract::types::Alert;
use crate::hub::{Bus, BusError, Hub, LocalBus, Publication};
use crate::store::{self, City, Store, StoreError, User};

/// What every channel implementation shares.
pub struct App {
    pub store: Store,
    pub jwt: auth::Jwt,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    /// How much alert history each city keeps for clients that reconnect with `since`.
    pub history: HistoryPolicy,
    /// Failed logins per client IP and per user name.
    pub login_limits: crate::auth::login_limits::LoginLimits,
    /// Proxies whose `X-Forwarded-For` names the client (see [`crate::client_addr`]).
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// How fast each chat connection may send.
    pub chat_limit: crate::rate::ChatLimit,
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

/// How much alert history each city keeps (the store prunes to it as it stores each alert).
pub use crate::store::alerts::HistoryPolicy;

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
            metrics: Arc::new(crate::metrics::Metrics::new(hub.clone())),
            hub,
            history: HistoryPolicy::default(),
            login_limits: Default::default(),
            trusted_proxies: Default::default(),
            chat_limit: crate::rate::ChatLimit::default(),
            alert_order: tokio::sync::Mutex::new(()),
        }
    }

    /// This application with another bus (Redis, to reach other instances).
    pub fn with_bus(mut self, bus: Arc<dyn Bus>) -> App {
        self.bus = bus;
        self
    }

    /// This application believing `X-Forwarded-For` from these proxies.
    pub fn with_trusted_proxies(mut self, proxies: crate::client_addr::TrustedProxies) -> App {
        self.trusted_proxies = proxies;
        self
    }

    /// The client's IP address of `request` (the TCP peer, or what a trusted proxy reports).
    pub fn client_ip(&self, request: &poem::Request) -> Option<std::net::IpAddr> {
        crate::client_addr::client_ip(request, &self.trusted_proxies)
    }

    /// This application with another chat rate limit.
    pub fn with_chat_limit(mut self, chat_limit: crate::rate::ChatLimit) -> App {
        self.chat_limit = chat_limit;
        self
    }

    /// This application with another history policy.
    pub fn with_history(mut self, history: HistoryPolicy) -> App {
        self.history = history;
        self
    }

    /// Stores an alert for `city` and pushes it to the city's subscribers. `None` when there is
    /// no such city: the alert's foreign key says so as it is inserted, with no lookup of its
    /// own (every query is a round trip to a database thread or server).
    pub async fn publish_alert(
        &self,
        city: Uuid,
        message: &str,
    ) -> Result<Option<Alert>, PublishError> {
        let _order = self.alert_order.lock().await;
        let started = std::time::Instant::now();
        // Published while the database's write lock is held, so alerts reach the bus in id
        // order even when several instances publish for the same city.
        let inserted = self
            .store
            .insert_alert_then(city, message, self.history, |stored| async move {
                let id = stored.id;
                let alert = alert_payload(stored)?;
                // Serialised once here, for every subscriber on every instance.
                let publication = Publication {
                    id: Some(id),
                    frame: Frame::new(&alert)?,
                };
                if let Err(error) = self.bus.publish_alert(city, publication).await {
                    // Stored and delivered here; other instances catch up from the database
                    // when the bus is back, so the alert is not lost.
                    tracing::warn!(%error, "alert delivered on this instance only for now");
                }
                Ok::<_, PublishError>(alert)
            })
            .await;
        let (_, published) = match inserted {
            Err(StoreError::UnknownCity(_)) => return Ok(None),
            inserted => inserted?,
        };
        let alert = published?;
        self.metrics.published("alert", started.elapsed());
        Ok(Some(alert))
    }

    /// The handshake of the alert and chat channels, in WIRE.md's order: the token (HTTP 403),
    /// then `city_uuid` (accepted, then closed with 1008), then the city itself (1008). The user
    /// and the city come from the store's short-lived cache, shared with other connections.
    pub async fn admit(
        &self,
        handshake: &Handshake,
        city: Result<Uuid, ParamsError>,
    ) -> Result<(Arc<User>, Arc<City>), Reject> {
        self.admit_uncounted(handshake, city)
            .await
            .map_err(|(reason, reject)| {
                let path = handshake.path();
                let transport = if path.starts_with("/sse/") {
                    "sse"
                } else {
                    "websocket"
                };
                self.metrics
                    .refused(crate::connections::channel_of(path), transport, reason);
                reject
            })
    }

    /// [`App::admit`], with the reason of a refusal for the metrics.
    async fn admit_uncounted(
        &self,
        handshake: &Handshake,
        city: Result<Uuid, ParamsError>,
    ) -> Result<(Arc<User>, Arc<City>), (&'static str, Reject)> {
        // Both look-ups go through the store's short-lived cache (`store::lookups`, where
        // the staleness each allows is written down).
        let user = auth::authenticate_for_handshake(
            &self.jwt,
            &self.store,
            handshake.query("access_token"),
        )
        .await
        .map_err(|error| {
            if error.is_server_error() {
                // The store is down: not the client's fault, and worth retrying.
                tracing::error!(%error, "token check failed");
                let body = "The user store is unavailable; try again later.".to_owned();
                ("unavailable", Reject::Http { status: 503, body })
            } else {
                ("token", Reject::forbidden(error.to_string()))
            }
        })?;
        let city_uuid = match city {
            Ok(city_uuid) => city_uuid,
            Err(error) if error.concerns("city_uuid") => {
                return Err((
                    "params",
                    Reject::close(1008, "Query parameter city_uuid is missing or is invalid."),
                ));
            }
            Err(error) => {
                let name = error
                    .problems
                    .first()
                    .map(|problem| problem.name.as_str())
                    .unwrap_or("?");
                return Err((
                    "params",
                    Reject::close(1008, format!("Query parameter {name} is invalid.")),
                ));
            }
        };
        match self.store.city_for_handshake(city_uuid).await {
            Ok(Some(city)) => Ok((user, city)),
            Ok(None) => Err((
                "unknown_city",
                Reject::close(
                    1008,
                    format!(
                        "City with {} doesn't exist.",
                        handshake.query("city_uuid").unwrap_or_default()
                    ),
                ),
            )),
            Err(error) => {
                tracing::error!(%error, "city lookup failed");
                let body = "The city store is unavailable; try again later.".to_owned();
                Err(("unavailable", Reject::Http { status: 503, body }))
            }
        }
    }
}
