//! The REST API under `/api`, described by an OpenAPI document (poem-openapi) that is served
//! at `/api/openapi.json`, with an interactive UI (Swagger UI, embedded) at `/api/docs`.
//!
//! - `POST /api/jwt/obtain`: tokens, exactly as the old service's clients expect (WIRE.md).
//! - `GET /api/v1/cities`, `GET /api/v1/cities/{uuid}`: the cities, public.
//! - `GET /api/v1/cities/{uuid}/alerts?limit=&before=`: a city's recent alerts, newest first,
//!   paged backwards by id; any user's access token (as for the alert channel).
//! - `POST /api/v1/cities/{uuid}/alerts`: publish an alert (admin token); `wfs alert` uses it.
//! - `GET /api/stats`: open connections, topics and subscribers.
//!
//! Every error is a JSON body `{"detail": "..."}` (the old service's shape) with the status
//! that says whose fault it is; bad input is never a 500. Errors that poem-openapi raises
//! itself (a body that is not JSON, a query value out of range, a missing token) go through
//! [`problem`], so they get the same shape; [`json_errors`] catches what is left (an unknown
//! path or method under `/api`).
//!
//! City UUIDs in paths are taken as strings and parsed here with the channels' own parser
//! (canonical form only, either case), so the REST API and the WebSocket agree on what a city
//! UUID is and the error says `City uuid '<x>' is not valid!` as `wfs alert` prints it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse};
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService, SecurityScheme, Tags};
use uuid::Uuid;

use crate::app::App;
use crate::auth::TokenKind;
use crate::store::{City, StoredAlert, User};

/// The longest alert message accepted, in characters: an alert is a short text for a screen.
pub const MAX_ALERT_CHARS: usize = 4096;

/// Alerts per page when `limit` is not given, and the most a page may hold.
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

#[derive(Tags)]
enum Tag {
    /// Tokens for the API and the WebSocket channels.
    Auth,
    /// The cities that alerts and chat rooms belong to.
    Cities,
    /// Weather alerts: the history, and publishing (which also pushes them to subscribers).
    Alerts,
    /// The service itself.
    Service,
}

/// An access token from `POST /api/jwt/obtain`, sent as `Authorization: Bearer <access>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct AccessToken(Bearer);

/// An error: what went wrong, in a sentence.
#[derive(Debug, Object)]
pub struct ErrorBody {
    /// A human-readable reason.
    pub detail: String,
}

/// An error on its way out: the status and the sentence. Every response enum of this API is
/// built from one, so each chooses its variant by the status.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
        }
    }

    fn body(self) -> Json<ErrorBody> {
        Json(ErrorBody {
            detail: self.detail,
        })
    }

    fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Problem {
        tracing::error!(%error, "{what} failed");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service's store is unavailable; try again later.",
        )
    }
}

/// poem-openapi's own request errors (bad JSON, bad query values, a missing bearer token) as a
/// [`Problem`] of the response type `R`.
fn problem<R: From<Problem>>(error: poem::Error) -> R {
    let status = error.status();
    let detail = match status {
        StatusCode::UNAUTHORIZED => {
            "Send an access token: `Authorization: Bearer <access>`.".into()
        }
        _ => error.to_string(),
    };
    // Whatever poem-openapi refused is the request's fault: anything that is not a 401 is a 400.
    let status = if status == StatusCode::UNAUTHORIZED {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    R::from(Problem::new(status, detail))
}

/// Maps a [`Problem`] onto the variants of a response enum, by status; a status the enum does
/// not list becomes its `Unavailable` variant (503), the only server-side failure.
macro_rules! from_problem {
    ($response:ident { $($status:ident => $variant:ident),* $(,)? }) => {
        impl From<Problem> for $response {
            fn from(problem: Problem) -> $response {
                match problem.status {
                    $(StatusCode::$status => $response::$variant(problem.body()),)*
                    _ => $response::Unavailable(problem.body()),
                }
            }
        }
    };
}

/// `POST /api/jwt/obtain` body.
#[derive(Debug, Object)]
pub struct Credentials {
    /// The user's name.
    pub username: String,
    /// The user's password.
    #[oai(write_only)]
    pub password: String,
}

/// A pair of tokens.
#[derive(Debug, Object)]
pub struct TokenPair {
    /// A refresh token (HS256 JWT, claim `token_type: refresh`).
    pub refresh: String,
    /// An access token (HS256 JWT): `access_token` on the channels, `Bearer` on this API.
    pub access: String,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum ObtainResponse {
    /// The credentials are right.
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
    /// The body is not `{"username": "...", "password": "..."}`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Unknown user or wrong password: `No active account found with the given credentials`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(ObtainResponse { BAD_REQUEST => BadRequest, UNAUTHORIZED => Unauthorized });

/// A city.
#[derive(Debug, Object)]
pub struct CityBody {
    /// The city's UUID: `city_uuid` on the channels. The same on every installation.
    pub uuid: Uuid,
    pub name: String,
    pub country: String,
    pub continent: String,
    /// IANA time zone, e.g. `Africa/Cairo`.
    pub timezone: String,
    pub latitude: f64,
    pub longitude: f64,
}

impl From<City> for CityBody {
    fn from(city: City) -> CityBody {
        CityBody {
            uuid: city.uuid,
            name: city.name,
            country: city.country,
            continent: city.continent,
            timezone: city.timezone,
            latitude: city.latitude,
            longitude: city.longitude,
        }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum CitiesResponse {
    /// Every city, sorted by name.
    #[oai(status = 200)]
    Ok(Json<Vec<CityBody>>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(CitiesResponse { BAD_REQUEST => BadRequest });

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum CityResponse {
    /// The city.
    #[oai(status = 200)]
    Ok(Json<CityBody>),
    /// The UUID is not a canonical UUID.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No city has this UUID.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(CityResponse { BAD_REQUEST => BadRequest, NOT_FOUND => NotFound });

/// An alert: the same fields as the alert channel's `alert` message.
#[derive(Debug, Object)]
pub struct AlertBody {
    /// Always `alert`.
    #[oai(rename = "type")]
    pub type_: String,
    /// Grows with every alert; the SSE event id, and the `before` cursor of the next page.
    pub id: i64,
    pub city_uuid: Uuid,
    /// The alert text.
    pub message: String,
    /// When it was published (UTC, millisecond precision).
    pub created_at: DateTime<Utc>,
}

impl From<StoredAlert> for AlertBody {
    fn from(alert: StoredAlert) -> AlertBody {
        AlertBody {
            type_: "alert".to_owned(),
            id: alert.id,
            city_uuid: alert.city_uuid,
            message: alert.message,
            created_at: alert.created_at,
        }
    }
}

/// One page of a city's alerts.
#[derive(Debug, Object)]
pub struct AlertPage {
    /// Newest first.
    pub alerts: Vec<AlertBody>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum AlertsResponse {
    /// A page of alerts, newest first.
    #[oai(status = 200)]
    Ok(Json<AlertPage>),
    /// The UUID is not canonical, or `limit` or `before` is out of range.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No city has this UUID.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(AlertsResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    NOT_FOUND => NotFound,
});

/// `POST /api/v1/cities/{uuid}/alerts` body.
#[derive(Debug, Object)]
pub struct NewAlert {
    /// The alert text: not blank, at most 4096 characters.
    pub message: String,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum PublishResponse {
    /// Stored and pushed to every subscriber of the city (WebSocket and SSE).
    #[oai(status = 201)]
    Created(Json<AlertBody>),
    /// The UUID is not canonical (`City uuid '<x>' is not valid!`) or the body is not
    /// `{"message": "..."}`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user is not an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `City with uuid '<x>' does not exist!`
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The message is blank or too long.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The alert could not be stored or sent; it was not published.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(PublishResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    FORBIDDEN => Forbidden,
    NOT_FOUND => NotFound,
    UNPROCESSABLE_ENTITY => Unprocessable,
});

/// Connections and fan-out right now.
#[derive(Debug, Object)]
pub struct Stats {
    /// Open WebSocket connections.
    pub connections: u64,
    /// Topics (a city's alerts, a city's chat room) with at least one subscriber.
    pub topics: u64,
    /// Subscriptions (WebSocket connections and SSE streams) over all topics.
    pub subscribers: u64,
}

/// The operations; see the module docs.
#[derive(Debug)]
pub struct Api;

#[OpenApi(prefix_path = "/api")]
impl Api {
    /// Obtain tokens
    ///
    /// `{"username", "password"}` answers `{"refresh", "access"}`. Use `access` as the
    /// `access_token` query parameter of the alert and chat channels (raw, or in standard
    /// Base64 as the old pages sent it) and as the Bearer token of this API.
    #[oai(path = "/jwt/obtain", method = "post", tag = "Tag::Auth")]
    async fn obtain_token(&self, app: Data<&Arc<App>>, body: Json<Credentials>) -> ObtainResponse {
        match app
            .store
            .verify_password(&body.username, &body.password)
            .await
        {
            Ok(Some(user)) => ObtainResponse::Ok(Json(TokenPair {
                refresh: app.jwt.issue(user.id, TokenKind::Refresh),
                access: app.jwt.issue(user.id, TokenKind::Access),
            })),
            Ok(None) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "No active account found with the given credentials",
            )
            .into(),
            Err(error) => Problem::unavailable("token request", &error).into(),
        }
    }

    /// List the cities
    #[oai(path = "/v1/cities", method = "get", tag = "Tag::Cities")]
    async fn cities(&self, app: Data<&Arc<App>>) -> CitiesResponse {
        match app.store.cities().await {
            Ok(cities) => CitiesResponse::Ok(Json(cities.into_iter().map(Into::into).collect())),
            Err(error) => Problem::unavailable("listing cities", &error).into(),
        }
    }

    /// Get one city
    #[oai(path = "/v1/cities/:uuid", method = "get", tag = "Tag::Cities")]
    async fn city(
        &self,
        app: Data<&Arc<App>>,
        /// The city's UUID (canonical form, either case).
        uuid: Path<String>,
    ) -> CityResponse {
        match find_city(&app, &uuid).await {
            Ok(city) => CityResponse::Ok(Json(city.into())),
            Err(problem) => problem.into(),
        }
    }

    /// List a city's recent alerts
    ///
    /// Newest first. For the next (older) page pass the `next_before` of this one as `before`.
    /// Needs any user's access token, like the alert channel.
    #[oai(path = "/v1/cities/:uuid/alerts", method = "get", tag = "Tag::Alerts")]
    async fn alerts(
        &self,
        app: Data<&Arc<App>>,
        token: AccessToken,
        /// The city's UUID (canonical form, either case).
        uuid: Path<String>,
        /// Alerts per page, 1 to 100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Only alerts with an id below this one.
        #[oai(validator(minimum(value = "1")))]
        before: Query<Option<i64>>,
    ) -> AlertsResponse {
        let listing = async {
            authenticate(&app, &token).await?;
            let city = find_city(&app, &uuid).await?;
            let limit = limit.0.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
            let alerts = app
                .store
                .recent_alerts(city.uuid, limit, before.0)
                .await
                .map_err(|error| Problem::unavailable("listing alerts", &error))?;
            let full = alerts.len() == limit as usize;
            let next_before = alerts.last().map(|alert| alert.id).filter(|_| full);
            Ok::<_, Problem>(AlertPage {
                alerts: alerts.into_iter().map(Into::into).collect(),
                next_before,
            })
        };
        match listing.await {
            Ok(page) => AlertsResponse::Ok(Json(page)),
            Err(problem) => problem.into(),
        }
    }

    /// Publish an alert
    ///
    /// Stores the alert and pushes it at once to every subscriber of the city, on the alert
    /// channel and on the SSE stream. Needs an administrator's access token. `wfs alert` calls
    /// this.
    #[oai(path = "/v1/cities/:uuid/alerts", method = "post", tag = "Tag::Alerts")]
    async fn publish_alert(
        &self,
        app: Data<&Arc<App>>,
        token: AccessToken,
        /// The city's UUID (canonical form, either case).
        uuid: Path<String>,
        body: Json<NewAlert>,
    ) -> PublishResponse {
        let publishing = async {
            let user = authenticate(&app, &token).await?;
            if !user.is_admin {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "Only administrators may publish alerts.",
                ));
            }
            let city = parse_city_uuid(&uuid)?;
            let message = body.0.message;
            if message.trim().is_empty() {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The alert message is empty.",
                ));
            }
            if message.chars().count() > MAX_ALERT_CHARS {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("The alert message is longer than {MAX_ALERT_CHARS} characters."),
                ));
            }
            match app.publish_alert(city, &message).await {
                Ok(Some(alert)) => Ok(AlertBody {
                    type_: alert.type_,
                    id: i64::try_from(alert.id.get()).unwrap_or(i64::MAX),
                    city_uuid: alert.city_uuid,
                    message: alert.message,
                    created_at: alert.created_at,
                }),
                Ok(None) => Err(Problem::new(
                    StatusCode::NOT_FOUND,
                    format!("City with uuid '{city}' does not exist!"),
                )),
                Err(error) => {
                    tracing::error!(%error, "alert could not be published");
                    Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The alert could not be stored or sent; it was not published.",
                    ))
                }
            }
        };
        match publishing.await {
            Ok(alert) => PublishResponse::Created(Json(alert)),
            Err(problem) => problem.into(),
        }
    }

    /// Connections and subscribers
    ///
    /// A closed connection leaves nothing behind: with no client connected, all three are 0.
    #[oai(path = "/stats", method = "get", tag = "Tag::Service")]
    async fn stats(
        &self,
        app: Data<&Arc<App>>,
        config: Data<&Arc<wfs_runtime::Config>>,
    ) -> Json<Stats> {
        let hub = app.hub.stats();
        Json(Stats {
            connections: config.active_connections() as u64,
            topics: hub.topics as u64,
            subscribers: hub.subscribers as u64,
        })
    }
}

/// The user behind a Bearer token: 401 for any problem with the token, 503 when the store
/// could not say.
async fn authenticate(app: &App, token: &AccessToken) -> Result<User, Problem> {
    crate::auth::authenticate(&app.jwt, &app.store, Some(&token.0.token))
        .await
        .map_err(|error| {
            if error.is_server_error() {
                Problem::unavailable("token check", &error)
            } else {
                Problem::new(StatusCode::UNAUTHORIZED, error.to_string())
            }
        })
}

fn parse_city_uuid(raw: &str) -> Result<Uuid, Problem> {
    wfs_runtime::params::uuid(raw).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("City uuid '{raw}' is not valid!"),
        )
    })
}

async fn find_city(app: &App, raw: &str) -> Result<City, Problem> {
    let uuid = parse_city_uuid(raw)?;
    match app.store.city(uuid).await {
        Ok(Some(city)) => Ok(city),
        Ok(None) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("City with uuid '{uuid}' does not exist!"),
        )),
        Err(error) => Err(Problem::unavailable("looking up a city", &error)),
    }
}

/// The OpenAPI service: the operations plus the document's title, version and description.
pub fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        Api,
        "Weather Forecast Service REST API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Tokens, cities and alerts of the Weather Forecast Service. The real-time channels \
             (WebSocket) are described by the AsyncAPI document at `/asyncapi.yaml` and its \
             HTML docs at `/docs`; alerts also stream as Server-Sent Events at \
             `/sse/v1/alert?city_uuid=&access_token=`. Errors are `{\"detail\": \"...\"}`.",
    )
}

/// Turns any error left (an unknown path or method under `/api`) into `{"detail": "..."}`.
pub fn json_errors(endpoint: impl IntoEndpoint<Endpoint: 'static>) -> impl Endpoint + 'static {
    endpoint
        .into_endpoint()
        .catch_all_error(|error: poem::Error| async move {
            let status = error.status();
            let detail = match status {
                StatusCode::NOT_FOUND => "No such API endpoint.".to_owned(),
                StatusCode::METHOD_NOT_ALLOWED => "This method is not allowed here.".to_owned(),
                _ => error.to_string(),
            };
            crate::http::json_error(status, detail).into_response()
        })
}
