//! The revoked_tokens table: refresh tokens that may no longer be used, by `jti`, until they
//! expire anyway. One list in the shared database, so every instance refuses a revoked token.

use chrono::Utc;

use super::{Result, Store, is_unique_violation, query_error};

impl Store {
    /// Marks the token `jti` (valid until `expires_at`, seconds since the Unix epoch) as
    /// revoked. `false` when it already was: for a rotating refresh, the caller that gets
    /// `true` is the only one that may use the token, however many race for it.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<bool> {
        // Rows of tokens that expired are useless; dropping them here keeps the table small
        // without a background job. Several instances doing it at once is harmless.
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(Utc::now().timestamp())
            .execute(&self.pool)
            .await
            .map_err(query_error("forgetting expired revoked tokens"))?;
        match sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(query_error("revoking a token")(error)),
        }
    }

    /// Whether the token `jti` was revoked.
    pub async fn is_revoked(&self, jti: &str) -> Result<bool> {
        let row = sqlx::query("SELECT jti FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("looking up a revoked token"))?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{bounded, memory};

    #[tokio::test]
    async fn a_token_is_revoked_once_and_expired_rows_go() {
        let store = memory().await;
        bounded(async {
            let later = chrono::Utc::now().timestamp() + 3600;
            assert!(!store.is_revoked("abc").await.expect("query"));
            assert!(store.revoke_token("abc", later).await.expect("revoked"));
            assert!(!store.revoke_token("abc", later).await.expect("again"));
            assert!(store.is_revoked("abc").await.expect("query"));
            assert!(store.revoke_token("old", 1).await.expect("revoked"));
            // The next revocation forgets the row of a token that has expired.
            assert!(store.revoke_token("def", later).await.expect("revoked"));
            assert!(!store.is_revoked("old").await.expect("query"));
            assert!(store.is_revoked("abc").await.expect("query"));
        })
        .await;
    }
}
