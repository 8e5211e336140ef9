//! Flows in progress: BankID orders, code challenges, password resets.

use async_trait::async_trait;

use super::SqliteStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl FlowStore for SqliteStorage {
    async fn insert_bankid_flow(&self, f: &BankIdFlowRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO bankid_flows (id, purpose, binding_hash, user_id, required_pn_hash, order_ref, auto_start_token,
             qr_start_token, qr_start_secret, mode, state, hint_code, started_at, last_collect_at, finished_at, result_user_id,
             context, return_nonce_hash, start_address)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&f.id)
        .bind(&f.purpose)
        .bind(&f.binding_hash)
        .bind(&f.user_id)
        .bind(&f.required_pn_hash)
        .bind(&f.order_ref)
        .bind(&f.auto_start_token)
        .bind(&f.qr_start_token)
        .bind(&f.qr_start_secret)
        .bind(&f.mode)
        .bind(&f.state)
        .bind(&f.hint_code)
        .bind(f.started_at)
        .bind(f.last_collect_at)
        .bind(f.finished_at)
        .bind(&f.result_user_id)
        .bind(&f.context)
        .bind(&f.return_nonce_hash)
        .bind(&f.start_address)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn bankid_flow(&self, id: &str) -> Result<Option<BankIdFlowRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdFlowRecord>("SELECT * FROM bankid_flows WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn claim_bankid_collect(&self, id: &str, now: Timestamp, not_since: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE bankid_flows SET last_collect_at = ?
             WHERE id = ? AND state = 'pending' AND (last_collect_at IS NULL OR last_collect_at <= ?)",
        )
        .bind(now)
        .bind(id)
        .bind(not_since)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn note_bankid_pending(&self, id: &str, hint: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE bankid_flows SET hint_code = ?, last_collect_at = ? WHERE id = ? AND state = 'pending'")
            .bind(hint)
            .bind(at)
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn set_bankid_mode(&self, id: &str, mode: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE bankid_flows SET mode = ? WHERE id = ? AND state = 'pending'")
            .bind(mode)
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn cancel_unwatched_bankid_flow(
        &self,
        id: &str,
        since: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE bankid_flows SET state = 'cancelled', hint_code = 'cancelled', finished_at = ?, last_collect_at = ?
             WHERE id = ? AND state = 'pending' AND (last_collect_at IS NULL OR last_collect_at < ?)",
        )
        .bind(at)
        .bind(at)
        .bind(id)
        .bind(since)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_bankid_flow(
        &self,
        id: &str,
        state: &str,
        hint: Option<&str>,
        result_user_id: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE bankid_flows SET state = ?, hint_code = COALESCE(?, hint_code), result_user_id = ?, finished_at = ?,
             last_collect_at = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(state)
        .bind(hint)
        .bind(result_user_id)
        .bind(at)
        .bind(at)
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn consume_bankid_flow(&self, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE bankid_flows SET state = 'consumed' WHERE id = ? AND state = 'complete'
             AND (mode <> 'autostart' OR return_nonce_hash IS NULL OR returned_at IS NOT NULL)",
        )
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_bankid_returned(
        &self,
        id: &str,
        at: Timestamp,
        finished_since: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE bankid_flows SET returned_at = ?
             WHERE id = ? AND returned_at IS NULL AND state IN ('pending', 'complete')
             AND (finished_at IS NULL OR finished_at >= ?)",
        )
        .bind(at)
        .bind(id)
        .bind(finished_since)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn bankid_flow_for_context(
        &self,
        context: &str,
        purpose: &str,
    ) -> Result<Option<BankIdFlowRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdFlowRecord>(
            "SELECT * FROM bankid_flows WHERE context = ? AND purpose = ? AND state = 'complete'
             AND (mode <> 'autostart' OR return_nonce_hash IS NULL OR returned_at IS NOT NULL) ORDER BY started_at DESC LIMIT 1",
        )
        .bind(context)
        .bind(purpose)
        .fetch_optional(&mut *self.conn().await?)
        .await?)
    }

    async fn delete_bankid_flows_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM bankid_flows WHERE started_at < ?")
            .bind(before)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }

    async fn insert_sms_challenge(&self, c: &SmsChallengeRecord) -> Result<(), StorageError> {
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
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn sms_challenge(&self, id: &str) -> Result<Option<SmsChallengeRecord>, StorageError> {
        Ok(sqlx::query_as::<_, SmsChallengeRecord>("SELECT * FROM sms_challenges WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn claim_sms_attempt(&self, id: &str, max: i64) -> Result<Option<i64>, StorageError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE sms_challenges SET attempts = attempts + 1
             WHERE id = ? AND state = 'pending' AND attempts < ? RETURNING attempts",
        )
        .bind(id)
        .bind(max)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row.map(|(n,)| n))
    }

    async fn sms_replace_code(&self, id: &str, code_hash: &str, sent_at: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE sms_challenges SET code_hash = ?, sent_at = ?, attempts = 0 WHERE id = ? AND state = 'pending'",
        )
        .bind(code_hash)
        .bind(sent_at)
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_sms_challenge(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError> {
        let done =
            sqlx::query("UPDATE sms_challenges SET state = ?, finished_at = ? WHERE id = ? AND state = 'pending'")
                .bind(state)
                .bind(at)
                .bind(id)
                .execute(&mut *self.conn().await?)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn refuse_sms_challenge(&self, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE sms_challenges SET state = 'refused' WHERE id = ? AND state = 'verified'")
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_reset_flow(&self, r: &ResetFlowRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO reset_flows (id, binding_hash, typed_name, user_id, verified, sms_challenge, failures, state,
             created_at, expires_at, finished_at, outcome, pwd_last_set, written_maybe_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(&r.pwd_last_set)
        .bind(r.written_maybe_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn reset_flow(&self, id: &str) -> Result<Option<ResetFlowRecord>, StorageError> {
        Ok(sqlx::query_as::<_, ResetFlowRecord>("SELECT * FROM reset_flows WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn reset_verified(&self, id: &str, service: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE reset_flows
             SET verified = CASE WHEN verified = '' THEN ?2 ELSE verified || ',' || ?2 END, state = 'verified'
             WHERE id = ?1 AND state IN ('identifying', 'verified')
               AND instr(',' || verified || ',', ',' || ?2 || ',') = 0",
        )
        .bind(id)
        .bind(service)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_reset_flow(&self, id: &str, now: Timestamp, max_failures: i64) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE reset_flows SET state = 'writing'
             WHERE id = ? AND state = 'verified' AND expires_at >= ? AND failures < ?",
        )
        .bind(id)
        .bind(now)
        .bind(max_failures)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_reset_flow(&self, id: &str, written_maybe_at: Option<Timestamp>) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE reset_flows SET state = 'verified', written_maybe_at = COALESCE(?, written_maybe_at)
             WHERE id = ? AND state = 'writing'",
        )
        .bind(written_maybe_at)
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn set_reset_sms_challenge(&self, id: &str, challenge: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE reset_flows SET sms_challenge = ? WHERE id = ?")
            .bind(challenge)
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn reset_failure(&self, id: &str) -> Result<i64, StorageError> {
        let row: Option<(i64,)> =
            sqlx::query_as("UPDATE reset_flows SET failures = failures + 1 WHERE id = ? RETURNING failures")
                .bind(id)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        Ok(row.map(|(n,)| n).unwrap_or(i64::MAX))
    }

    async fn end_reset_flow(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE reset_flows SET state = ?, finished_at = ? WHERE id = ? AND state IN ('identifying', 'verified')",
        )
        .bind(state)
        .bind(at)
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_reset_flow(
        &self,
        id: &str,
        state: &str,
        outcome: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE reset_flows SET state = ?, outcome = ?, finished_at = ?
             WHERE id = ? AND state = 'writing'",
        )
        .bind(state)
        .bind(outcome)
        .bind(at)
        .bind(id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_finished(&self, before: Timestamp) -> Result<u64, StorageError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let mut n = 0;
        for sql in [
            "DELETE FROM reset_flows WHERE created_at < ?",
            "DELETE FROM sms_challenges WHERE sent_at < ?",
            "DELETE FROM mail_outbox WHERE sent_at IS NOT NULL AND sent_at < ?",
        ] {
            n += sqlx::query(sql).bind(before).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}
