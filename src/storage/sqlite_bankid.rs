//! SQLite queries for BankID flows and enrolments.

use super::EnrolMode;
use super::{BankIdEnrolmentRecord, BankIdFlowRecord, SqliteStorage, StorageError};
use crate::clock::Timestamp;

impl SqliteStorage {
    pub(super) async fn bankid_insert_flow(&self, f: &BankIdFlowRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO bankid_flows (id, purpose, binding_hash, user_id, required_pn_hash, order_ref, auto_start_token,
             qr_start_token, qr_start_secret, mode, state, hint_code, started_at, last_collect_at, finished_at, result_user_id,
             context)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn bankid_get_flow(&self, id: &str) -> Result<Option<BankIdFlowRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdFlowRecord>("SELECT * FROM bankid_flows WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub(super) async fn bankid_note_pending(&self, id: &str, hint: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE bankid_flows SET hint_code = ?, last_collect_at = ? WHERE id = ? AND state = 'pending'")
            .bind(hint)
            .bind(at)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn bankid_set_mode(&self, id: &str, mode: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE bankid_flows SET mode = ? WHERE id = ?").bind(mode).bind(id).execute(self.pool()).await?;
        Ok(())
    }

    pub(super) async fn bankid_finish(
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
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn bankid_consume(&self, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE bankid_flows SET state = 'consumed' WHERE id = ? AND state = 'complete'")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn bankid_enrol(&self, r: &BankIdEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError> {
        let mut tx = self.pool().begin().await?;
        if !write_enrolment(&mut tx, r, mode).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Completes the flow and stores the enrolment it made, in one transaction: None when the
    /// flow was no longer pending, Some(false) when the enrolment was refused (nothing changed).
    pub(super) async fn bankid_complete_enrolment(
        &self,
        flow_id: &str,
        r: &BankIdEnrolmentRecord,
        mode: EnrolMode,
        at: Timestamp,
    ) -> Result<Option<bool>, StorageError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE bankid_flows SET state = 'complete', hint_code = 'complete', finished_at = ?, last_collect_at = ?
             WHERE id = ? AND state = 'pending'",
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
            return Ok(Some(false));
        }
        tx.commit().await?;
        Ok(Some(true))
    }

    pub(super) async fn bankid_get_enrolment(
        &self,
        user_id: &str,
    ) -> Result<Option<BankIdEnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdEnrolmentRecord>("SELECT * FROM bankid_enrolments WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub(super) async fn bankid_by_hash(&self, pn_hash: &str) -> Result<Vec<BankIdEnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdEnrolmentRecord>("SELECT * FROM bankid_enrolments WHERE pn_hash = ?")
            .bind(pn_hash)
            .fetch_all(self.pool())
            .await?)
    }
}

/// The BankID row and the enrolment row, inside a transaction: false (the caller rolls back) when
/// `mode` does not fit what the user has.
async fn write_enrolment(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    r: &BankIdEnrolmentRecord,
    mode: EnrolMode,
) -> Result<bool, StorageError> {
    let sql = match mode {
        EnrolMode::Add => {
            "INSERT INTO bankid_enrolments (pn_encrypted, pn_hash, pn_masked, name, enrolled_at, user_id)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING"
        }
        EnrolMode::Replace => {
            "UPDATE bankid_enrolments SET pn_encrypted = ?, pn_hash = ?, pn_masked = ?, name = ?, enrolled_at = ?
             WHERE user_id = ?"
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
    Ok(done.rows_affected() == 1
        && super::sqlite::record_enrolment(tx, &r.user_id, "bankid", r.enrolled_at, mode).await?)
}
