//! The alerts table: every published alert with its id (which only grows) and time, the
//! history a reconnecting client catches up from, and its pruning.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Connection, Row, Transaction};
use uuid::Uuid;

use super::{
    Backend, Result, Store, StoreError, is_foreign_key_violation, millis_to_datetime, parse_uuid,
    query_error,
};

/// How much alert history each city keeps: at most `keep` alerts, none older than `max_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    pub keep: u32,
    pub max_age: std::time::Duration,
}

impl Default for HistoryPolicy {
    fn default() -> HistoryPolicy {
        HistoryPolicy {
            keep: 1000,
            max_age: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// An alert as stored: `id` only grows, `created_at` is at millisecond precision.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub id: i64,
    pub city_uuid: Uuid,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Stores an alert for `city`, stamped with the current time. Ids only grow. What
    /// [`Store::insert_alert_then`] does, with nothing to run before the commit and the
    /// default [`HistoryPolicy`]: for the tests only, as it prunes to that policy, and a
    /// server configured to keep more would lose history through it (publishing goes through
    /// `App::publish_alert`, with the server's policy).
    #[cfg(test)]
    pub async fn insert_alert(&self, city: Uuid, message: &str) -> Result<StoredAlert> {
        let history = HistoryPolicy::default();
        let (stored, ()) = self
            .insert_alert_then(city, message, history, |_| async {})
            .await?;
        Ok(stored)
    }

    /// Stores an alert and runs `then` with it before the write is committed, holding the
    /// publishers' lock meanwhile (SQLite's write lock; on PostgreSQL the city's advisory
    /// lock). Publishing from `then` makes alerts of every instance that shares this database
    /// reach the bus in id order (on PostgreSQL, within each city): a second publisher's
    /// insert waits until the first one's alert has been handed on.
    ///
    /// Before `then`, the city's history is pruned to `history` in the same transaction, so
    /// the alert, the alerts it pushes out and the floor that records them (see
    /// [`Store::history_floor`]) are committed together. It all runs on the connection kept
    /// for alerts ([`super::alert_writer`]), not one from the pool. A prune that fails is
    /// logged and leaves the alert stored: older alerts are kept a little longer, which harms
    /// no one.
    pub async fn insert_alert_then<T, F, Fut>(
        &self,
        city: Uuid,
        message: &str,
        history: HistoryPolicy,
        then: F,
    ) -> Result<(StoredAlert, T)>
    where
        F: FnOnce(StoredAlert) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.alert_writer
            .write(&self.pool, async |connection| {
                let (transaction, stored) = self
                    .insert_and_prune(connection, city, message, history)
                    .await?;
                // `then` comes last, after the prune: what it hands on is committed right
                // after, so the time in which an alert is live but not yet in the store (when
                // a subscriber that starts catching up waits in `wait_for_alert_writers`)
                // stays one commit long.
                let outcome = then(stored.clone()).await;
                transaction
                    .commit()
                    .await
                    .map_err(query_error("committing an alert"))?;
                Ok((stored, outcome))
            })
            .await
    }

    /// The first part of [`Store::insert_alert_then`]: a transaction on `connection` that
    /// holds the publishers' lock, has stored the alert and pruned the city's history, and is
    /// left for the caller to commit.
    async fn insert_and_prune<'c>(
        &self,
        connection: &'c mut AnyConnection,
        city: Uuid,
        message: &str,
        history: HistoryPolicy,
    ) -> Result<(Transaction<'c, Any>, StoredAlert)> {
        let mut transaction = lock_publications(self.backend, connection, city, Lock::Exclusive)
            .await
            .map_err(query_error("starting an alert transaction"))?;
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
        let pruned = match self.backend {
            // A failed statement rolls back only itself: the transaction goes on.
            Backend::Sqlite => prune(&mut transaction, city, history).await,
            // A failed statement aborts the whole transaction, and the alert with it.
            Backend::Postgres => prune_in_transaction(&mut transaction, city, history).await,
        };
        if let Err(error) = pruned {
            tracing::warn!(%error, "alert history not pruned");
        }
        Ok((transaction, stored))
    }

    /// Returns once every alert of `city` being published now, by this instance or another one
    /// sharing the database, has been committed or rolled back: it takes, and at once gives
    /// back, the lock publishers hold from the insert to the commit (SQLite's write lock; on
    /// PostgreSQL, the city's advisory lock, shared).
    ///
    /// A subscriber catching up calls it after joining the fan-out and before reading its
    /// history. A publisher hands its alert on before it commits (that keeps ids and delivery
    /// order in step across instances), so an alert can already have gone past a subscriber
    /// that was not yet listening, and still be missing from the history it reads; waiting
    /// here closes that window, whichever instance published.
    pub async fn wait_for_alert_writers(&self, city: Uuid) -> Result<()> {
        let waiting = query_error("waiting for alerts being published");
        let mut connection = self.pool.acquire().await.map_err(&waiting)?;
        lock_publications(self.backend, &mut connection, city, Lock::Shared)
            .await
            .map_err(&waiting)?
            .commit()
            .await
            .map_err(&waiting)
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

    /// Prunes `city`'s history to `history` on its own, in one transaction: for the tests, as
    /// publishing prunes inside [`Store::insert_alert_then`].
    #[cfg(test)]
    pub async fn prune_alerts(&self, city: Uuid, history: HistoryPolicy) -> Result<()> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(query_error("pruning alerts"))?;
        prune_in_transaction(&mut connection, city, history).await
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

/// Keeps at most `history.keep` of `city`'s newest alerts, none older than
/// `history.max_age`, and records the highest id removed (see [`Store::history_floor`]), on
/// `connection`, inside the caller's transaction.
async fn prune(connection: &mut AnyConnection, city: Uuid, history: HistoryPolicy) -> Result<()> {
    let cutoff_ms = Utc::now().timestamp_millis()
        - i64::try_from(history.max_age.as_millis()).unwrap_or(i64::MAX);
    // Two index searches, each finding only what goes: by age on (city_uuid, created_at),
    // beyond `keep` on (city_uuid, id). Written as one `OR` over the city's alerts, the
    // database reads every alert the city keeps on every publication.
    let deleted = sqlx::query(
        "DELETE FROM alerts WHERE id IN (\
         SELECT id FROM alerts WHERE city_uuid = $1 AND created_at < $2 \
         UNION ALL \
         SELECT id FROM alerts WHERE city_uuid = $1 AND id <= \
         (SELECT id FROM alerts WHERE city_uuid = $1 ORDER BY id DESC LIMIT 1 OFFSET $3)) \
         RETURNING id",
    )
    .bind(city.to_string())
    .bind(cutoff_ms)
    .bind(i64::from(history.keep))
    .fetch_all(&mut *connection)
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
        .execute(&mut *connection)
        .await
        .map_err(query_error("recording pruned alerts"))?;
    }
    Ok(())
}

/// [`prune`] in a transaction of its own on `connection`: a savepoint when the connection is
/// in a transaction already. That is how PostgreSQL publishes: a statement that fails there
/// aborts the whole transaction, so a failed prune rolls back to the savepoint instead (when
/// the savepoint is dropped) and the alert is still committed.
async fn prune_in_transaction(
    connection: &mut AnyConnection,
    city: Uuid,
    history: HistoryPolicy,
) -> Result<()> {
    let mut transaction = connection
        .begin()
        .await
        .map_err(query_error("pruning alerts"))?;
    prune(&mut transaction, city, history).await?;
    transaction
        .commit()
        .await
        .map_err(query_error("pruning alerts"))
}

/// How [`lock_publications`] takes the lock: to publish, or only to wait for publishers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Exclusive,
    Shared,
}

/// Starts a transaction on `connection` holding the lock publishers of `city` hold from the
/// insert to the commit, waiting for it as long as another publisher has it. On SQLite that
/// is the database's write lock (`BEGIN IMMEDIATE` takes it at once rather than at the first
/// write), the same either way; on PostgreSQL, the city's advisory lock, which waiters share.
async fn lock_publications<'c>(
    backend: Backend,
    connection: &'c mut AnyConnection,
    city: Uuid,
    lock: Lock,
) -> std::result::Result<Transaction<'c, Any>, sqlx::Error> {
    match backend {
        Backend::Sqlite => connection.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => {
            let mut transaction = connection.begin().await?;
            let statement = match lock {
                Lock::Exclusive => "SELECT pg_advisory_xact_lock($1)",
                Lock::Shared => "SELECT pg_advisory_xact_lock_shared($1)",
            };
            // The key: the city UUID's first eight bytes.
            let key = i64::from_be_bytes(city.as_bytes()[..8].try_into().unwrap_or_default());
            sqlx::query(statement)
                .bind(key)
                .execute(&mut *transaction)
                .await?;
            Ok(transaction)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::city_uuid;
    use crate::store::tests::{bounded, memory};

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

    /// The ids of `alerts`, in their order.
    fn listed(alerts: Vec<StoredAlert>) -> Vec<i64> {
        alerts.into_iter().map(|alert| alert.id).collect()
    }

    #[tokio::test]
    async fn publishing_prunes_in_the_alerts_own_transaction() {
        let store = memory().await;
        bounded(async {
            let cairo = city_uuid("Cairo");
            let history = HistoryPolicy {
                keep: 2,
                max_age: std::time::Duration::from_secs(3600),
            };
            let mut ids = Vec::new();
            for n in 0..4 {
                let (stored, ()) = store
                    .insert_alert_then(cairo, &n.to_string(), history, |_| async {})
                    .await
                    .unwrap();
                ids.push(stored.id);
            }
            let kept = listed(store.alerts_after(cairo, 0, 10).await.unwrap());
            assert_eq!(kept, ids[2..]);
            assert_eq!(store.history_floor(cairo).await.unwrap(), ids[1]);
        })
        .await;
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_alerts_of_the_city_and_drops_those_past_the_age_limit() {
        let store = memory().await;
        bounded(async {
            let cairo = city_uuid("Cairo");
            let tokyo = city_uuid("Tokyo");
            let hour = std::time::Duration::from_secs(3600);
            let mut ids = Vec::new();
            for n in 0..5 {
                ids.push(store.insert_alert(cairo, &n.to_string()).await.unwrap().id);
            }
            let elsewhere = store.insert_alert(tokyo, "elsewhere").await.unwrap();
            let keep_three = HistoryPolicy {
                keep: 3,
                max_age: hour,
            };

            // Beyond `keep`: the oldest two go, and the floor is the newer of them.
            store.prune_alerts(cairo, keep_three).await.unwrap();
            let kept = listed(store.alerts_after(cairo, 0, 10).await.unwrap());
            assert_eq!(kept, ids[2..]);
            assert_eq!(store.history_floor(cairo).await.unwrap(), ids[1]);
            // Nothing more to prune: the floor stays.
            store.prune_alerts(cairo, keep_three).await.unwrap();
            assert_eq!(
                listed(store.alerts_after(cairo, 0, 10).await.unwrap()),
                kept
            );

            // Past the age limit: every alert older than now goes, whatever `keep` allows.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            store
                .prune_alerts(
                    cairo,
                    HistoryPolicy {
                        keep: 100,
                        max_age: std::time::Duration::ZERO,
                    },
                )
                .await
                .unwrap();
            assert!(store.alerts_after(cairo, 0, 10).await.unwrap().is_empty());
            assert_eq!(store.history_floor(cairo).await.unwrap(), ids[4]);

            // Another city's alerts are not touched.
            assert_eq!(
                listed(store.alerts_after(tokyo, 0, 10).await.unwrap()),
                [elsewhere.id]
            );
            assert_eq!(store.history_floor(tokyo).await.unwrap(), 0);
        })
        .await;
    }
}
