//! SQLite queries for mobile-code challenges and enrolments.

use super::{EnrolMode, SmsChallengeRecord, SmsEnrolmentRecord, SqliteStorage, StorageError};
use crate::clock::Timestamp;

impl SqliteStorage {
    pub(super) async fn sms_insert(&self, c: &SmsChallengeRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sms_challenges (id, purpose, binding_hash, user_id, number_encrypted, number_hash, number_masked,
             code_hash, attempts, sent_at, state, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.purpose)
        .bind(&c.binding_hash)
        .bind(&c.user_id)
        .bind(&c.number_encrypted)
        .bind(&c.number_hash)
        .bind(&c.number_masked)
        .bind(&c.code_hash)
        .bind(c.attempts)
        .bind(c.sent_at)
        .bind(&c.state)
        .bind(c.finished_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn sms_get(&self, id: &str) -> Result<Option<SmsChallengeRecord>, StorageError> {
        Ok(sqlx::query_as::<_, SmsChallengeRecord>("SELECT * FROM sms_challenges WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub(super) async fn sms_claim(&self, id: &str, max: i64) -> Result<Option<i64>, StorageError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE sms_challenges SET attempts = attempts + 1
             WHERE id = ? AND state = 'pending' AND attempts < ? RETURNING attempts",
        )
        .bind(id)
        .bind(max)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(n,)| n))
    }

    pub(super) async fn sms_replace(
        &self,
        id: &str,
        code_hash: &str,
        sent_at: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE sms_challenges SET code_hash = ?, sent_at = ?, attempts = 0 WHERE id = ? AND state = 'pending'",
        )
        .bind(code_hash)
        .bind(sent_at)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn sms_finish(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError> {
        let done =
            sqlx::query("UPDATE sms_challenges SET state = ?, finished_at = ? WHERE id = ? AND state = 'pending'")
                .bind(state)
                .bind(at)
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn sms_enrol(&self, r: &SmsEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError> {
        let mut tx = self.pool().begin().await?;
        let sql = match mode {
            EnrolMode::Add => {
                "INSERT INTO sms_enrolments (number_encrypted, number_hash, number_masked, enrolled_at, user_id)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING"
            }
            EnrolMode::Replace => {
                "UPDATE sms_enrolments SET number_encrypted = ?, number_hash = ?, number_masked = ?, enrolled_at = ?
                 WHERE user_id = ?"
            }
        };
        let done = sqlx::query(sql)
            .bind(&r.number_encrypted)
            .bind(&r.number_hash)
            .bind(&r.number_masked)
            .bind(r.enrolled_at)
            .bind(&r.user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1
            || !super::sqlite::record_enrolment(&mut tx, &r.user_id, "sms", r.enrolled_at, mode).await?
        {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn sms_get_enrolment(&self, user_id: &str) -> Result<Option<SmsEnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, SmsEnrolmentRecord>("SELECT * FROM sms_enrolments WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?)
    }
}
