//! The users table: accounts that obtain tokens, their argon2id password hashes (made and
//! checked by [`crate::auth::passwords`]; a hash never leaves this file), and the administrator
//! the first start creates.

use std::sync::Arc;

use chrono::Utc;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, is_unique_violation, query_error};
use crate::auth::passwords;

/// A user who can obtain tokens. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

/// `is_admin` as a BIGINT 0 or 1: sqlx's `Any` driver cannot read SQLite's BOOLEAN, and
/// BIGINT reads alike from both databases. A macro, so queries stay literal strings.
macro_rules! is_admin_column {
    () => {
        "CAST(CASE WHEN is_admin THEN 1 ELSE 0 END AS BIGINT) AS is_admin"
    };
}

/// The name of the account that the first start creates.
const ADMIN_USERNAME: &str = "admin";

/// What [`Store::first_admin_on_start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOnStart {
    /// `admin` was created now; with the generated password when none was given.
    Created { generated: Option<String> },
    /// There were users already: nothing was created or changed.
    UsersExist,
}

/// Django's limit, which the old service's user names already respect.
const MAX_USERNAME_CHARS: usize = 150;

impl Store {
    /// The user with this id, if any.
    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT id, username, ",
            is_admin_column!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("looking up a user"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// [`Store::user`] for a channel handshake: read from the database at most once per
    /// [`super::LookupTtl::users`]. A user removed through this store is forgotten at once; one
    /// removed by another process may still pass for that long (see [`super::lookups`]).
    pub async fn user_for_handshake(&self, id: i64) -> Result<Option<Arc<User>>> {
        self.lookups.users.get_or_load(id, self.user(id)).await
    }

    /// The oldest administrator, whose identity `wfs alert` signs its token with.
    pub async fn first_admin(&self) -> Result<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT id, username, ",
            is_admin_column!(),
            " FROM users WHERE is_admin = TRUE ORDER BY id LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("looking up the administrator"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user if `password` is theirs; `None` for an unknown user or a wrong password.
    pub async fn verify_password(&self, username: &str, password: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT id, username, ",
            is_admin_column!(),
            ", password_hash FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("looking up a user"))?;
        let Some(row) = row else {
            // Spend the time a check would take, so response times do not tell which user
            // names exist.
            passwords::waste_a_check(password).await?;
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        let hash: String = row
            .try_get("password_hash")
            .map_err(query_error("reading a password hash"))?;
        let matches = passwords::verify(password, &hash)
            .await
            .map_err(|error| match error {
                passwords::PasswordError::Corrupt(detail) => StoreError::Corrupt {
                    table: "users",
                    column: "password_hash",
                    detail,
                },
                other => other.into(),
            })?;
        Ok(matches.then_some(user))
    }

    /// Creates a user with an argon2id hash of `password`. A taken name is
    /// [`StoreError::DuplicateUser`]; an empty or over-long name, a name with control
    /// characters or surrounding spaces, or an empty password is [`StoreError::InvalidUser`].
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        is_admin: bool,
    ) -> Result<User> {
        validate_username(username)?;
        if password.is_empty() {
            return Err(StoreError::InvalidUser("the password is empty"));
        }
        let hash = passwords::hash(password).await?;
        let row = sqlx::query(
            "INSERT INTO users (username, password_hash, is_admin, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(hash)
        .bind(is_admin)
        .bind(Utc::now().timestamp_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(|source| {
            if is_unique_violation(&source) {
                StoreError::DuplicateUser(username.to_owned())
            } else {
                query_error("creating a user")(source)
            }
        })?;
        let id = row
            .try_get("id")
            .map_err(query_error("reading a new user's id"))?;
        Ok(User {
            id,
            username: username.to_owned(),
            is_admin,
        })
    }

    /// First start: when no user exists, creates `admin` (is_admin) with `password`, or with a
    /// random 20+ char password that it returns (the caller prints it once). Returns None when
    /// users already exist or the password was given.
    pub async fn ensure_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        Ok(match self.first_admin_on_start(password).await? {
            AdminOnStart::Created { generated } => generated,
            AdminOnStart::UsersExist => None,
        })
    }

    /// [`Store::ensure_admin`], telling apart "created" from "there were users already" (so
    /// that a `WFS_ADMIN_PASSWORD` given too late can be reported as ignored).
    ///
    /// Two instances starting together on one database cannot both create `admin`: the loser's
    /// insert hits the unique name and it answers `UsersExist`.
    pub async fn first_admin_on_start(&self, password: Option<&str>) -> Result<AdminOnStart> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("counting users"))?;
        if users > 0 {
            return Ok(AdminOnStart::UsersExist);
        }
        let (chosen, generated) = match password {
            Some(given) => (given.to_owned(), None),
            None => {
                let generated = passwords::generate()?;
                (generated.clone(), Some(generated))
            }
        };
        match self.create_user(ADMIN_USERNAME, &chosen, true).await {
            Ok(_) => Ok(AdminOnStart::Created { generated }),
            Err(StoreError::DuplicateUser(_)) => Ok(AdminOnStart::UsersExist),
            Err(error) => Err(error),
        }
    }

    /// Every user, sorted by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT id, username, ",
            is_admin_column!(),
            " FROM users ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("listing users"))?;
        rows.iter().map(user_from_row).collect()
    }

    /// The user called `username`, if any.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT id, username, ",
            is_admin_column!(),
            " FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("looking up a user"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Gives `username` a new password. [`StoreError::UnknownUser`] when there is no such user;
    /// an empty password is [`StoreError::InvalidUser`].
    pub async fn set_password(&self, username: &str, password: &str) -> Result<User> {
        if password.is_empty() {
            return Err(StoreError::InvalidUser("the password is empty"));
        }
        let hash = passwords::hash(password).await?;
        let row = sqlx::query(concat!(
            "UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id, username, ",
            is_admin_column!()
        ))
        .bind(hash)
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("changing a password"))?;
        match row {
            Some(row) => user_from_row(&row),
            None => Err(StoreError::UnknownUser(username.to_owned())),
        }
    }

    /// Removes `username`; their tokens stop working at once on this process (every check looks
    /// the user up, and ids are never reused), and within [`super::LookupTtl::users`] for
    /// channel handshakes on other processes sharing the database. [`StoreError::UnknownUser`] when there is no such user,
    /// [`StoreError::LastAdmin`] for the only administrator.
    pub async fn remove_user(&self, username: &str) -> Result<User> {
        let row = sqlx::query(concat!(
            "DELETE FROM users WHERE username = $1 AND (is_admin = FALSE OR \
             (SELECT COUNT(*) FROM users WHERE is_admin = TRUE) > 1) RETURNING id, username, ",
            is_admin_column!()
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("removing a user"))?;
        match row {
            Some(row) => {
                let user = user_from_row(&row)?;
                self.lookups.users.forget(&user.id);
                Ok(user)
            }
            None => match self.user_by_name(username).await? {
                Some(_) => Err(StoreError::LastAdmin(username.to_owned())),
                None => Err(StoreError::UnknownUser(username.to_owned())),
            },
        }
    }
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    let read = query_error("reading a user");
    Ok(User {
        id: row.try_get("id").map_err(&read)?,
        username: row.try_get("username").map_err(&read)?,
        is_admin: row.try_get::<i64, _>("is_admin").map_err(&read)? != 0,
    })
}

fn validate_username(username: &str) -> Result<()> {
    if username.is_empty() {
        return Err(StoreError::InvalidUser("the user name is empty"));
    }
    if username.trim() != username {
        return Err(StoreError::InvalidUser(
            "the user name starts or ends with white space",
        ));
    }
    if username.chars().any(char::is_control) {
        return Err(StoreError::InvalidUser(
            "the user name contains control characters",
        ));
    }
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(StoreError::InvalidUser(
            "the user name is longer than 150 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{bounded, memory};

    #[tokio::test]
    async fn users_and_passwords() {
        let store = memory().await;
        bounded(async {
            let alice = store
                .create_user("alice", "correct horse", false)
                .await
                .expect("created");
            assert_eq!(alice.username, "alice");
            assert!(!alice.is_admin);
            assert_eq!(
                store.user(alice.id).await.expect("query"),
                Some(alice.clone())
            );
            assert_eq!(store.user(alice.id + 100).await.expect("query"), None);

            let right = store.verify_password("alice", "correct horse").await;
            assert_eq!(right.expect("query"), Some(alice.clone()));
            let wrong = store.verify_password("alice", "battery staple").await;
            assert_eq!(wrong.expect("query"), None);
            let unknown = store.verify_password("bob", "correct horse").await;
            assert_eq!(unknown.expect("query"), None);

            let bob = store.create_user("bob", "pw", true).await.expect("created");
            assert!(bob.id > alice.id);
            assert!(bob.is_admin);
        })
        .await;
    }

    #[tokio::test]
    async fn duplicate_and_invalid_users_are_refused() {
        let store = memory().await;
        bounded(async {
            store
                .create_user("alice", "one", false)
                .await
                .expect("created");
            let duplicate = store.create_user("alice", "two", true).await;
            assert!(
                matches!(&duplicate, Err(StoreError::DuplicateUser(name)) if name == "alice"),
                "{duplicate:?}"
            );
            // The first password still holds.
            let user = store.verify_password("alice", "one").await.expect("query");
            assert!(user.is_some());

            for (name, password) in [("", "pw"), (" alice", "pw"), ("a\nb", "pw"), ("carol", "")] {
                let result = store.create_user(name, password, false).await;
                assert!(
                    matches!(result, Err(StoreError::InvalidUser(_))),
                    "{name:?}: {result:?}"
                );
            }
        })
        .await;
    }

    #[tokio::test]
    async fn ensure_admin_generates_a_password_once() {
        let store = memory().await;
        bounded(async {
            let password = store
                .ensure_admin(None)
                .await
                .expect("first start")
                .expect("a generated password");
            assert!(password.len() >= 20, "{password}");
            assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
            let admin = store
                .verify_password("admin", &password)
                .await
                .expect("query")
                .expect("the generated password works");
            assert!(admin.is_admin);

            assert_eq!(store.ensure_admin(None).await.expect("second start"), None);
            assert_eq!(
                store.ensure_admin(Some("other")).await.expect("third"),
                None
            );
            let other = store
                .verify_password("admin", "other")
                .await
                .expect("query");
            assert_eq!(other, None, "a later start never changes the password");
        })
        .await;
    }

    #[tokio::test]
    async fn ensure_admin_uses_the_given_password() {
        let store = memory().await;
        bounded(async {
            let given = store.ensure_admin(Some("s3cret-from-env")).await;
            assert_eq!(given.expect("first start"), None);
            let admin = store
                .verify_password("admin", "s3cret-from-env")
                .await
                .expect("query")
                .expect("the given password works");
            assert!(admin.is_admin);
            assert_eq!(store.ensure_admin(None).await.expect("second start"), None);
        })
        .await;
    }

    #[tokio::test]
    async fn users_are_listed_renamed_passwords_changed_and_removed() {
        let store = memory().await;
        bounded(async {
            store.ensure_admin(Some("admin-pw")).await.expect("admin");
            let carol = store
                .create_user("carol", "one", false)
                .await
                .expect("carol");
            let names: Vec<String> = store
                .users()
                .await
                .expect("list")
                .into_iter()
                .map(|user| user.username)
                .collect();
            assert_eq!(names, ["admin", "carol"]);
            assert_eq!(
                store.user_by_name("carol").await.expect("query"),
                Some(carol.clone())
            );

            assert_eq!(
                store.set_password("carol", "two").await.expect("set"),
                carol
            );
            assert_eq!(
                store.verify_password("carol", "one").await.expect("q"),
                None
            );
            assert!(
                store
                    .verify_password("carol", "two")
                    .await
                    .expect("q")
                    .is_some()
            );
            let unknown = store.set_password("nobody", "x").await;
            assert!(matches!(unknown, Err(StoreError::UnknownUser(name)) if name == "nobody"));
            let empty = store.set_password("carol", "").await;
            assert!(
                matches!(empty, Err(StoreError::InvalidUser(_))),
                "{empty:?}"
            );

            let last = store.remove_user("admin").await;
            assert!(matches!(last, Err(StoreError::LastAdmin(name)) if name == "admin"));
            store
                .create_user("root", "pw", true)
                .await
                .expect("second admin");
            assert!(store.remove_user("admin").await.expect("removed").is_admin);
            assert_eq!(store.remove_user("carol").await.expect("removed"), carol);
            assert_eq!(store.user(carol.id).await.expect("query"), None);
            let gone = store.remove_user("carol").await;
            assert!(matches!(gone, Err(StoreError::UnknownUser(_))), "{gone:?}");
            // A new user never gets a removed user's id, so old tokens cannot name them.
            let again = store
                .create_user("carol", "three", false)
                .await
                .expect("again");
            assert!(again.id > carol.id);
        })
        .await;
    }

    #[tokio::test]
    async fn first_admin_on_start_says_whether_it_created_the_admin() {
        let store = memory().await;
        bounded(async {
            let first = store.first_admin_on_start(Some("given")).await;
            assert_eq!(
                first.expect("start"),
                AdminOnStart::Created { generated: None }
            );
            let later = store.first_admin_on_start(Some("other")).await;
            assert_eq!(later.expect("start"), AdminOnStart::UsersExist);
        })
        .await;
    }

    #[tokio::test]
    async fn ensure_admin_does_nothing_when_users_exist() {
        let store = memory().await;
        bounded(async {
            store
                .create_user("alice", "pw", false)
                .await
                .expect("created");
            assert_eq!(store.ensure_admin(None).await.expect("start"), None);
            let admin = store.verify_password("admin", "").await.expect("query");
            assert_eq!(admin, None);
        })
        .await;
    }
}
