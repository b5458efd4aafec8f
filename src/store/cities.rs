//! The cities table: the six cities the service ships with (seeded at every start, with UUIDs
//! every machine agrees on) and the look-ups alerts, chat and `wfs cities` make.

use std::sync::Arc;

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{Result, Store, parse_uuid, query_error};

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

impl Store {
    /// Inserts the cities the service ships with, leaving any that are already there alone.
    pub(super) async fn seed_cities(&self) -> Result<()> {
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

    /// [`Store::city`] for a channel handshake: read from the database at most once per
    /// [`super::LookupTtl::cities`], and shared (`Arc`) by every connection to the city.
    pub async fn city_for_handshake(&self, uuid: Uuid) -> Result<Option<Arc<City>>> {
        self.lookups.cities.get_or_load(uuid, self.city(uuid)).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{bounded, memory};

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
}
