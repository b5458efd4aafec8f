//! The store: cities, users and alerts in SQLite or PostgreSQL through sqlx, with embedded
//! migrations. One file per table ([`cities`], [`users`], [`alerts`]); the database glue
//! (URLs, pools, migrations) in [`database`]; the handshake cache in [`lookups`]; the
//! connection alerts are written on in `alert_writer`; here the [`Store`] handle, its errors
//! and the conversions every table shares.
//!
//! Choices worth knowing before changing anything here:
//! - **Portable SQL.** Queries use `$n` placeholders (sqlx's SQLite driver reads them as
//!   positions), `RETURNING` and `ON CONFLICT DO NOTHING`, all of which PostgreSQL speaks too.
//! - **UUIDs** are stored as lowercase canonical text and every UUID crossing this module is a
//!   parsed [`Uuid`], so an upper-case UUID from a client finds the same row.
//! - **Timestamps** are integer milliseconds since the Unix epoch, UTC (`BIGINT`): the same type
//!   and meaning in SQLite and PostgreSQL, no time-zone or text-format ambiguity.

mod alert_writer;
pub mod alerts;
pub mod cities;
pub mod database;
pub mod lookups;
pub mod tokens;
pub mod users;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use sqlx::migrate::MigrateError;
use uuid::Uuid;

pub use alerts::StoredAlert;
pub use cities::{City, city_uuid};
pub use database::Backend;
pub use lookups::LookupTtl;
pub use users::{AdminOnStart, User};

/// The result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in the store. Each variant says which step failed; the underlying cause is
/// the error's `source()` (print with `{:#}` through anyhow to see the whole chain).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database this store runs on.
    #[error("unsupported database URL {0}: use sqlite://FILE or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The URL was not understood or the database could not be opened. `url` has any password
    /// replaced by `***`.
    #[error("cannot open the database {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database {url}")]
    Migrate {
        url: String,
        #[source]
        source: MigrateError,
    },
    /// A statement failed; `action` says what the store was doing.
    #[error("database error while {action}")]
    Query {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// `create_user` with a name that is taken.
    #[error("user '{0}' already exists")]
    DuplicateUser(String),
    /// `create_user` with a name or password that cannot be stored.
    #[error("invalid user: {0}")]
    InvalidUser(&'static str),
    /// No user has this name.
    #[error("there is no user '{0}'")]
    UnknownUser(String),
    /// Removing this user would leave the service without an administrator.
    #[error("'{0}' is the last administrator: the service would have none left")]
    LastAdmin(String),
    /// `insert_alert` for a city that is not in the store.
    #[error("city {0} does not exist")]
    UnknownCity(Uuid),
    /// Hashing or checking a password failed for a reason other than a wrong password.
    #[error(transparent)]
    Password(#[from] crate::auth::passwords::PasswordError),
    /// A stored value that this build cannot read back (a UUID that does not parse, say).
    #[error("unreadable {column} in table {table}: {detail}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        detail: String,
    },
}

/// The database behind the service. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The rows handshakes read, kept for a few seconds ([`lookups`]).
    lookups: std::sync::Arc<lookups::Lookups>,
    /// The connection alerts are written on ([`alert_writer`]).
    alert_writer: std::sync::Arc<alert_writer::AlertWriter>,
}

impl Store {
    /// Opens (creating the file if needed: `sqlite://path?mode=rwc`), runs migrations, seeds the
    /// six cities if missing. `sqlite::memory:` must work for tests.
    ///
    /// A URL without a `mode=` parameter is opened with `mode=rwc`, so `sqlite://wfs.db` creates
    /// the file; its directory must exist.
    pub async fn open(database_url: &str) -> Result<Store> {
        let opened = database::connect(database_url).await?;
        let store = Store {
            pool: opened.pool,
            backend: opened.backend,
            lookups: std::sync::Arc::new(lookups::Lookups::new(LookupTtl::default())),
            alert_writer: std::sync::Arc::new(alert_writer::AlertWriter::new(
                opened.backend,
                opened.own_connection_url,
            )),
        };
        store.seed_cities().await?;
        Ok(store)
    }

    /// This store trusting the rows handshakes read for `ttl` (see [`lookups`]); clones made
    /// before keep the old cache.
    pub fn with_lookup_ttl(mut self, ttl: LookupTtl) -> Store {
        self.lookups = std::sync::Arc::new(lookups::Lookups::new(ttl));
        self
    }

    /// Closes every connection (and, for a file, checkpoints the WAL). Later calls fail.
    pub async fn close(&self) {
        // The pool first: the writer opens no connection once it is closed.
        self.pool.close().await;
        self.alert_writer.close().await;
    }
}

/// Maps a sqlx error to [`StoreError::Query`] for `action`.
fn query_error(action: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_foreign_key_violation())
}

fn parse_uuid(table: &'static str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|error| StoreError::Corrupt {
        table,
        column: "uuid",
        detail: error.to_string(),
    })
}

fn millis_to_datetime(millis: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| StoreError::Corrupt {
        table: "alerts",
        column: "created_at",
        detail: format!("{millis} ms is outside the representable time range"),
    })
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    /// Generous: argon2 is built optimised even in debug (see Cargo.toml), so a test takes
    /// milliseconds; the bound only stops a hang from blocking the suite.
    const LIMIT: Duration = Duration::from_secs(60);

    pub(super) async fn bounded<T>(work: impl Future<Output = T>) -> T {
        tokio::time::timeout(LIMIT, work)
            .await
            .expect("the test did not finish in time")
    }

    pub(super) async fn memory() -> Store {
        bounded(Store::open("sqlite::memory:"))
            .await
            .expect("an in-memory store opens")
    }

    /// A directory under the system's temp dir, removed when dropped (even if the test fails).
    pub(super) struct TempDir(pub(super) PathBuf);

    impl TempDir {
        /// The URL of a SQLite file in this directory.
        pub(super) fn database_url(&self) -> String {
            format!("sqlite://{}", self.0.join("wfs.db").display())
        }

        pub(super) fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!("wfs-store-test-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("temp dir is created");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn a_file_database_survives_reopening() {
        let dir = TempDir::new();
        let url = dir.database_url();
        bounded(async {
            let store = Store::open(&url).await.expect("created");
            let alice = store
                .create_user("alice", "pw", false)
                .await
                .expect("created");
            let alert = store
                .insert_alert(city_uuid("Sydney"), "storm")
                .await
                .expect("stored");
            store.close().await;

            let store = Store::open(&url).await.expect("reopened");
            assert_eq!(store.cities().await.expect("cities").len(), 6);
            let again = store.verify_password("alice", "pw").await.expect("query");
            assert_eq!(again, Some(alice));
            let alerts = store.recent_alerts(city_uuid("Sydney"), 5, None).await;
            assert_eq!(alerts.expect("query"), [alert]);
            store.close().await;
        })
        .await;
        assert!(dir.0.join("wfs.db").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |name: &str| {
                std::fs::metadata(dir.0.join(name))
                    .expect("the file exists")
                    .permissions()
                    .mode()
                    & 0o777
            };
            // It holds password hashes: readable by its owner only.
            assert_eq!(mode("wfs.db"), 0o600);
        }
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_build_is_refused() {
        let dir = TempDir::new();
        let url = dir.database_url();
        bounded(async {
            let store = Store::open(&url).await.expect("created");
            sqlx::query(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (99, 'from the future', TRUE, X'00', 0)",
            )
            .execute(&store.pool)
            .await
            .expect("recorded");
            store.close().await;
            let error = Store::open(&url).await.expect_err("refused");
            assert!(matches!(error, StoreError::Migrate { .. }), "{error:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn open_errors_name_the_database() {
        let dir = TempDir::new();
        // The directory does not exist, so SQLite cannot create the file.
        let url = format!("sqlite://{}/missing/wfs.db", dir.0.display());
        let error = bounded(Store::open(&url)).await.expect_err("cannot open");
        assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
        assert!(error.to_string().contains("missing/wfs.db"), "{error}");
    }
}
