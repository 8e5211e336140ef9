//! Limit counters: one row per attempt, decided in one statement.

use async_trait::async_trait;

use super::SqliteStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl ThrottleStore for SqliteStorage {
    async fn record_failure(&self, scope: &str, key: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO throttle_failures (scope, key, at) VALUES (?, ?, ?)")
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
        let _one_at_a_time = self.decisions.lock().await;
        // One statement: the count and the insert cannot be separated by another writer; the
        // position (this attempt included) is counted in the same statement.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "INSERT INTO throttle_failures (scope, key, at)
             SELECT ?1, ?2, ?3
             WHERE (SELECT COUNT(*) FROM throttle_failures WHERE scope = ?1 AND key = ?2 AND at > ?4) < ?5
             RETURNING rowid, (SELECT COUNT(*) FROM throttle_failures WHERE scope = ?1 AND key = ?2 AND at > ?4)",
        )
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
        let _one_at_a_time = self.decisions.lock().await;
        // The run: the failures after the newest quiet gap of ?4 or more (the attempt now closes
        // the list, so a gap before it counts); looking back ?5 runs' length at most.
        macro_rules! run {
            () => {
                "(SELECT COUNT(*) FROM throttle_failures WHERE scope = ?1 AND key = ?2 AND at > ?3 - ?5 * ?4
                  AND at > COALESCE((SELECT MAX(a) FROM (
                      SELECT at AS a, LEAD(at, 1, ?3) OVER (ORDER BY at) AS b FROM throttle_failures
                      WHERE scope = ?1 AND key = ?2 AND at > ?3 - ?5 * ?4) WHERE b - a >= ?4), ?3 - ?5 * ?4))"
            };
        }
        let row: Option<(i64, i64)> = sqlx::query_as(concat!(
            "INSERT INTO throttle_failures (scope, key, at) SELECT ?1, ?2, ?3 WHERE ",
            run!(),
            " < ?5 RETURNING rowid, ",
            run!()
        ))
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
        let ids = serde_json::to_string(ids).expect("a list of numbers is JSON");
        let (scope, keys) = clear.unwrap_or(("", &[]));
        let keys = serde_json::to_string(keys).expect("a list of strings is JSON");
        sqlx::query(
            "DELETE FROM throttle_failures
             WHERE rowid IN (SELECT value FROM json_each(?1))
             OR (?2 <> '' AND scope = ?2 AND key IN (SELECT value FROM json_each(?3)))",
        )
        .bind(ids)
        .bind(scope)
        .bind(keys)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn failures_since(&self, scope: &str, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, StorageError> {
        let rows: Vec<(Timestamp,)> = sqlx::query_as(
            "SELECT at FROM throttle_failures WHERE scope = ? AND key = ? AND at > ? ORDER BY at DESC LIMIT 1000",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows.into_iter().map(|(at,)| at).collect())
    }

    async fn clear_failures(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM throttle_failures WHERE scope = ? AND key = ?")
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
            "DELETE FROM throttle_failures WHERE at < ?1
             AND NOT (scope = ?2 AND key IN (SELECT key FROM throttle_failures WHERE scope = ?2 AND at >= ?3))",
        )
        .bind(before)
        .bind(scope)
        .bind(since)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }
}
