//! The token lifecycle after `/api/jwt/obtain`, with djangorestframework-simplejwt's request and
//! response shapes and status codes (WIRE.md), so the old clients keep working:
//!
//! - `POST /api/jwt/refresh` `{"refresh"}` -> `{"access", "refresh"}`: refresh tokens rotate
//!   (simplejwt's `ROTATE_REFRESH_TOKENS` with `BLACKLIST_AFTER_ROTATION`), so the one sent is
//!   revoked and a stolen refresh token works once at most;
//! - `POST /api/jwt/verify` `{"token"}` -> `{}` for a valid token of either kind;
//! - `POST /api/jwt/revoke` `{"refresh"}` -> `{}`, and that refresh token is refused from then
//!   on, on every instance (the list lives in the shared database).
//!
//! A refused token is 401 `{"detail": "...", "code": "token_not_valid"}`; a missing field is
//! 400 `{"<field>": ["This field is required."]}`, as Django REST framework words it.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{Problem, Tag, TokenPair, problem};
use crate::app::App;
use crate::auth::{AuthError, Claims, TokenKind};

/// simplejwt's detail for a token that does not verify.
const INVALID: &str = "Token is invalid or expired";

/// `POST /api/jwt/refresh` and `POST /api/jwt/revoke` body.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    /// A refresh token from `/api/jwt/obtain` or an earlier refresh. Required.
    pub refresh: Option<String>,
}

/// `POST /api/jwt/verify` body.
#[derive(Debug, Object)]
pub struct VerifyRequest {
    /// An access or refresh token. Required.
    pub token: Option<String>,
}

/// A refused token, in simplejwt's words.
#[derive(Debug, Object)]
pub struct TokenError {
    /// `Token is invalid or expired`, `Token has wrong type` or `Token is blacklisted`;
    /// `No active account found for the given token.` when its user was removed.
    pub detail: String,
    /// `token_not_valid`, or `no_active_account` when its user was removed.
    pub code: String,
}

/// An empty JSON object: simplejwt's answer to verify and revoke.
#[derive(Debug, Default, Object)]
pub struct Empty {}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum RefreshResponse {
    /// A new access token and a new refresh token; the refresh token sent is revoked.
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
    /// `refresh` is missing or blank (`{"refresh": ["This field is required."]}`), or
    /// the body is not JSON (`{"detail": "..."}`).
    #[oai(status = 400)]
    BadRequest(Json<serde_json::Value>),
    /// The refresh token is invalid, expired, revoked or already used, or not a refresh token.
    #[oai(status = 401)]
    Unauthorized(Json<TokenError>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<super::ErrorBody>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum VerifyResponse {
    /// The token is valid: `{}`.
    #[oai(status = 200)]
    Ok(Json<Empty>),
    /// `token` is missing or blank (`{"token": ["This field is required."]}`), or
    /// the body is not JSON (`{"detail": "..."}`).
    #[oai(status = 400)]
    BadRequest(Json<serde_json::Value>),
    /// `{"detail": "Token is invalid or expired", "code": "token_not_valid"}`.
    #[oai(status = 401)]
    Unauthorized(Json<TokenError>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<super::ErrorBody>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum RevokeResponse {
    /// Revoked: `{}`.
    #[oai(status = 200)]
    Ok(Json<Empty>),
    /// `refresh` is missing or blank (`{"refresh": ["This field is required."]}`), or
    /// the body is not JSON (`{"detail": "..."}`).
    #[oai(status = 400)]
    BadRequest(Json<serde_json::Value>),
    /// The refresh token is invalid, expired or already revoked, or not a refresh token.
    #[oai(status = 401)]
    Unauthorized(Json<TokenError>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<super::ErrorBody>),
}

macro_rules! from_problem_and_refusal {
    ($response:ident) => {
        impl From<Problem> for $response {
            fn from(problem: Problem) -> $response {
                match problem.status {
                    StatusCode::BAD_REQUEST => {
                        $response::BadRequest(Json(serde_json::json!({ "detail": problem.detail })))
                    }
                    _ => $response::Unavailable(problem.body()),
                }
            }
        }
        impl From<Refusal> for $response {
            fn from(refusal: Refusal) -> $response {
                match refusal {
                    Refusal::Token(error) => $response::Unauthorized(Json(error)),
                    Refusal::Problem(problem) => problem.into(),
                }
            }
        }
    };
}
from_problem_and_refusal!(RefreshResponse);
from_problem_and_refusal!(VerifyResponse);
from_problem_and_refusal!(RevokeResponse);

/// Why a token operation did not happen.
enum Refusal {
    /// 401 with simplejwt's body.
    Token(TokenError),
    /// Anything else (the store is down).
    Problem(Problem),
}

impl Refusal {
    fn token(detail: &str) -> Refusal {
        Refusal::Token(TokenError {
            detail: detail.to_owned(),
            code: "token_not_valid".to_owned(),
        })
    }

    /// simplejwt's wording for a token the checker refused.
    fn from_auth(error: &AuthError) -> Refusal {
        match error {
            AuthError::WrongKind => Refusal::token("Token has wrong type"),
            AuthError::Store(_) => Refusal::Problem(Problem::unavailable("token check", error)),
            _ => Refusal::token(INVALID),
        }
    }

    fn store(what: &str, error: &dyn std::fmt::Display) -> Refusal {
        Refusal::Problem(Problem::unavailable(what, error))
    }
}

/// The field's value, or DRF's complaint about it.
fn required(value: Option<&str>) -> Result<&str, Vec<String>> {
    match value.map(str::trim) {
        None => Err(vec!["This field is required.".to_owned()]),
        Some("") => Err(vec!["This field may not be blank.".to_owned()]),
        Some(value) => Ok(value),
    }
}

/// The refresh token's claims if it verifies and is not revoked.
async fn live_refresh(app: &App, token: &str) -> Result<Claims, Refusal> {
    let claims = app
        .jwt
        .verify(token, TokenKind::Refresh)
        .map_err(|error| Refusal::from_auth(&error))?;
    match app.store.is_revoked(&claims.jti).await {
        Ok(false) => Ok(claims),
        Ok(true) => Err(Refusal::token("Token is blacklisted")),
        Err(error) => Err(Refusal::store("revocation check", &error)),
    }
}

/// The token endpoints after obtain; see the module docs.
#[derive(Debug)]
pub struct TokenApi;

#[OpenApi(prefix_path = "/api")]
impl TokenApi {
    /// Refresh tokens
    ///
    /// `{"refresh"}` answers `{"access", "refresh"}`: a new access token and a new refresh
    /// token. The refresh token sent is revoked, so each one can be used once.
    #[oai(path = "/jwt/refresh", method = "post", tag = "Tag::Auth")]
    async fn refresh(&self, app: Data<&Arc<App>>, body: Json<RefreshRequest>) -> RefreshResponse {
        let token = match required(body.refresh.as_deref()) {
            Ok(token) => token,
            Err(refresh) => {
                return RefreshResponse::BadRequest(Json(
                    serde_json::json!({ "refresh": refresh }),
                ));
            }
        };
        let rotating = async {
            let claims = live_refresh(&app, token).await?;
            // Revoked before the new pair is issued, atomically: of two requests racing with
            // the same token, only one gets `true` and a new pair.
            match app.store.revoke_token(&claims.jti, claims.exp).await {
                Ok(true) => {}
                Ok(false) => return Err(Refusal::token("Token is blacklisted")),
                Err(error) => return Err(Refusal::store("token rotation", &error)),
            }
            match app.store.user(claims.id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Refusal::Token(TokenError {
                        detail: "No active account found for the given token.".to_owned(),
                        code: "no_active_account".to_owned(),
                    }));
                }
                Err(error) => return Err(Refusal::store("user lookup", &error)),
            }
            Ok(TokenPair {
                refresh: app.jwt.issue(claims.id, TokenKind::Refresh),
                access: app.jwt.issue(claims.id, TokenKind::Access),
            })
        };
        match rotating.await {
            Ok(pair) => RefreshResponse::Ok(Json(pair)),
            Err(refusal) => refusal.into(),
        }
    }

    /// Verify a token
    ///
    /// `{"token"}` answers 200 `{}` when the token (access or refresh) is valid, 401
    /// `{"detail": "Token is invalid or expired", "code": "token_not_valid"}` otherwise.
    #[oai(path = "/jwt/verify", method = "post", tag = "Tag::Auth")]
    async fn verify(&self, app: Data<&Arc<App>>, body: Json<VerifyRequest>) -> VerifyResponse {
        let token = match required(body.token.as_deref()) {
            Ok(token) => token,
            Err(token) => {
                return VerifyResponse::BadRequest(Json(serde_json::json!({ "token": token })));
            }
        };
        let checking = async {
            let claims = app
                .jwt
                .verify_any_kind(token)
                .map_err(|error| Refusal::from_auth(&error))?;
            if claims.token_type == TokenKind::Refresh.as_str() {
                live_refresh(&app, token).await?;
            }
            Ok::<_, Refusal>(())
        };
        match checking.await {
            Ok(()) => VerifyResponse::Ok(Json(Empty::default())),
            Err(refusal) => refusal.into(),
        }
    }

    /// Revoke a refresh token
    ///
    /// `{"refresh"}` answers 200 `{}`; from then on that refresh token is refused by every
    /// instance (refresh, verify). Access tokens are short-lived and not revoked.
    #[oai(path = "/jwt/revoke", method = "post", tag = "Tag::Auth")]
    async fn revoke(&self, app: Data<&Arc<App>>, body: Json<RefreshRequest>) -> RevokeResponse {
        let token = match required(body.refresh.as_deref()) {
            Ok(token) => token,
            Err(refresh) => {
                return RevokeResponse::BadRequest(Json(serde_json::json!({ "refresh": refresh })));
            }
        };
        let revoking = async {
            let claims = live_refresh(&app, token).await?;
            match app.store.revoke_token(&claims.jti, claims.exp).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Refusal::token("Token is blacklisted")),
                Err(error) => Err(Refusal::store("token revocation", &error)),
            }
        };
        match revoking.await {
            Ok(()) => RevokeResponse::Ok(Json(Empty::default())),
            Err(refusal) => refusal.into(),
        }
    }
}
