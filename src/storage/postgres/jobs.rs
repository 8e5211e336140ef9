//! Jobs that run on one instance at a time (a lease per job), and the expiry reminders sent.

use async_trait::async_trait;

use super::PgStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl JobStore for PgStorage {
    async fn claim_job(&self, name: &str, now: Timestamp, lease_until: Timestamp) -> Result<bool, StorageError> {
        // One statement: a job nobody holds (or whose lease ran out) is taken; a held one is not.
        let done = sqlx::query(
            "INSERT INTO jobs (name, leased_until) VALUES ($1, $3)
             ON CONFLICT (name) DO UPDATE SET leased_until = excluded.leased_until WHERE jobs.leased_until <= $2",
        )
        .bind(name)
        .bind(now)
        .bind(lease_until)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_job(&self, name: &str, lease_until: Timestamp, at: Timestamp) -> Result<(), StorageError> {
        // Only the holder's lease: one that ran out and was taken by another is not theirs.
        sqlx::query("UPDATE jobs SET leased_until = $3 WHERE name = $1 AND leased_until = $2")
            .bind(name)
            .bind(lease_until)
            .bind(at)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn claim_expiry_reminder(
        &self,
        user_id: &str,
        expires_at: Timestamp,
        days: i64,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO expiry_reminders (user_id, expires_at, days, sent_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, expires_at, days) DO NOTHING",
        )
        .bind(user_id)
        .bind(expires_at)
        .bind(days)
        .bind(now)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expiry_reminders_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM expiry_reminders WHERE expires_at < $1")
            .bind(before)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }
}
