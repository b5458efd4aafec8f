-- wfs schema v3: refresh tokens that may no longer be used (revoked through /api/jwt/revoke,
-- or spent by a rotating /api/jwt/refresh), by their `jti`. Kept in the shared database so
-- that every instance refuses them; a row is useless once the token has expired anyway, so
-- rows past `expires_at` (seconds since the Unix epoch) are deleted as new ones arrive.
-- The same text for SQLite and PostgreSQL.

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
