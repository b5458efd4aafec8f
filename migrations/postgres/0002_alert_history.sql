-- Bounded alert history: how far each city's alerts have been pruned, so a client asking
-- for alerts after an id that is gone is told so instead of silently missing them.
CREATE TABLE alert_history (
    city_uuid      TEXT PRIMARY KEY NOT NULL REFERENCES cities (uuid),
    pruned_through BIGINT NOT NULL
);
