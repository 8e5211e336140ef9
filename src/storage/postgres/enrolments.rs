//! Enrolments: the services, the BankID and the number behind them, and reminders.

use async_trait::async_trait;

use super::PgStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl EnrolmentStore for PgStorage {
    async fn enrolments(&self, user_id: &str) -> Result<Vec<EnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, EnrolmentRecord>(
            "SELECT user_id, service, enrolled_at, last_used_at, cooldown_lifted_at, restarted_at FROM enrolments WHERE user_id = $1 ORDER BY service",
        )
        .bind(user_id)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    async fn all_enrolments(&self) -> Result<Vec<EnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, EnrolmentRecord>(
            "SELECT user_id, service, enrolled_at, last_used_at, cooldown_lifted_at, restarted_at FROM enrolments",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    async fn touch_enrolment(&self, user_id: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE enrolments SET last_used_at = $1 WHERE user_id = $2 AND service = $3")
            .bind(at)
            .bind(user_id)
            .bind(service)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn revoke_enrolment(
        &self,
        user_id: &str,
        service: Option<&str>,
        keep_session: Option<&str>,
    ) -> Result<(u64, u64), StorageError> {
        // A session ended before (by a removal from another browser, say) removes nothing.
        let mut conn = self.conn().await?;
        let Some(mut tx) = super::begin_for_user(&mut conn, user_id, keep_session).await? else {
            return Ok((0, 0));
        };
        let removed = match service {
            Some(s) => {
                sqlx::query("DELETE FROM enrolments WHERE user_id = $1 AND service = $2")
                    .bind(user_id)
                    .bind(s)
                    .execute(&mut *tx)
                    .await?
            }
            None => sqlx::query("DELETE FROM enrolments WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?,
        }
        .rows_affected();
        if service.is_none_or(|s| s == "bankid") {
            sqlx::query("DELETE FROM bankid_enrolments WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        }
        if service.is_none_or(|s| s == "sms") {
            sqlx::query("DELETE FROM sms_enrolments WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        }
        let mut ended = 0;
        if removed > 0 {
            ended = super::end_sessions(&mut tx, user_id, keep_session).await?;
        }
        tx.commit().await?;
        Ok((removed, ended))
    }

    async fn record_restart(
        &self,
        user_id: &str,
        service: &str,
        enrolled_at: Timestamp,
        set: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE enrolments SET restarted_at = $1 WHERE user_id = $2 AND service = $3 AND enrolled_at = $4
             AND (restarted_at IS NULL OR restarted_at < $5)",
        )
        .bind(set)
        .bind(user_id)
        .bind(service)
        .bind(enrolled_at)
        .bind(set)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lift_cooldown(
        &self,
        user_id: &str,
        service: &str,
        proved_at: Timestamp,
        (cooling_since, lifted_before): (Timestamp, Timestamp),
        at: Timestamp,
    ) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "UPDATE enrolments SET cooldown_lifted_at = $1 WHERE user_id = $2 AND service = $3
             AND enrolled_at <= $4 AND enrolled_at > $5
             AND (cooldown_lifted_at IS NULL OR cooldown_lifted_at < $6)",
        )
        .bind(at)
        .bind(user_id)
        .bind(service)
        .bind(proved_at)
        .bind(cooling_since)
        .bind(lifted_before)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }

    async fn enrol_bankid(&self, r: &BankIdEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError> {
        let mut conn = self.conn().await?;
        let Some(mut tx) = super::begin_for_user(&mut conn, &r.user_id, None).await? else { return Ok(false) };
        if !write_enrolment(&mut tx, r, mode).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Completes the flow and stores the enrolment it made, in one transaction: None when the
    /// flow was no longer pending, Some(false) when the enrolment was refused (nothing changed).
    async fn complete_bankid_enrolment(
        &self,
        flow_id: &str,
        r: &BankIdEnrolmentRecord,
        mode: EnrolMode,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<Option<EnrolWrite>, StorageError> {
        let mut conn = self.conn().await?;
        let Some(mut tx) = super::begin_for_user(&mut conn, &r.user_id, keep_session).await? else {
            return Ok(Some(EnrolWrite::SessionEnded));
        };
        let done = sqlx::query(
            "UPDATE bankid_flows SET state = 'complete', hint_code = 'complete', finished_at = $1, last_collect_at = $2
             WHERE id = $3 AND state = 'pending'",
        )
        .bind(at)
        .bind(at)
        .bind(flow_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        if !write_enrolment(&mut tx, r, mode).await? {
            return Ok(Some(EnrolWrite::Refused));
        }
        super::end_sessions(&mut tx, &r.user_id, keep_session).await?;
        tx.commit().await?;
        Ok(Some(EnrolWrite::Done))
    }

    async fn bankid_enrolment(&self, user_id: &str) -> Result<Option<BankIdEnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdEnrolmentRecord>("SELECT * FROM bankid_enrolments WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn bankid_enrolments_by_hash(&self, pn_hash: &str) -> Result<Vec<BankIdEnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdEnrolmentRecord>("SELECT * FROM bankid_enrolments WHERE pn_hash = $1")
            .bind(pn_hash)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    async fn enrol_sms(
        &self,
        r: &SmsEnrolmentRecord,
        mode: EnrolMode,
        keep_session: Option<&str>,
    ) -> Result<EnrolWrite, StorageError> {
        let mut conn = self.conn().await?;
        let Some(mut tx) = super::begin_for_user(&mut conn, &r.user_id, keep_session).await? else {
            return Ok(EnrolWrite::SessionEnded);
        };
        let sql = match mode {
            EnrolMode::Add => {
                "INSERT INTO sms_enrolments (number_encrypted, number_hash, number_masked, enrolled_at, user_id)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING"
            }
            EnrolMode::Replace => {
                "UPDATE sms_enrolments SET number_encrypted = $1, number_hash = $2, number_masked = $3, enrolled_at = $4
                 WHERE user_id = $5"
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
            || !super::record_enrolment(&mut tx, &r.user_id, "sms", r.enrolled_at, mode).await?
        {
            return Ok(EnrolWrite::Refused);
        }
        super::end_sessions(&mut tx, &r.user_id, keep_session).await?;
        tx.commit().await?;
        Ok(EnrolWrite::Done)
    }

    async fn sms_enrolment(&self, user_id: &str) -> Result<Option<SmsEnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, SmsEnrolmentRecord>("SELECT * FROM sms_enrolments WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn claim_reminder(
        &self,
        user_id: &str,
        now: Timestamp,
        last_before: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO reminders (user_id, sent_at) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET sent_at = excluded.sent_at WHERE reminders.sent_at <= $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(last_before)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The BankID row and the enrolment row, inside a transaction: false (the caller rolls back) when
/// `mode` does not fit what the user has.
async fn write_enrolment(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    r: &BankIdEnrolmentRecord,
    mode: EnrolMode,
) -> Result<bool, StorageError> {
    let sql = match mode {
        EnrolMode::Add => {
            "INSERT INTO bankid_enrolments (pn_encrypted, pn_hash, pn_masked, name, enrolled_at, user_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO NOTHING"
        }
        EnrolMode::Replace => {
            "UPDATE bankid_enrolments SET pn_encrypted = $1, pn_hash = $2, pn_masked = $3, name = $4, enrolled_at = $5
             WHERE user_id = $6"
        }
    };
    let done = sqlx::query(sql)
        .bind(&r.pn_encrypted)
        .bind(&r.pn_hash)
        .bind(&r.pn_masked)
        .bind(&r.name)
        .bind(r.enrolled_at)
        .bind(&r.user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1 && super::record_enrolment(tx, &r.user_id, "bankid", r.enrolled_at, mode).await?)
}
