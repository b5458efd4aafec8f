-- wfs schema v4: pruning a city's alert history by age (on every publication) searches this
-- index for the alerts past the age limit, instead of reading every alert the city keeps.
-- The same text for SQLite and PostgreSQL.
CREATE INDEX alerts_city_created ON alerts (city_uuid, created_at);
