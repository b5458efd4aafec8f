//! The database glue: which database a URL names, how a pool is opened on it (SQLite's pragmas,
//! PostgreSQL's timeouts), and the embedded migrations of each.
//!
//! **Migrations** run through sqlx's own [`Migrator`], fed with SQL that `include_str!` embeds in
//! the binary. The `migrate!` macro would need sqlx's `macros` feature, which compiles a
//! proc-macro stack and a second copy of SQLite for the host; building the `Migration` values by
//! hand costs a few lines and keeps sqlx's bookkeeping: the `_sqlx_migrations` table with
//! checksums (an edited migration is refused, not silently skipped), a refusal to run against a
//! database that a newer build migrated further, and compatibility with `sqlx-cli`.
//! Only the DDL differs between databases (self-incrementing ids), so migrations live in
//! `migrations/<database>/`; every query elsewhere is shared.

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, SqlSafeStr};

use super::{Result, StoreError};

/// The SQLite migrations, in order: (version, description, SQL). Append only: sqlx refuses a
/// database whose applied migrations were edited afterwards.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "cities users alerts",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "alert history",
        include_str!("../../migrations/sqlite/0002_alert_history.sql"),
    ),
    (
        3,
        "revoked tokens",
        include_str!("../../migrations/sqlite/0003_revoked_tokens.sql"),
    ),
    (
        4,
        "alerts by age",
        include_str!("../../migrations/sqlite/0004_alerts_by_age.sql"),
    ),
];

/// The same schema for PostgreSQL: only the self-incrementing ids are written differently.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "cities users alerts",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "alert history",
        include_str!("../../migrations/postgres/0002_alert_history.sql"),
    ),
    (
        3,
        "revoked tokens",
        include_str!("../../migrations/postgres/0003_revoked_tokens.sql"),
    ),
    (
        4,
        "alerts by age",
        include_str!("../../migrations/postgres/0004_alerts_by_age.sql"),
    ),
];

/// How long a request waits for a database connection before it fails (503 rather than a
/// hang when the database is down): the PostgreSQL pool's acquire, and the alert writer's
/// check or opening of its own connection on either database.
pub(super) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Which database a store runs on; the SQL is shared, these are the few differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(super) fn of(database_url: &str) -> Option<Backend> {
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

/// What SQLite is told on every connection to a file. WAL lets readers (handshakes looking up
/// cities and users) proceed while an alert is written; NORMAL is the durability level SQLite
/// recommends with WAL; the busy timeout lets two instances share the file.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON";

/// An open database: the pool every query shares, and where a connection of its own may be
/// opened (`None` for an in-memory SQLite database, which lives in the pool's one connection).
pub(super) struct Opened {
    pub pool: AnyPool,
    pub backend: Backend,
    pub own_connection_url: Option<String>,
}

/// Opens a pool on `database_url` (creating a SQLite file if needed: `mode=rwc` unless the URL
/// says otherwise) and brings its schema up to date.
pub(super) async fn connect(database_url: &str) -> Result<Opened> {
    let url = redact_url(database_url);
    let open_error = |source| StoreError::Open {
        url: url.clone(),
        source,
    };
    let Some(backend) = Backend::of(database_url) else {
        return Err(StoreError::UnsupportedUrl(url));
    };
    sqlx::any::install_default_drivers();
    let (pool, own_connection_url) = match backend {
        Backend::Sqlite => {
            let in_memory =
                database_url.contains(":memory:") || database_url.contains("mode=memory");
            let mut connect_url = database_url.to_owned();
            if !in_memory && !database_url.contains("mode=") {
                connect_url.push(if database_url.contains('?') { '&' } else { '?' });
                connect_url.push_str("mode=rwc");
            }
            if !in_memory && connect_url.contains("mode=rwc") {
                create_private(database_url).map_err(|source| StoreError::Open {
                    url: url.clone(),
                    source: sqlx::Error::Io(source),
                })?;
            }
            // A connection to a SQLite file is a handle inside this process: it does not go
            // stale as a network connection may, so it is not pinged (a round trip to its
            // worker thread) every time the pool hands it out.
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
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection.execute(SQLITE_PRAGMAS).await?;
                            Ok(())
                        })
                    })
            };
            let pool = pool_options
                .test_before_acquire(false)
                .connect(&connect_url)
                .await
                .map_err(open_error)?;
            (pool, (!in_memory).then_some(connect_url))
        }
        Backend::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect(database_url)
                .await
                .map_err(open_error)?;
            (pool, Some(database_url.to_owned()))
        }
    };

    migrator(backend)
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate { url, source })?;
    Ok(Opened {
        pool,
        backend,
        own_connection_url,
    })
}

/// A connection outside the pool, on a URL from [`Opened::own_connection_url`], set up as the
/// pool's are.
pub(super) async fn connect_one(
    backend: Backend,
    url: &str,
) -> std::result::Result<AnyConnection, sqlx::Error> {
    let mut connection = AnyConnection::connect(url).await?;
    if backend == Backend::Sqlite {
        connection.execute(SQLITE_PRAGMAS).await?;
    }
    Ok(connection)
}

/// Creates the SQLite file of `database_url` with mode 0600 if it does not exist yet: it holds
/// password hashes, so other users of the machine may not read it (SQLite gives its `-wal` and
/// `-shm` files the same mode). SQLite itself would create it with the umask's 0644.
fn create_private(database_url: &str) -> std::io::Result<()> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .unwrap_or(database_url);
    let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
    if path.as_os_str().is_empty() || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another instance created it at the same moment.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(std::io::Error::new(
            error.kind(),
            format!("{}: {error}", path.display()),
        )),
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

/// `url` with the password of its user-info part and any `password` query parameter replaced
/// by `***`, fit for error messages and logs.
pub(super) fn redact_url(url: &str) -> String {
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
    use super::*;

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
}
