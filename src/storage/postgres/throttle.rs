//! Limit counters: one row per attempt, decided in one statement.

use async_trait::async_trait;

use super::PgStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl ThrottleStore for PgStorage {
    async fn record_failure(&self, scope: &str, key: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO throttle_failures (scope, key, at) VALUES ($1, $2, $3)")
            .bind(scope)
            .bind(key)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reserve_attempt(
        &self,
        scope: &str,
        key: &str,
        at: Timestamp,
        since: Timestamp,
        max: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        // Under READ COMMITTED two counts could both see room: the key's advisory lock, held to
        // the end of the transaction, puts deciders of one key in a row (across instances too).
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
            .bind(scope)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM throttle_failures WHERE scope = $1 AND key = $2 AND at > $3")
                .bind(scope)
                .bind(key)
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
        if count >= max {
            return Ok(None);
        }
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO throttle_failures (scope, key, at) VALUES ($1, $2, $3) RETURNING id")
                .bind(scope)
                .bind(key)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Some((id, count + 1)))
    }

    async fn release_attempt(&self, id: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM throttle_failures WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn failures_since(&self, scope: &str, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, StorageError> {
        let rows: Vec<(Timestamp,)> = sqlx::query_as(
            "SELECT at FROM throttle_failures WHERE scope = $1 AND key = $2 AND at > $3 ORDER BY at DESC LIMIT 1000",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(at,)| at).collect())
    }

    async fn clear_failures(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM throttle_failures WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_failures_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM throttle_failures WHERE at < $1").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
