//! The store: cities, users and alerts in SQLite through sqlx, with embedded migrations.
//!
//! Choices worth knowing before changing anything here:
//! - **Portable SQL.** Queries use `$n` placeholders (sqlx's SQLite driver reads them as
//!   positions), `RETURNING` and `ON CONFLICT DO NOTHING`, all of which PostgreSQL speaks too.
//!   Only the DDL differs between databases (self-incrementing ids), so migrations live in
//!   `migrations/<database>/`.
//! - **Migrations** run through sqlx's own [`Migrator`], fed with SQL that `include_str!` embeds
//!   in the binary. The `migrate!` macro would need sqlx's `macros` feature, which compiles a
//!   proc-macro stack and a second copy of SQLite for the host; building the `Migration` values
//!   by hand costs a few lines and keeps sqlx's bookkeeping: the `_sqlx_migrations` table with
//!   checksums (an edited migration is refused, not silently skipped), a refusal to run against
//!   a database that a newer build migrated further, and compatibility with `sqlx-cli`.
//! - **UUIDs** are stored as lowercase canonical text and every UUID crossing this module is a
//!   parsed [`Uuid`], so an upper-case UUID from a client finds the same row.
//! - **Timestamps** are integer milliseconds since the Unix epoch, UTC (`BIGINT`): the same type
//!   and meaning in SQLite and PostgreSQL, no time-zone or text-format ambiguity.
//! - **Passwords** are argon2id PHC strings. Hashing takes tens of milliseconds of CPU on
//!   purpose, so it runs on tokio's blocking pool rather than on a runtime worker.

use std::borrow::Cow;

use argon2::Argon2;
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{Executor, Row, SqlSafeStr};
use uuid::Uuid;

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
    /// `insert_alert` for a city that is not in the store.
    #[error("city {0} does not exist")]
    UnknownCity(Uuid),
    /// Hashing or checking a password failed for a reason other than a wrong password.
    #[error("cannot hash or check a password: {0}")]
    Hash(String),
    /// The operating system's random source failed.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
    /// A stored value that this build cannot read back (a UUID that does not parse, say).
    #[error("unreadable {column} in table {table}: {detail}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        detail: String,
    },
}

/// A city that alerts and chat rooms are keyed by.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct City {
    pub uuid: Uuid,
    pub name: String,
    pub country: String,
    pub continent: String,
    pub timezone: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// A user who can obtain tokens. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

/// An alert as stored: `id` only grows, `created_at` is at millisecond precision.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub id: i64,
    pub city_uuid: Uuid,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// The namespace of [`city_uuid`]: a random UUIDv4 drawn once for this project. Changing it
/// changes every city's UUID and breaks every client that kept one, so never change it.
const CITY_NAMESPACE: Uuid = Uuid::from_u128(0xe2a7_9975_f9f0_4d29_8736_a04a_427c_a35d);

/// The UUID of a seeded city: UUIDv5 of the name in a fixed namespace, so every machine agrees.
pub fn city_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&CITY_NAMESPACE, name.as_bytes())
}

/// A city the service ships with (WIRE.md, "Cities").
struct SeedCity {
    name: &'static str,
    country: &'static str,
    continent: &'static str,
    timezone: &'static str,
    latitude: f64,
    longitude: f64,
}

const SEED_CITIES: [SeedCity; 6] = [
    SeedCity {
        name: "Cairo",
        country: "Egypt",
        continent: "Africa",
        timezone: "Africa/Cairo",
        latitude: 30.062630,
        longitude: 31.249670,
    },
    SeedCity {
        name: "Istanbul",
        country: "Turkey",
        continent: "Asia",
        timezone: "Europe/Istanbul",
        latitude: 41.008200,
        longitude: 28.978400,
    },
    SeedCity {
        name: "Mexico City",
        country: "Mexico",
        continent: "North America",
        timezone: "America/Mexico_City",
        latitude: 19.432600,
        longitude: -99.133200,
    },
    SeedCity {
        name: "Sao Paulo",
        country: "Brazil",
        continent: "South America",
        timezone: "America/Sao_Paulo",
        latitude: -23.550500,
        longitude: -46.633300,
    },
    SeedCity {
        name: "Sydney",
        country: "Australia",
        continent: "Oceania",
        timezone: "Australia/Sydney",
        latitude: -33.868800,
        longitude: 151.209300,
    },
    SeedCity {
        name: "Tokyo",
        country: "Japan",
        continent: "Asia",
        timezone: "Asia/Tokyo",
        latitude: 35.689500,
        longitude: 139.691700,
    },
];

/// The SQLite migrations, in order: (version, description, SQL). Append only: sqlx refuses a
/// database whose applied migrations were edited afterwards.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "cities users alerts",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "alert history",
        include_str!("../migrations/sqlite/0002_alert_history.sql"),
    ),
];

/// The same schema for PostgreSQL: only the self-incrementing ids are written differently.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "cities users alerts",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "alert history",
        include_str!("../migrations/postgres/0002_alert_history.sql"),
    ),
];

/// `is_admin` as a BIGINT 0 or 1: sqlx's `Any` driver cannot read SQLite's BOOLEAN, and
/// BIGINT reads alike from both databases. A macro, so queries stay literal strings.
macro_rules! is_admin_column {
    () => {
        "CAST(CASE WHEN is_admin THEN 1 ELSE 0 END AS BIGINT) AS is_admin"
    };
}

/// Which database a store runs on; the SQL is shared, these are the few differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(database_url: &str) -> Option<Backend> {
        if database_url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    fn migrations(self) -> &'static [(i64, &'static str, &'static str)] {
        match self {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        }
    }
}

/// The name of the account that the first start creates.
const ADMIN_USERNAME: &str = "admin";

/// Length of the generated admin password: 24 characters of 62 give about 143 bits.
const GENERATED_PASSWORD_LEN: usize = 24;

/// Django's limit, which the old service's user names already respect.
const MAX_USERNAME_CHARS: usize = 150;

/// The database behind the service. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating the file if needed: `sqlite://path?mode=rwc`), runs migrations, seeds the
    /// six cities if missing. `sqlite::memory:` must work for tests.
    ///
    /// A URL without a `mode=` parameter is opened with `mode=rwc`, so `sqlite://wfs.db` creates
    /// the file; its directory must exist.
    pub async fn open(database_url: &str) -> Result<Store> {
        let url = redact_url(database_url);
        let open_error = |source| StoreError::Open {
            url: url.clone(),
            source,
        };
        let Some(backend) = Backend::of(database_url) else {
            return Err(StoreError::UnsupportedUrl(url));
        };
        sqlx::any::install_default_drivers();
        let pool = match backend {
            Backend::Sqlite => {
                let in_memory =
                    database_url.contains(":memory:") || database_url.contains("mode=memory");
                let mut connect_url = database_url.to_owned();
                if !in_memory && !database_url.contains("mode=") {
                    connect_url.push(if database_url.contains('?') { '&' } else { '?' });
                    connect_url.push_str("mode=rwc");
                }
                let pool_options = if in_memory {
                    // An in-memory database lives only as long as a connection to it: keep
                    // exactly one open for the life of the pool (one also avoids shared-cache
                    // table locks).
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    // WAL lets readers (handshakes looking up cities and users) proceed while an
                    // alert is written; NORMAL is the durability level SQLite recommends with
                    // WAL; the busy timeout lets two instances share the file.
                    AnyPoolOptions::new().max_connections(8).after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON")
                                .await?;
                            Ok(())
                        })
                    })
                };
                pool_options
                    .connect(&connect_url)
                    .await
                    .map_err(open_error)?
            }
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(database_url)
                .await
                .map_err(open_error)?,
        };

        migrator(backend)
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: url.clone(),
                source,
            })?;
        let store = Store { pool, backend };
        store.seed_cities().await?;
        Ok(store)
    }

    /// Closes every connection (and, for a file, checkpoints the WAL). Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts the cities the service ships with, leaving any that are already there alone.
    async fn seed_cities(&self) -> Result<()> {
        let action = "seeding the cities";
        let mut tx = self.pool.begin().await.map_err(query_error(action))?;
        for city in &SEED_CITIES {
            // No conflict target: a city already present by UUID or by name stays as it is.
            sqlx::query(
                "INSERT INTO cities (uuid, name, country, continent, timezone, latitude, longitude) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(city_uuid(city.name).to_string())
            .bind(city.name)
            .bind(city.country)
            .bind(city.continent)
            .bind(city.timezone)
            .bind(city.latitude)
            .bind(city.longitude)
            .execute(&mut *tx)
            .await
            .map_err(query_error(action))?;
        }
        tx.commit().await.map_err(query_error(action))
    }

    /// Every city, sorted by name.
    pub async fn cities(&self) -> Result<Vec<City>> {
        let rows = sqlx::query(
            "SELECT uuid, name, country, continent, timezone, latitude, longitude \
             FROM cities ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("listing the cities"))?;
        rows.iter().map(city_from_row).collect()
    }

    /// The city with this UUID, if any.
    pub async fn city(&self, uuid: Uuid) -> Result<Option<City>> {
        let row = sqlx::query(
            "SELECT uuid, name, country, continent, timezone, latitude, longitude \
             FROM cities WHERE uuid = $1",
        )
        .bind(uuid.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("looking up a city"))?;
        row.as_ref().map(city_from_row).transpose()
    }

    /// The first city, in name order, whose name contains `fragment` ignoring case (Unicode
    /// lower-casing, done here rather than in SQL where `LOWER` and `LIKE` differ between
    /// databases and treat `%` and `_` as wildcards). An empty fragment matches the first city.
    pub async fn find_city(&self, fragment: &str) -> Result<Option<City>> {
        let needle = fragment.trim().to_lowercase();
        let cities = self.cities().await?;
        Ok(cities
            .into_iter()
            .find(|city| city.name.to_lowercase().contains(&needle)))
    }

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
            let password = password.to_owned();
            blocking(move || hash_password(&password).map(drop)).await?;
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        let hash: String = row
            .try_get("password_hash")
            .map_err(query_error("reading a password hash"))?;
        let password = password.to_owned();
        let matches = blocking(move || check_password(&password, &hash)).await?;
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
        let owned = password.to_owned();
        let hash = blocking(move || hash_password(&owned)).await?;
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
    ///
    /// Two instances starting together on one database cannot both create `admin`: the loser's
    /// insert hits the unique name and it returns `None`.
    pub async fn ensure_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("counting users"))?;
        if users > 0 {
            return Ok(None);
        }
        let (chosen, generated) = match password {
            Some(given) => (given.to_owned(), None),
            None => {
                let generated = random_password()?;
                (generated.clone(), Some(generated))
            }
        };
        match self.create_user(ADMIN_USERNAME, &chosen, true).await {
            Ok(_) => Ok(generated),
            Err(StoreError::DuplicateUser(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Stores an alert for `city`, stamped with the current time. Ids only grow.
    pub async fn insert_alert(&self, city: Uuid, message: &str) -> Result<StoredAlert> {
        let created_at_ms = Utc::now().timestamp_millis();
        let row = sqlx::query(
            "INSERT INTO alerts (city_uuid, message, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(city.to_string())
        .bind(message)
        .bind(created_at_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(|source| {
            if is_foreign_key_violation(&source) {
                StoreError::UnknownCity(city)
            } else {
                query_error("storing an alert")(source)
            }
        })?;
        let id = row
            .try_get("id")
            .map_err(query_error("reading a new alert's id"))?;
        Ok(StoredAlert {
            id,
            city_uuid: city,
            message: message.to_owned(),
            created_at: millis_to_datetime(created_at_ms)?,
        })
    }

    /// Stores an alert and runs `then` with it before the write is committed, holding the
    /// database's write lock meanwhile. Publishing from `then` makes alerts of every instance
    /// that shares this database reach the bus in id order: a second publisher's insert waits
    /// until the first one's alert has been handed on.
    pub async fn insert_alert_then<T, F, Fut>(
        &self,
        city: Uuid,
        message: &str,
        then: F,
    ) -> Result<(StoredAlert, T)>
    where
        F: FnOnce(StoredAlert) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let start = query_error("starting an alert transaction");
        let mut transaction = match self.backend {
            // IMMEDIATE takes SQLite's write lock at once, so it is held across `then`.
            Backend::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(&start)?,
            // One advisory lock per city, held to the end of the transaction.
            Backend::Postgres => {
                let mut transaction = self.pool.begin().await.map_err(&start)?;
                let key = i64::from_be_bytes(city.as_bytes()[..8].try_into().unwrap_or_default());
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(key)
                    .execute(&mut *transaction)
                    .await
                    .map_err(&start)?;
                transaction
            }
        };
        let created_at_ms = Utc::now().timestamp_millis();
        let row = sqlx::query(
            "INSERT INTO alerts (city_uuid, message, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(city.to_string())
        .bind(message)
        .bind(created_at_ms)
        .fetch_one(&mut *transaction)
        .await
        .map_err(|source| {
            if is_foreign_key_violation(&source) {
                StoreError::UnknownCity(city)
            } else {
                query_error("storing an alert")(source)
            }
        })?;
        let stored = StoredAlert {
            id: row
                .try_get("id")
                .map_err(query_error("reading a new alert's id"))?,
            city_uuid: city,
            message: message.to_owned(),
            created_at: millis_to_datetime(created_at_ms)?,
        };
        let outcome = then(stored.clone()).await;
        transaction
            .commit()
            .await
            .map_err(query_error("committing an alert"))?;
        Ok((stored, outcome))
    }

    /// Up to `limit` of `city`'s alerts, newest first, only those with an id below `before_id`
    /// when it is given (for paging backwards).
    pub async fn recent_alerts(
        &self,
        city: Uuid,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<StoredAlert>> {
        let rows = sqlx::query(
            "SELECT id, city_uuid, message, created_at FROM alerts \
             WHERE city_uuid = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(city.to_string())
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("listing alerts"))?;
        rows.iter().map(alert_from_row).collect()
    }

    /// Keeps at most `keep` of `city`'s newest alerts, none older than `max_age`, and records
    /// the highest id removed (see [`Store::history_floor`]).
    pub async fn prune_alerts(
        &self,
        city: Uuid,
        keep: u32,
        max_age: std::time::Duration,
    ) -> Result<()> {
        let cutoff_ms =
            Utc::now().timestamp_millis() - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let deleted = sqlx::query(
            "DELETE FROM alerts WHERE city_uuid = $1 AND (created_at < $2 OR id <= \
             (SELECT id FROM alerts WHERE city_uuid = $1 ORDER BY id DESC LIMIT 1 OFFSET $3)) \
             RETURNING id",
        )
        .bind(city.to_string())
        .bind(cutoff_ms)
        .bind(i64::from(keep))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("pruning alerts"))?;
        let mut highest = None;
        for row in &deleted {
            let id: i64 = row
                .try_get("id")
                .map_err(query_error("reading a pruned alert's id"))?;
            highest = highest.max(Some(id));
        }
        if let Some(highest) = highest {
            sqlx::query(
                "INSERT INTO alert_history (city_uuid, pruned_through) VALUES ($1, $2) \
                 ON CONFLICT (city_uuid) DO UPDATE SET pruned_through = excluded.pruned_through \
                 WHERE alert_history.pruned_through < excluded.pruned_through",
            )
            .bind(city.to_string())
            .bind(highest)
            .execute(&self.pool)
            .await
            .map_err(query_error("recording pruned alerts"))?;
        }
        Ok(())
    }

    /// The highest alert id of `city` that was pruned (0 if none): a client that saw an older
    /// id has missed alerts that are no longer kept.
    pub async fn history_floor(&self, city: Uuid) -> Result<i64> {
        let row = sqlx::query("SELECT pruned_through FROM alert_history WHERE city_uuid = $1")
            .bind(city.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("reading the history floor"))?;
        match row {
            Some(row) => row
                .try_get("pruned_through")
                .map_err(query_error("reading the history floor")),
            None => Ok(0),
        }
    }

    /// A city's alerts after `after_id`, oldest first, at most `limit`: what a client that saw
    /// `after_id` missed (SSE `Last-Event-ID`, the alert channel's `since`).
    pub async fn alerts_after(
        &self,
        city: Uuid,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StoredAlert>> {
        let rows = sqlx::query(
            "SELECT id, city_uuid, message, created_at FROM alerts \
             WHERE city_uuid = $1 AND id > $2 ORDER BY id ASC LIMIT $3",
        )
        .bind(city.to_string())
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("listing missed alerts"))?;
        rows.iter().map(alert_from_row).collect()
    }
}

/// The migrator for `backend`, built from the embedded SQL.
fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        backend
            .migrations()
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
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

fn city_from_row(row: &AnyRow) -> Result<City> {
    let read = query_error("reading a city");
    Ok(City {
        uuid: parse_uuid("cities", row.try_get("uuid").map_err(&read)?)?,
        name: row.try_get("name").map_err(&read)?,
        country: row.try_get("country").map_err(&read)?,
        continent: row.try_get("continent").map_err(&read)?,
        timezone: row.try_get("timezone").map_err(&read)?,
        latitude: row.try_get("latitude").map_err(&read)?,
        longitude: row.try_get("longitude").map_err(&read)?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    let read = query_error("reading a user");
    Ok(User {
        id: row.try_get("id").map_err(&read)?,
        username: row.try_get("username").map_err(&read)?,
        is_admin: row.try_get::<i64, _>("is_admin").map_err(&read)? != 0,
    })
}

fn alert_from_row(row: &AnyRow) -> Result<StoredAlert> {
    let read = query_error("reading an alert");
    Ok(StoredAlert {
        id: row.try_get("id").map_err(&read)?,
        city_uuid: parse_uuid("alerts", row.try_get("city_uuid").map_err(&read)?)?,
        message: row.try_get("message").map_err(&read)?,
        created_at: millis_to_datetime(row.try_get("created_at").map_err(&read)?)?,
    })
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

/// Runs CPU-heavy work (argon2) on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Hash(format!("the hashing task did not finish: {error}")))?
}

/// An argon2id PHC string of `password` with a fresh random salt (OWASP's parameters, the
/// crate's defaults: 19 MiB, 2 passes, 1 lane).
fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| StoreError::Random(error.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| StoreError::Hash(error.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| StoreError::Hash(error.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string (whatever parameters it was made with).
fn check_password(password: &str, stored: &str) -> Result<bool> {
    let parsed = PasswordHash::new(stored).map_err(|error| StoreError::Corrupt {
        table: "users",
        column: "password_hash",
        detail: error.to_string(),
    })?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(error) => Err(StoreError::Hash(error.to_string())),
    }
}

/// A password of ASCII letters and digits: safe to paste anywhere, never mistaken for a flag.
fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Bytes at or above the largest multiple of the alphabet's size are dropped, so every
    // character is equally likely.
    let unbiased_below = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut password = String::with_capacity(GENERATED_PASSWORD_LEN);
    let mut bytes = [0u8; 64];
    while password.len() < GENERATED_PASSWORD_LEN {
        getrandom::fill(&mut bytes).map_err(|error| StoreError::Random(error.to_string()))?;
        for &byte in bytes.iter().filter(|&&byte| byte < unbiased_below) {
            if password.len() == GENERATED_PASSWORD_LEN {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

/// `url` with the password of its user-info part and any `password` query parameter replaced
/// by `***`, fit for error messages and logs.
fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => base.to_owned(),
                },
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                    format!("{key}=***")
                }
                _ => param.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&params.join("&"));
    }
    redacted
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

    async fn bounded<T>(work: impl Future<Output = T>) -> T {
        tokio::time::timeout(LIMIT, work)
            .await
            .expect("the test did not finish in time")
    }

    async fn memory() -> Store {
        bounded(Store::open("sqlite::memory:"))
            .await
            .expect("an in-memory store opens")
    }

    /// A directory under the system's temp dir, removed when dropped (even if the test fails).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
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
    async fn seeding_is_idempotent_and_uuids_are_stable() {
        let store = memory().await;
        bounded(async {
            store.seed_cities().await.expect("seeding again works");
            let cities = store.cities().await.expect("cities");
            let names: Vec<&str> = cities.iter().map(|city| city.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "Cairo",
                    "Istanbul",
                    "Mexico City",
                    "Sao Paulo",
                    "Sydney",
                    "Tokyo"
                ]
            );
            // The exact value: if this changes, every stored client UUID breaks.
            let cairo = Uuid::parse_str("df257fd6-63a5-5b69-b454-73da5d1224c2").expect("uuid");
            assert_eq!(city_uuid("Cairo"), cairo);
            assert_eq!(cities[0].uuid, cairo);
            assert_eq!(cities[0].timezone, "Africa/Cairo");
            assert_eq!(cities[2].longitude, -99.1332);
            for city in &cities {
                assert_eq!(city.uuid, city_uuid(&city.name));
                assert_eq!(city.uuid.get_version_num(), 5);
            }
        })
        .await;
    }

    #[tokio::test]
    async fn city_by_uuid_ignores_case() {
        let store = memory().await;
        bounded(async {
            let tokyo = city_uuid("Tokyo");
            let upper = Uuid::parse_str(&tokyo.to_string().to_uppercase()).expect("uuid");
            let city = store.city(upper).await.expect("query").expect("found");
            assert_eq!(city.name, "Tokyo");
            assert_eq!(store.city(Uuid::new_v4()).await.expect("query"), None);
        })
        .await;
    }

    #[tokio::test]
    async fn find_city_matches_substrings_ignoring_case_in_name_order() {
        let store = memory().await;
        bounded(async {
            let find = |fragment: &'static str| {
                let store = store.clone();
                async move {
                    store
                        .find_city(fragment)
                        .await
                        .expect("query")
                        .map(|city| city.name)
                }
            };
            assert_eq!(find("cai").await.as_deref(), Some("Cairo"));
            assert_eq!(find("CITY").await.as_deref(), Some("Mexico City"));
            assert_eq!(find("sAo pA").await.as_deref(), Some("Sao Paulo"));
            // "o" is in Cairo, Mexico City, Sao Paulo and Tokyo: the first by name wins.
            assert_eq!(find("o").await.as_deref(), Some("Cairo"));
            assert_eq!(find("y").await.as_deref(), Some("Mexico City"));
            assert_eq!(find("%").await, None);
            assert_eq!(find("Zürich").await, None);
        })
        .await;
    }

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

    #[tokio::test]
    async fn alerts_have_increasing_ids_and_come_back_newest_first() {
        let store = memory().await;
        bounded(async {
            let cairo = city_uuid("Cairo");
            let tokyo = city_uuid("Tokyo");
            let before = Utc::now() - chrono::Duration::seconds(1);
            let first = store.insert_alert(cairo, "one").await.expect("stored");
            let other = store
                .insert_alert(tokyo, "elsewhere")
                .await
                .expect("stored");
            let second = store.insert_alert(cairo, "two").await.expect("stored");
            let third = store
                .insert_alert(cairo, "Zürich ☔")
                .await
                .expect("stored");
            assert!(first.id < other.id && other.id < second.id && second.id < third.id);
            assert!(first.created_at >= before && third.created_at >= first.created_at);
            assert!(third.created_at <= Utc::now());

            let recent = store.recent_alerts(cairo, 10, None).await.expect("query");
            assert_eq!(recent, [third.clone(), second.clone(), first.clone()]);
            let newest = store.recent_alerts(cairo, 2, None).await.expect("query");
            assert_eq!(newest, [third.clone(), second.clone()]);
            let older = store.recent_alerts(cairo, 10, Some(second.id)).await;
            assert_eq!(older.expect("query"), std::slice::from_ref(&first));
            let missed = store
                .alerts_after(cairo, first.id, 10)
                .await
                .expect("query");
            assert_eq!(missed, [second.clone(), third.clone()]);
            let capped = store.alerts_after(cairo, 0, 2).await.expect("query");
            assert_eq!(capped, [first.clone(), second.clone()]);
            assert!(
                store
                    .alerts_after(cairo, third.id, 10)
                    .await
                    .expect("query")
                    .is_empty()
            );
            let none = store.recent_alerts(cairo, 0, None).await.expect("query");
            assert!(none.is_empty());
            let tokyo_alerts = store.recent_alerts(tokyo, 10, None).await.expect("query");
            assert_eq!(tokyo_alerts, [other]);

            let nowhere = Uuid::new_v4();
            let unknown = store.insert_alert(nowhere, "lost").await;
            assert!(
                matches!(unknown, Err(StoreError::UnknownCity(uuid)) if uuid == nowhere),
                "{unknown:?}"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_file_database_survives_reopening() {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("wfs.db").display());
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
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_build_is_refused() {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("wfs.db").display());
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

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("sqlite://wfs.db?mode=rwc"),
            "sqlite://wfs.db?mode=rwc"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact_url("postgres://wfs:hunter2@db:5432/wfs?sslmode=require"),
            "postgres://wfs:***@db:5432/wfs?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/wfs?user=wfs&password=hunter2"),
            "postgres://db/wfs?user=wfs&password=***"
        );
        assert_eq!(redact_url("postgres://wfs@db/wfs"), "postgres://wfs@db/wfs");
    }

    #[test]
    fn generated_passwords_differ() {
        let one = random_password().expect("random");
        let two = random_password().expect("random");
        assert_eq!(one.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(one, two);
    }
}
