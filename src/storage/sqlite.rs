//! The embedded SQLite backend (WAL mode).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::{AuditFilter, EnrolMode, MailRecord, ResetFlowRecord};
use super::{
    AuditRecord, BankIdEnrolmentRecord, BankIdFlowRecord, EnrolmentRecord, SessionRecord, SmsChallengeRecord,
    SmsEnrolmentRecord, Storage, StorageError,
};
use crate::clock::Timestamp;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Records an added service, or renews a replaced one (its cooling-off starts again), inside the
/// transaction that stores what it needs. False when there was one already (add) or none (replace).
pub(super) async fn record_enrolment(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: &str,
    service: &str,
    at: Timestamp,
    mode: EnrolMode,
) -> Result<bool, StorageError> {
    let sql = match mode {
        EnrolMode::Add => {
            "INSERT INTO enrolments (enrolled_at, user_id, service) VALUES (?, ?, ?) ON CONFLICT (user_id, service) DO NOTHING"
        }
        EnrolMode::Replace => {
            "UPDATE enrolments SET enrolled_at = ?, last_used_at = NULL, cooldown_lifted_at = NULL
             WHERE user_id = ? AND service = ?"
        }
    };
    let done = sqlx::query(sql).bind(at).bind(user_id).bind(service).execute(&mut **tx).await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// SQLite has one writer: decisions (limits) are taken one at a time in this process, so that
    /// a burst never meets a busy database in the middle of one.
    decisions: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStorage {
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StorageError::Open)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StorageError::Open(sqlx::Error::Io(e)))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(StorageError::Open)?;
        Ok(Self { pool, decisions: Default::default() })
    }

    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await.map_err(StorageError::Migrate)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, user_dn, account_name, display_name, is_admin, created_at, last_seen_at,
             roles, authenticated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id_hash)
        .bind(&s.user_id)
        .bind(&s.user_dn)
        .bind(&s.account_name)
        .bind(&s.display_name)
        .bind(s.is_admin)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(&s.roles)
        .bind(s.authenticated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StorageError> {
        Ok(sqlx::query_as::<_, SessionRecord>("SELECT * FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(at)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_reauthenticated(&self, id_hash: &str, at: Timestamp, roles: &str) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE sessions SET authenticated_at = ?, last_seen_at = ?, roles = ?, is_admin = ? WHERE id_hash = ?",
        )
        .bind(at)
        .bind(at)
        .bind(roles)
        .bind(roles.split(',').any(|r| r == "admin"))
        .bind(id_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    async fn session_proof(&self, id_hash: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET proof_service = ?, proof_at = ? WHERE id_hash = ?")
            .bind(service)
            .bind(at)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn lift_cooldown(&self, user_id: &str, at: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("UPDATE enrolments SET cooldown_lifted_at = ? WHERE user_id = ?")
            .bind(at)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")
            .bind(idle_before)
            .bind(created_before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO audit_log (at, event, outcome, username, user_id, source_ip, user_agent, request_id, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.at)
        .bind(&r.event)
        .bind(&r.outcome)
        .bind(&r.username)
        .bind(&r.user_id)
        .bind(&r.source_ip)
        .bind(&r.user_agent)
        .bind(&r.request_id)
        .bind(&r.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StorageError> {
        Ok(sqlx::query_as::<_, AuditRecord>("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn record_failure(&self, scope: &str, key: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO throttle_failures (scope, key, at) VALUES (?, ?, ?)")
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
        let _one_at_a_time = self.decisions.lock().await;
        // One statement: the count and the insert cannot be separated by another writer.
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO throttle_failures (scope, key, at)
             SELECT ?1, ?2, ?3
             WHERE (SELECT COUNT(*) FROM throttle_failures WHERE scope = ?1 AND key = ?2 AND at > ?4) < ?5
             RETURNING rowid",
        )
        .bind(scope)
        .bind(key)
        .bind(at)
        .bind(since)
        .bind(max)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id,)) = row else { return Ok(None) };
        let (position,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM throttle_failures WHERE scope = ? AND key = ? AND at > ? AND rowid <= ?",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some((id, position)))
    }

    async fn release_attempt(&self, id: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM throttle_failures WHERE rowid = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn failures_since(&self, scope: &str, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, StorageError> {
        let rows: Vec<(Timestamp,)> = sqlx::query_as(
            "SELECT at FROM throttle_failures WHERE scope = ? AND key = ? AND at > ? ORDER BY at DESC LIMIT 1000",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(at,)| at).collect())
    }

    async fn clear_failures(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM throttle_failures WHERE scope = ? AND key = ?")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_failures_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM throttle_failures WHERE at < ?").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn enrolments(&self, user_id: &str) -> Result<Vec<EnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, EnrolmentRecord>(
            "SELECT user_id, service, enrolled_at, last_used_at, cooldown_lifted_at FROM enrolments WHERE user_id = ? ORDER BY service",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn insert_bankid_flow(&self, f: &BankIdFlowRecord) -> Result<(), StorageError> {
        self.bankid_insert_flow(f).await
    }

    async fn bankid_flow(&self, id: &str) -> Result<Option<BankIdFlowRecord>, StorageError> {
        self.bankid_get_flow(id).await
    }

    async fn note_bankid_pending(&self, id: &str, hint: &str, at: Timestamp) -> Result<(), StorageError> {
        self.bankid_note_pending(id, hint, at).await
    }

    async fn set_bankid_mode(&self, id: &str, mode: &str) -> Result<(), StorageError> {
        self.bankid_set_mode(id, mode).await
    }

    async fn finish_bankid_flow(
        &self,
        id: &str,
        state: &str,
        hint: Option<&str>,
        result_user_id: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        self.bankid_finish(id, state, hint, result_user_id, at).await
    }

    async fn consume_bankid_flow(&self, id: &str) -> Result<bool, StorageError> {
        self.bankid_consume(id).await
    }

    async fn complete_bankid_enrolment(
        &self,
        flow_id: &str,
        r: &BankIdEnrolmentRecord,
        mode: EnrolMode,
        at: Timestamp,
    ) -> Result<Option<bool>, StorageError> {
        self.bankid_complete_enrolment(flow_id, r, mode, at).await
    }

    async fn enrol_bankid(&self, r: &BankIdEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError> {
        self.bankid_enrol(r, mode).await
    }

    async fn bankid_enrolment(&self, user_id: &str) -> Result<Option<BankIdEnrolmentRecord>, StorageError> {
        self.bankid_get_enrolment(user_id).await
    }

    async fn bankid_enrolments_by_hash(&self, pn_hash: &str) -> Result<Vec<BankIdEnrolmentRecord>, StorageError> {
        self.bankid_by_hash(pn_hash).await
    }

    async fn touch_enrolment(&self, user_id: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE enrolments SET last_used_at = ? WHERE user_id = ? AND service = ?")
            .bind(at)
            .bind(user_id)
            .bind(service)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_sms_challenge(&self, c: &SmsChallengeRecord) -> Result<(), StorageError> {
        self.sms_insert(c).await
    }

    async fn sms_challenge(&self, id: &str) -> Result<Option<SmsChallengeRecord>, StorageError> {
        self.sms_get(id).await
    }

    async fn claim_sms_attempt(&self, id: &str, max: i64) -> Result<Option<i64>, StorageError> {
        self.sms_claim(id, max).await
    }

    async fn sms_replace_code(&self, id: &str, code_hash: &str, sent_at: Timestamp) -> Result<bool, StorageError> {
        self.sms_replace(id, code_hash, sent_at).await
    }

    async fn finish_sms_challenge(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError> {
        self.sms_finish(id, state, at).await
    }

    async fn refuse_sms_challenge(&self, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE sms_challenges SET state = 'refused' WHERE id = ? AND state = 'verified'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enrol_sms(&self, r: &SmsEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError> {
        self.sms_enrol(r, mode).await
    }

    async fn sms_enrolment(&self, user_id: &str) -> Result<Option<SmsEnrolmentRecord>, StorageError> {
        self.sms_get_enrolment(user_id).await
    }

    async fn insert_reset_flow(&self, r: &ResetFlowRecord) -> Result<(), StorageError> {
        self.reset_insert(r).await
    }

    async fn reset_flow(&self, id: &str) -> Result<Option<ResetFlowRecord>, StorageError> {
        self.reset_get(id).await
    }

    async fn reset_verified(&self, id: &str, service: &str) -> Result<bool, StorageError> {
        self.reset_add_verified(id, service).await
    }

    async fn claim_reset_flow(&self, id: &str) -> Result<bool, StorageError> {
        self.reset_claim(id).await
    }

    async fn release_reset_flow(&self, id: &str) -> Result<(), StorageError> {
        self.reset_release(id).await
    }

    async fn set_reset_sms_challenge(&self, id: &str, challenge: &str) -> Result<(), StorageError> {
        self.reset_set_sms(id, challenge).await
    }

    async fn reset_failure(&self, id: &str) -> Result<i64, StorageError> {
        self.reset_count_failure(id).await
    }

    async fn finish_reset_flow(
        &self,
        id: &str,
        state: &str,
        outcome: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        self.reset_finish(id, state, outcome, at).await
    }

    async fn bankid_flow_for_context(
        &self,
        context: &str,
        purpose: &str,
    ) -> Result<Option<BankIdFlowRecord>, StorageError> {
        Ok(sqlx::query_as::<_, BankIdFlowRecord>(
            "SELECT * FROM bankid_flows WHERE context = ? AND purpose = ? AND state = 'complete' ORDER BY started_at DESC LIMIT 1",
        )
        .bind(context)
        .bind(purpose)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn audit_search(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditRecord>, i64), StorageError> {
        self.admin_audit_search(filter, offset, limit).await
    }

    async fn delete_audit_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM audit_log WHERE at < ?").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn daily_counts(&self, events: &[&str], since: Timestamp) -> Result<Vec<(i64, String, i64)>, StorageError> {
        self.admin_daily_counts(events, since).await
    }

    async fn all_enrolments(&self) -> Result<Vec<EnrolmentRecord>, StorageError> {
        Ok(sqlx::query_as::<_, EnrolmentRecord>(
            "SELECT user_id, service, enrolled_at, last_used_at, cooldown_lifted_at FROM enrolments",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn revoke_enrolment(&self, user_id: &str, service: Option<&str>) -> Result<u64, StorageError> {
        self.admin_revoke(user_id, service).await
    }

    async fn queue_mail(&self, m: &MailRecord) -> Result<(), StorageError> {
        self.mail_queue(m).await
    }

    async fn claim_due_mail(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<MailRecord>, StorageError> {
        self.mail_claim(now, lease_until, limit).await
    }

    async fn mail_sent(&self, id: i64, at: Timestamp) -> Result<(), StorageError> {
        self.mail_mark_sent(id, at).await
    }

    async fn mail_failed(&self, id: i64, error: &str, next_attempt_at: Timestamp) -> Result<(), StorageError> {
        self.mail_mark_failed(id, error, next_attempt_at).await
    }

    async fn delete_bankid_flows_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done =
            sqlx::query("DELETE FROM bankid_flows WHERE started_at < ?").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn purge_finished(&self, before: Timestamp) -> Result<u64, StorageError> {
        let mut tx = self.pool.begin().await?;
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

    async fn claim_reminder(
        &self,
        user_id: &str,
        now: Timestamp,
        last_before: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO reminders (user_id, sent_at) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET sent_at = excluded.sent_at WHERE reminders.sent_at <= ?3",
        )
        .bind(user_id)
        .bind(now)
        .bind(last_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
