//! The connection alerts are written on: one of its own, outside the pool.
//!
//! Publishing is one alert at a time on an instance already (`App::publish_alert` holds
//! `alert_order` from the insert to the commit), so one connection serves it, and a connection
//! of its own saves what the pool charges for each use:
//! - sqlx pings a connection every time it goes back to the pool (a round trip to SQLite's
//!   worker thread, or to PostgreSQL), from a task it spawns for that; sqlx 0.9 has no option to
//!   skip it.
//! - SQLite drops a connection's page cache whenever another connection has written since its
//!   last transaction. The pool hands its idle connections out in turn, so the alert's
//!   transaction used to start by reading the table's and indexes' pages again; on a connection
//!   that is the only one writing alerts they stay cached.
//!
//! The connection is opened on the first alert. On PostgreSQL it is pinged before each alert
//! and replaced if it no longer answers, as the pool checks its own, so an outage heals with
//! no restart. A write that fails or is abandoned halfway closes it ([`AlertWriter::write`]):
//! the pool's ping on release is also what sends the ROLLBACK of an abandoned transaction,
//! and this connection is never released. An in-memory SQLite database lives in the pool's
//! one connection, so there alerts go through the pool.

use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::Mutex;

use super::database::{self, Backend};
use super::{Result, query_error};

/// Where alerts are written: see the module's doc.
#[derive(Debug)]
pub(super) struct AlertWriter {
    backend: Backend,
    /// `None`: the database is in memory, and alerts go through the pool.
    url: Option<String>,
    connection: Mutex<Option<AnyConnection>>,
}

impl AlertWriter {
    pub(super) fn new(backend: Backend, url: Option<String>) -> AlertWriter {
        AlertWriter {
            backend,
            url,
            connection: Mutex::new(None),
        }
    }

    /// Runs `write` on the writer's connection (opening it first if there is none), or on one
    /// from `pool` for an in-memory database.
    pub(super) async fn write<T>(
        &self,
        pool: &AnyPool,
        write: impl AsyncFnOnce(&mut AnyConnection) -> Result<T>,
    ) -> Result<T> {
        let Some(url) = &self.url else {
            let mut connection = pool
                .acquire()
                .await
                .map_err(query_error("starting an alert transaction"))?;
            return write(&mut connection).await;
        };
        let mut slot = self.connection.lock().await;
        if pool.is_closed() {
            // The store was closed ([`super::Store::close`]): later calls fail, as the pool's do.
            return Err(query_error("starting an alert transaction")(
                sqlx::Error::PoolClosed,
            ));
        }
        // Out of the slot while it is written on, and back only once the write has finished
        // well. A write that fails, or whose future is dropped (the client went away), drops
        // the connection with it, closing it: the database rolls the transaction back and
        // lets the publishers' lock go at once. Kept, PostgreSQL's connection would only have
        // queued its ROLLBACK until the next alert, holding the city's lock meanwhile.
        let mut connection = self
            .ready(slot.take(), url)
            .await
            .map_err(query_error("opening the alert writer's connection"))?;
        let written = write(&mut connection).await;
        if written.is_ok() {
            *slot = Some(connection);
        }
        written
    }

    /// `kept` if it still works, else a new connection, within [`database::CONNECT_TIMEOUT`].
    /// A PostgreSQL connection is pinged first, as the pool does before it hands one out: the
    /// server may have restarted since the last alert, and finding that out in the middle of
    /// the alert would fail it. A SQLite connection is a handle in this process and does not
    /// go stale.
    async fn ready(
        &self,
        kept: Option<AnyConnection>,
        url: &str,
    ) -> std::result::Result<AnyConnection, sqlx::Error> {
        let checking = async {
            if let Some(mut connection) = kept
                && (self.backend == Backend::Sqlite || connection.ping().await.is_ok())
            {
                return Ok(connection);
            }
            database::connect_one(self.backend, url).await
        };
        tokio::time::timeout(database::CONNECT_TIMEOUT, checking)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no working connection within {} s",
                        database::CONNECT_TIMEOUT.as_secs()
                    ),
                )))
            })
    }

    /// Closes the writer's connection, if it is open (see [`super::Store::close`]).
    pub(super) async fn close(&self) {
        if let Some(connection) = self.connection.lock().await.take() {
            let _ = connection.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use crate::store::alerts::HistoryPolicy;
    use crate::store::tests::{TempDir, bounded};
    use crate::store::{Store, StoreError, city_uuid};

    #[tokio::test]
    async fn a_file_database_writes_alerts_on_one_kept_connection_until_a_write_fails_or_the_store_closes()
     {
        let dir = TempDir::new();
        bounded(async {
            let store = Store::open(&dir.database_url()).await.expect("created");
            let cairo = city_uuid("Cairo");
            let history = HistoryPolicy::default();
            let publish = async |city, message| {
                store
                    .insert_alert_then(city, message, history, |_| async {})
                    .await
                    .map(|(stored, ())| stored.id)
            };
            let first = publish(cairo, "one").await.expect("stored");
            let kept = || async { store.alert_writer.connection.lock().await.is_some() };
            assert!(kept().await, "opened by the first alert and kept");

            // A failed write closes the connection, and its transaction with it; the next
            // alert opens another.
            let unknown = publish(Uuid::new_v4(), "nowhere").await;
            assert!(
                matches!(unknown, Err(StoreError::UnknownCity(_))),
                "{unknown:?}"
            );
            assert!(!kept().await, "closed after a failed write");

            let second = publish(cairo, "two").await.expect("stored");
            assert!(kept().await, "opened again");
            let read = store.alerts_after(cairo, 0, 10).await.expect("listed");
            let ids: Vec<i64> = read.iter().map(|alert| alert.id).collect();
            assert_eq!(
                ids,
                [first, second],
                "committed, and seen by the pool's connections"
            );

            store.close().await;
            assert!(!kept().await, "closed with the store");
            let mut handed_on = false;
            let after = store
                .insert_alert_then(cairo, "three", history, |_| async { handed_on = true })
                .await;
            assert!(after.is_err(), "a closed store writes nothing: {after:?}");
            assert!(!handed_on);
            assert!(!kept().await, "and opens no connection again");
        })
        .await;
    }
}
