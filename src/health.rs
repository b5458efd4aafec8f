//! `GET /health`: whether this instance can do all of its work, for load balancers and
//! operators. 200 when everything answers; 503 `degraded` when the database or the bus to other
//! instances does not, while local connections are still served.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::app::App;
use crate::hub::BusHealth;

#[handler]
pub async fn health(app: Data<&Arc<App>>) -> Response {
    let database = tokio::time::timeout(std::time::Duration::from_secs(2), app.store.cities())
        .await
        .is_ok_and(|cities| cities.is_ok());
    let bus = app.bus.health();
    let healthy = database && bus != Some(BusHealth::Disconnected);
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "database": if database { "ok" } else { "unavailable" },
        "bus": match bus {
            None => "local",
            Some(BusHealth::Connected) => "connected",
            Some(BusHealth::Disconnected) => "disconnected",
        },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}
