//! SQLite queries for password reset flows and the mail outbox.

use super::{MailRecord, ResetFlowRecord, SqliteStorage, StorageError};
use crate::clock::Timestamp;

impl SqliteStorage {
    pub(super) async fn reset_insert(&self, r: &ResetFlowRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO reset_flows (id, binding_hash, typed_name, user_id, verified, sms_challenge, failures, state,
             created_at, expires_at, finished_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.binding_hash)
        .bind(&r.typed_name)
        .bind(&r.user_id)
        .bind(&r.verified)
        .bind(&r.sms_challenge)
        .bind(r.failures)
        .bind(&r.state)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.finished_at)
        .bind(&r.outcome)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn reset_get(&self, id: &str) -> Result<Option<ResetFlowRecord>, StorageError> {
        Ok(sqlx::query_as::<_, ResetFlowRecord>("SELECT * FROM reset_flows WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub(super) async fn reset_add_verified(&self, id: &str, service: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE reset_flows
             SET verified = CASE WHEN verified = '' THEN ?2 ELSE verified || ',' || ?2 END, state = 'verified'
             WHERE id = ?1 AND state IN ('identifying', 'verified')
               AND instr(',' || verified || ',', ',' || ?2 || ',') = 0",
        )
        .bind(id)
        .bind(service)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn reset_claim(&self, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE reset_flows SET state = 'writing' WHERE id = ? AND state = 'verified'")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn reset_release(&self, id: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE reset_flows SET state = 'verified' WHERE id = ? AND state = 'writing'")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn reset_set_sms(&self, id: &str, challenge: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE reset_flows SET sms_challenge = ? WHERE id = ?")
            .bind(challenge)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn reset_count_failure(&self, id: &str) -> Result<i64, StorageError> {
        let row: Option<(i64,)> =
            sqlx::query_as("UPDATE reset_flows SET failures = failures + 1 WHERE id = ? RETURNING failures")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(n,)| n).unwrap_or(i64::MAX))
    }

    pub(super) async fn reset_finish(
        &self,
        id: &str,
        state: &str,
        outcome: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE reset_flows SET state = ?, outcome = ?, finished_at = ?
             WHERE id = ? AND state IN ('identifying', 'verified', 'writing')",
        )
        .bind(state)
        .bind(outcome)
        .bind(at)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn mail_queue(&self, m: &MailRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO mail_outbox (recipient, subject, text_body, html_body, created_at, attempts, next_attempt_at)
             VALUES (?, ?, ?, ?, ?, 0, ?)",
        )
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.text_body)
        .bind(&m.html_body)
        .bind(m.created_at)
        .bind(m.next_attempt_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn mail_claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<MailRecord>, StorageError> {
        // One statement picks and claims: two workers never get the same mail.
        Ok(sqlx::query_as::<_, MailRecord>(
            "UPDATE mail_outbox SET next_attempt_at = ?2
             WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= ?1 AND attempts < 20
                          ORDER BY id LIMIT ?3)
             RETURNING *",
        )
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    pub(super) async fn mail_mark_sent(&self, id: i64, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE mail_outbox SET sent_at = ?, attempts = attempts + 1 WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn mail_mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?")
            .bind(error)
            .bind(next_attempt_at)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
