//! The mail outbox: queued, claimed with a lease, sent or retried.

use async_trait::async_trait;

use super::PgStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl OutboxStore for PgStorage {
    async fn queue_mail(&self, m: &MailRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO mail_outbox (recipient, subject, text_body, html_body, created_at, attempts, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.text_body)
        .bind(&m.html_body)
        .bind(m.created_at)
        .bind(m.next_attempt_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn claim_due_mail(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<MailRecord>, StorageError> {
        // One statement picks and claims: two workers never get the same mail.
        Ok(sqlx::query_as::<_, MailRecord>(
            "UPDATE mail_outbox SET next_attempt_at = $2
             WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 AND attempts < 20
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    async fn mail_sent(&self, id: i64, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn mail_failed(&self, id: i64, error: &str, next_attempt_at: Timestamp) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<(i64, Option<Timestamp>), StorageError> {
        Ok(sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(&mut *self.conn().await?)
            .await?)
    }
}
