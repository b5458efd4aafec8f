//! Authentication: tokens ([`jwt`]), the secret they are signed with ([`secret`]), passwords
//! ([`passwords`]), and what they share: the token kinds, the claims, why a token is refused,
//! and the check a channel handshake or an API call makes ([`authenticate`]).

pub mod jwt;
pub mod login_limits;
pub mod passwords;
pub mod secret;

pub use jwt::{Jwt, JwtError};

use crate::store::{Store, User};

/// What a token is for: `access` opens channels, `refresh` only obtains new access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    /// The `token_type` claim of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// The claims of our tokens (the old service's names).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user's id in the store.
    pub id: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// `"access"` or `"refresh"`.
    pub token_type: String,
    /// A unique id (32 hex digits), so two tokens issued in the same second differ.
    pub jti: String,
}

/// Why a token was refused. `Display` is a short reason fit for an HTTP 403 body and never
/// contains any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Token is missing.")]
    Missing,
    #[error("Token is malformed.")]
    Malformed,
    /// The header's `alg`, cut to a few printable characters: for logs, not for the client.
    #[error("Token algorithm is not supported.")]
    UnsupportedAlgorithm(String),
    #[error("Token signature is invalid.")]
    BadSignature,
    #[error("Token is expired.")]
    Expired,
    /// `nbf` or `iat` in the future, beyond a little clock skew.
    #[error("Token is not valid yet.")]
    NotYetValid,
    #[error("Token has the wrong type.")]
    WrongKind,
    #[error("User not found.")]
    UnknownUser,
    /// The store failed while looking the user up; the field has the details for the log.
    /// Not the client's fault: answer it as a server error, not 403.
    #[error("Token could not be checked.")]
    Store(String),
}

impl AuthError {
    /// True when the failure is ours (the store), not the token's.
    pub fn is_server_error(&self) -> bool {
        matches!(self, AuthError::Store(_))
    }
}

/// verify + the user exists in the store.
pub async fn authenticate(
    jwt: &Jwt,
    store: &Store,
    token: Option<&str>,
) -> Result<User, AuthError> {
    let claims = jwt.verify(token.ok_or(AuthError::Missing)?, TokenKind::Access)?;
    found(store.user(claims.id).await)
}

/// [`authenticate`] for a channel handshake: the user is looked up through the store's
/// short-lived cache ([`Store::user_for_handshake`]), so a user removed by another process
/// (`wfs user remove`, another instance) may still open channels here for
/// [`crate::store::LookupTtl::users`] (5 s by default); removed through this process, at once.
/// That is the price of a handshake that does not wait on the database during a reconnect
/// storm. The REST API keeps the exact check ([`authenticate`]).
pub async fn authenticate_for_handshake(
    jwt: &Jwt,
    store: &Store,
    token: Option<&str>,
) -> Result<std::sync::Arc<User>, AuthError> {
    let claims = jwt.verify(token.ok_or(AuthError::Missing)?, TokenKind::Access)?;
    found(store.user_for_handshake(claims.id).await)
}

/// The token's user as the store answered: missing is [`AuthError::UnknownUser`], a store
/// failure [`AuthError::Store`].
fn found<U>(looked_up: Result<Option<U>, crate::store::StoreError>) -> Result<U, AuthError> {
    match looked_up {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(AuthError::UnknownUser),
        Err(error) => Err(AuthError::Store(error_chain(&error))),
    }
}

/// An error and its sources, joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const SECRET: &[u8] = b"test secret that is long enough for HS256 keys";
    const HOUR: Duration = Duration::from_secs(3600);

    fn jwt() -> Jwt {
        Jwt::new(SECRET.to_vec(), HOUR, 24 * HOUR).expect("a key")
    }

    #[tokio::test]
    async fn authenticate_needs_an_existing_user() {
        tokio::time::timeout(Duration::from_secs(60), async {
            let store = Store::open("sqlite::memory:").await.expect("store");
            let alice = store
                .create_user("alice", "pw", false)
                .await
                .expect("created");
            let jwt = jwt();

            let token = jwt.issue(alice.id, TokenKind::Access);
            let user = authenticate(&jwt, &store, Some(&token)).await;
            assert_eq!(user, Ok(alice.clone()));
            let wrapped = STANDARD.encode(&token);
            let user = authenticate(&jwt, &store, Some(&wrapped)).await;
            assert_eq!(user, Ok(alice.clone()));

            let ghost = jwt.issue(alice.id + 1000, TokenKind::Access);
            let refused = authenticate(&jwt, &store, Some(&ghost)).await;
            assert_eq!(refused, Err(AuthError::UnknownUser));
            assert_eq!(
                authenticate(&jwt, &store, None).await,
                Err(AuthError::Missing)
            );
            let refresh = jwt.issue(alice.id, TokenKind::Refresh);
            let refused = authenticate(&jwt, &store, Some(&refresh)).await;
            assert_eq!(refused, Err(AuthError::WrongKind));

            store.close().await;
            let closed = authenticate(&jwt, &store, Some(&token)).await;
            assert!(
                matches!(&closed, Err(error @ AuthError::Store(_)) if error.is_server_error()),
                "{closed:?}"
            );
        })
        .await
        .expect("the test did not finish in time");
    }
}
