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
            .execute(&mut *self.conn().await?)
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
        // One round trip: the function takes the key's lock, counts and records (see its migration).
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, place FROM stjarna_reserve_attempt($1, $2, $3, $4, $5)")
                .bind(scope)
                .bind(key)
                .bind(at)
                .bind(since)
                .bind(max)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        Ok(row)
    }

    async fn reserve_in_run(
        &self,
        scope: &str,
        key: &str,
        at: Timestamp,
        gap: i64,
        max: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, place FROM stjarna_reserve_in_run($1, $2, $3, $4, $5)")
                .bind(scope)
                .bind(key)
                .bind(at)
                .bind(gap)
                .bind(max)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        Ok(row)
    }

    async fn release_attempts(&self, ids: &[i64], clear: Option<(&str, &[&str])>) -> Result<(), StorageError> {
        let (scope, keys) = clear.unwrap_or(("", &[]));
        sqlx::query("DELETE FROM throttle_failures WHERE id = ANY($1) OR ($2 <> '' AND scope = $2 AND key = ANY($3))")
            .bind(ids)
            .bind(scope)
            .bind(keys)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn failures_since(&self, scope: &str, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, StorageError> {
        let rows: Vec<(Timestamp,)> = sqlx::query_as(
            "SELECT at FROM throttle_failures WHERE scope = $1 AND key = $2 AND at > $3 ORDER BY at DESC LIMIT 1000",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows.into_iter().map(|(at,)| at).collect())
    }

    async fn clear_failures(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM throttle_failures WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn delete_failures_before(
        &self,
        before: Timestamp,
        keep: Option<(&str, Timestamp)>,
    ) -> Result<u64, StorageError> {
        let (scope, since) = keep.unwrap_or(("", 0));
        let done = sqlx::query(
            "DELETE FROM throttle_failures WHERE at < $1
             AND NOT (scope = $2 AND key IN (SELECT key FROM throttle_failures WHERE scope = $2 AND at >= $3))",
        )
        .bind(before)
        .bind(scope)
        .bind(since)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }
}
