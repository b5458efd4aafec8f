-- wfs schema v1 (PostgreSQL): cities, users, alerts.
--
-- The same schema as migrations/sqlite/0001_init.sql: only the self-incrementing ids are
-- written differently (IDENTITY here, AUTOINCREMENT there).
-- UUIDs are lowercase canonical text; timestamps are milliseconds since the Unix epoch (UTC).

CREATE TABLE cities (
    uuid      TEXT PRIMARY KEY NOT NULL,
    name      TEXT NOT NULL UNIQUE,
    country   TEXT NOT NULL,
    continent TEXT NOT NULL,
    timezone  TEXT NOT NULL,
    latitude  DOUBLE PRECISION NOT NULL,
    longitude DOUBLE PRECISION NOT NULL
);

CREATE TABLE users (
    -- IDENTITY: ids of deleted users are never handed out again, so an old token can
    -- never name somebody else.
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE alerts (
    -- IDENTITY: ids only ever grow, so clients can page with "before id".
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    city_uuid  TEXT NOT NULL REFERENCES cities (uuid),
    message    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- recent_alerts: one city's alerts, newest first.
CREATE INDEX alerts_city_id ON alerts (city_uuid, id);
