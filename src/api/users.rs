//! The users API under `/api/v1/users`, for administrators: what `wfs user` does on the server's
//! machine, over HTTP. Every operation needs an administrator's access token (401 without a
//! valid one, 403 for another user's).
//!
//! - `GET /api/v1/users`, `GET /api/v1/users/{username}`;
//! - `POST /api/v1/users` `{"username", "password"?, "is_admin"?}`: without a password one is
//!   generated and answered once;
//! - `PUT /api/v1/users/{username}/password` `{"password"?}`: the same rule;
//! - `DELETE /api/v1/users/{username}`: not the last administrator.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{AccessToken, ErrorBody, Problem, Tag, authenticate, problem};
use crate::app::App;
use crate::auth::passwords;
use crate::store::{StoreError, User};

/// A user (the password hash never leaves the store).
#[derive(Debug, Object)]
pub struct UserBody {
    pub id: i64,
    pub username: String,
    /// Administrators publish alerts and manage users.
    pub is_admin: bool,
}

impl From<User> for UserBody {
    fn from(user: User) -> UserBody {
        UserBody {
            id: user.id,
            username: user.username,
            is_admin: user.is_admin,
        }
    }
}

/// `POST /api/v1/users` body.
#[derive(Debug, Object)]
pub struct NewUser {
    /// 1 to 150 characters, no control characters, no surrounding spaces.
    pub username: String,
    /// At least 8 characters, not only digits, not the user name. Omit it to have one
    /// generated (answered once, in `password`).
    #[oai(write_only)]
    pub password: Option<String>,
    /// Default: false.
    pub is_admin: Option<bool>,
}

/// `PUT /api/v1/users/{username}/password` body.
#[derive(Debug, Object)]
pub struct NewPassword {
    /// As for a new user; omit it to have one generated.
    #[oai(write_only)]
    pub password: Option<String>,
}

/// A user just created, or whose password just changed.
#[derive(Debug, Object)]
pub struct UserWithPassword {
    pub user: UserBody,
    /// The generated password, shown this once; absent when the request chose it.
    pub password: Option<String>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum UsersResponse {
    /// Every user, sorted by name.
    #[oai(status = 200)]
    Ok(Json<Vec<UserBody>>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user is not an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(UsersResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    FORBIDDEN => Forbidden,
});

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum UserResponse {
    /// The user.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user is not an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `There is no user '<name>'.`
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(UserResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    FORBIDDEN => Forbidden,
    NOT_FOUND => NotFound,
});

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum CreateUserResponse {
    /// Created; `password` is there when it was generated.
    #[oai(status = 201)]
    Created(Json<UserWithPassword>),
    /// The body is not `{"username": "...", ...}`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user is not an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `User '<name>' already exists.`
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The user name is invalid or the password is weak (the reason says which).
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(CreateUserResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    FORBIDDEN => Forbidden,
    CONFLICT => Conflict,
    UNPROCESSABLE_ENTITY => Unprocessable,
});

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum PasswordResponse {
    /// Changed; `password` is there when it was generated.
    #[oai(status = 200)]
    Ok(Json<UserWithPassword>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user is not an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `There is no user '<name>'.`
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The password is weak (the reason says why).
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(PasswordResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    FORBIDDEN => Forbidden,
    NOT_FOUND => NotFound,
    UNPROCESSABLE_ENTITY => Unprocessable,
});

#[derive(ApiResponse)]
#[oai(bad_request_handler = "problem")]
pub enum RemoveUserResponse {
    /// Removed; the user's tokens stop working at once here (new channel connections on other
    /// instances within 5 s: see `store::lookups`).
    #[oai(status = 204)]
    Removed,
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The access token is missing, invalid or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The user is not an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `There is no user '<name>'.`
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The user is the last administrator.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The store is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
from_problem!(RemoveUserResponse {
    BAD_REQUEST => BadRequest,
    UNAUTHORIZED => Unauthorized,
    FORBIDDEN => Forbidden,
    NOT_FOUND => NotFound,
    CONFLICT => Conflict,
});

/// The caller, who must be an administrator.
async fn admin(app: &App, token: &AccessToken) -> Result<User, Problem> {
    let user = authenticate(app, token).await?;
    if !user.is_admin {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Only administrators may manage users.",
        ));
    }
    Ok(user)
}

/// The store's refusals in the API's words, with the status that says whose fault it is.
fn store_problem(error: StoreError) -> Problem {
    match error {
        StoreError::DuplicateUser(name) => Problem::new(
            StatusCode::CONFLICT,
            format!("User '{name}' already exists."),
        ),
        StoreError::UnknownUser(name) => {
            Problem::new(StatusCode::NOT_FOUND, format!("There is no user '{name}'."))
        }
        StoreError::LastAdmin(name) => Problem::new(
            StatusCode::CONFLICT,
            format!("'{name}' is the last administrator; make another one first."),
        ),
        StoreError::InvalidUser(reason) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, capitalised(reason))
        }
        other => Problem::unavailable("user management", &other),
    }
}

/// The password to set: the one given if strong enough, else a generated one (answered).
fn chosen_password(
    username: &str,
    given: Option<String>,
) -> Result<(String, Option<String>), Problem> {
    match given {
        Some(password) => {
            passwords::check_strength(username, &password).map_err(|weak| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    capitalised(&weak.to_string()),
                )
            })?;
            Ok((password, None))
        }
        None => {
            let generated = passwords::generate()
                .map_err(|error| Problem::unavailable("generating a password", &error))?;
            Ok((generated.clone(), Some(generated)))
        }
    }
}

/// `text` with its first letter upper-case and a final full stop: a sentence for `detail`.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().to_string());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// The users operations; see the module docs.
#[derive(Debug)]
pub struct UsersApi;

#[OpenApi(prefix_path = "/api/v1")]
impl UsersApi {
    /// List the users
    #[oai(path = "/users", method = "get", tag = "Tag::Users")]
    async fn list(&self, app: Data<&Arc<App>>, token: AccessToken) -> UsersResponse {
        let listing = async {
            admin(&app, &token).await?;
            app.store.users().await.map_err(store_problem)
        };
        match listing.await {
            Ok(users) => UsersResponse::Ok(Json(users.into_iter().map(Into::into).collect())),
            Err(problem) => problem.into(),
        }
    }

    /// Create a user
    ///
    /// Without `password`, one is generated and answered this once.
    #[oai(path = "/users", method = "post", tag = "Tag::Users")]
    async fn create(
        &self,
        app: Data<&Arc<App>>,
        token: AccessToken,
        body: Json<NewUser>,
    ) -> CreateUserResponse {
        let creating = async {
            admin(&app, &token).await?;
            let NewUser {
                username,
                password,
                is_admin,
            } = body.0;
            let (password, generated) = chosen_password(&username, password)?;
            let user = app
                .store
                .create_user(&username, &password, is_admin.unwrap_or(false))
                .await
                .map_err(store_problem)?;
            tracing::info!(user = %user.username, admin = user.is_admin, "user created");
            Ok::<_, Problem>(UserWithPassword {
                user: user.into(),
                password: generated,
            })
        };
        match creating.await {
            Ok(created) => CreateUserResponse::Created(Json(created)),
            Err(problem) => problem.into(),
        }
    }

    /// Get one user
    #[oai(path = "/users/:username", method = "get", tag = "Tag::Users")]
    async fn get(
        &self,
        app: Data<&Arc<App>>,
        token: AccessToken,
        username: Path<String>,
    ) -> UserResponse {
        let finding = async {
            admin(&app, &token).await?;
            match app.store.user_by_name(&username).await {
                Ok(Some(user)) => Ok(user),
                Ok(None) => Err(store_problem(StoreError::UnknownUser(username.0.clone()))),
                Err(error) => Err(store_problem(error)),
            }
        };
        match finding.await {
            Ok(user) => UserResponse::Ok(Json(user.into())),
            Err(problem) => problem.into(),
        }
    }

    /// Change a user's password
    ///
    /// Without `password`, one is generated and answered this once. Tokens already issued stay
    /// valid until they expire; revoke refresh tokens with `/api/jwt/revoke`.
    #[oai(path = "/users/:username/password", method = "put", tag = "Tag::Users")]
    async fn set_password(
        &self,
        app: Data<&Arc<App>>,
        token: AccessToken,
        username: Path<String>,
        body: Json<NewPassword>,
    ) -> PasswordResponse {
        let changing = async {
            admin(&app, &token).await?;
            let (password, generated) = chosen_password(&username, body.0.password)?;
            let user = app
                .store
                .set_password(&username, &password)
                .await
                .map_err(store_problem)?;
            tracing::info!(user = %user.username, "password changed");
            Ok::<_, Problem>(UserWithPassword {
                user: user.into(),
                password: generated,
            })
        };
        match changing.await {
            Ok(changed) => PasswordResponse::Ok(Json(changed)),
            Err(problem) => problem.into(),
        }
    }

    /// Remove a user
    ///
    /// Their tokens stop working at once for the REST API and for new channel connections
    /// on this server; other instances refuse new channel connections within 5 seconds
    /// (they cache users that briefly). The last administrator cannot be removed.
    #[oai(path = "/users/:username", method = "delete", tag = "Tag::Users")]
    async fn remove(
        &self,
        app: Data<&Arc<App>>,
        token: AccessToken,
        username: Path<String>,
    ) -> RemoveUserResponse {
        let removing = async {
            admin(&app, &token).await?;
            let user = app
                .store
                .remove_user(&username)
                .await
                .map_err(store_problem)?;
            tracing::info!(user = %user.username, "user removed");
            Ok::<_, Problem>(())
        };
        match removing.await {
            Ok(()) => RemoveUserResponse::Removed,
            Err(problem) => problem.into(),
        }
    }
}
