//! Storage, by role: sessions, the audit log, limit counters, enrolments, flows in progress and
//! the mail outbox, each a small trait ([`SessionStore`], [`AuditStore`], [`ThrottleStore`],
//! [`EnrolmentStore`], [`FlowStore`], [`OutboxStore`]); [`Storage`] is all of them.
//!
//! Every operation that decides something (a limit, a single-use step, a claim) is one statement
//! or one transaction. [`SqliteStorage`] is the embedded default, one file per role; a PostgreSQL
//! backend goes beside it (with its own `migrations/postgres`) for several instances behind a load
//! balancer: nothing outside this module knows which database is in use.

mod audit_filter;
pub mod cache;
mod conns;
mod postgres;
mod records;
mod sqlite;

pub use postgres::PgStorage;
pub use records::*;
pub use sqlite::SqliteStorage;

/// Every storage role, for code that calls them on a concrete backend (`use storage::prelude::*`).
pub mod prelude {
    pub use super::{AuditStore, EnrolmentStore, FlowStore, OutboxStore, SessionStore, Storage, ThrottleStore};
}

use async_trait::async_trait;
use secrecy::SecretString;

use crate::clock::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the database cannot be opened: {0}")]
    Open(#[source] sqlx::Error),
    #[error("the database migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("unsupported database URL scheme \"{0}:\"")]
    UnsupportedUrl(String),
    #[error(
        "the database {0} is in use by another Stjärna process; SQLite serves one instance (stop the \
         other, or use PostgreSQL for several)"
    )]
    InUse(String),
    #[error("a database write was interrupted: {0}")]
    Interrupted(String),
}

/// Sessions: server-side, behind a hashed cookie.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StorageError>;

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StorageError>;

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<(), StorageError>;

    /// The user gave their password again; the roles were read again with it.
    async fn session_reauthenticated(&self, id_hash: &str, at: Timestamp, roles: &str) -> Result<(), StorageError>;

    async fn delete_session(&self, id_hash: &str) -> Result<(), StorageError>;

    /// Moves the session to a new id (a new cookie value) in one step: the old id ends, on every
    /// instance. False when there was no such session.
    async fn move_session(&self, id_hash: &str, new_id_hash: &str) -> Result<bool, StorageError>;

    /// The user verified with an enrolled service in this session (a step-up).
    async fn session_proof(&self, id_hash: &str, service: &str, at: Timestamp) -> Result<(), StorageError>;

    /// The session was checked against the directory at `at` and found as it was: the user's
    /// `pwdLastSet` then. Only if the session was last checked at `previous` (a check that raced
    /// with a renewal must not overwrite it); whether it was written.
    async fn session_password_checked(
        &self,
        id_hash: &str,
        pwd_last_set: Option<&str>,
        at: Timestamp,
        previous: Option<Timestamp>,
    ) -> Result<bool, StorageError>;

    /// The user proved their password in this session at `at`: `pwd_last_set` is what AD said
    /// then (None: a change made here, whose new value the next check takes).
    async fn session_password_renewed(
        &self,
        id_hash: &str,
        pwd_last_set: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StorageError>;

    /// Ends every session of the user but `keep` (a session id hash); returns how many ended.
    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StorageError>;

    /// Deletes sessions idle since before `idle_before` or created before `created_before`.
    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StorageError>;
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends to the audit log (the id is assigned by the database).
    async fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError>;

    /// The newest entries first.
    async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StorageError>;

    /// Audit entries matching `filter`, newest first, and how many match in all.
    async fn audit_search(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditRecord>, i64), StorageError>;

    async fn delete_audit_before(&self, before: Timestamp) -> Result<u64, StorageError>;

    /// How many successful events of each kind per day (days since the epoch) since `since`.
    async fn daily_counts(&self, events: &[&str], since: Timestamp) -> Result<Vec<(i64, String, i64)>, StorageError>;
}

/// Counters behind every limit: one row per attempt.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn record_failure(&self, scope: &str, key: &str, at: Timestamp) -> Result<(), StorageError>;

    /// Record-then-decide, atomically: records an attempt against (scope, key) unless `max` are
    /// already recorded after `since`. Some((id, position)) when recorded, position counting this
    /// one; None when the limit is reached (nothing recorded).
    async fn reserve_attempt(
        &self,
        scope: &str,
        key: &str,
        at: Timestamp,
        since: Timestamp,
        max: i64,
    ) -> Result<Option<(i64, i64)>, StorageError>;

    /// The same, counted as AD counts bad passwords: against the failures of the current run, each
    /// less than `gap` seconds after the one before (a quiet gap of `gap` or more starts a new
    /// run), so that failures spaced out just inside the window cannot add up past `max`.
    async fn reserve_in_run(
        &self,
        scope: &str,
        key: &str,
        at: Timestamp,
        gap: i64,
        max: i64,
    ) -> Result<Option<(i64, i64)>, StorageError>;

    /// Takes back recorded attempts (they turned out not to be failures) and, with `clear`, every
    /// failure of that scope under those keys too: one statement.
    async fn release_attempts(&self, ids: &[i64], clear: Option<(&str, &[&str])>) -> Result<(), StorageError>;

    /// When the failures since `since` happened, newest first.
    async fn failures_since(&self, scope: &str, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, StorageError>;

    async fn clear_failures(&self, scope: &str, key: &str) -> Result<(), StorageError>;

    /// Deletes counted attempts older than `before`, but, with `keep`, not those of a key of that
    /// scope that has one at or after its time (a run of failures still going on, however long
    /// AD's window is).
    async fn delete_failures_before(
        &self,
        before: Timestamp,
        keep: Option<(&str, Timestamp)>,
    ) -> Result<u64, StorageError>;
}

/// What each user enrolled (BankID, mobile number), and enrolment reminders.
#[async_trait]
pub trait EnrolmentStore: Send + Sync {
    async fn enrolments(&self, user_id: &str) -> Result<Vec<EnrolmentRecord>, StorageError>;

    async fn all_enrolments(&self) -> Result<Vec<EnrolmentRecord>, StorageError>;

    /// Marks an enrolled service as just used.
    async fn touch_enrolment(&self, user_id: &str, service: &str, at: Timestamp) -> Result<(), StorageError>;

    /// Removes one enrolled service (or all of them) and what they stored; when anything was
    /// removed, every session of the user but `keep_session` (an id hash: the session that asked,
    /// when the user removes a service themselves) ends in the same transaction. A `keep_session`
    /// that has ended removes nothing. The enrolments removed and the sessions ended.
    async fn revoke_enrolment(
        &self,
        user_id: &str,
        service: Option<&str>,
        keep_session: Option<&str>,
    ) -> Result<(u64, u64), StorageError>;

    /// Lifts the cooling-off of the user's `service` when it was enrolled at or before `proved_at`
    /// and after `cooling_since` (so is cooling off now) and not lifted at or after
    /// `lifted_before` (an older lift no longer holds: the password was set since): the number
    /// lifted.
    async fn lift_cooldown(
        &self,
        user_id: &str,
        service: &str,
        proved_at: Timestamp,
        (cooling_since, lifted_before): (Timestamp, Timestamp),
        at: Timestamp,
    ) -> Result<u64, StorageError>;

    /// Keeps `set`, a password set that started the cooling-off of the user's `service` enrolled
    /// at `enrolled_at` again, unless a later one is kept (or the enrolment was replaced since):
    /// whether it was kept.
    async fn record_restart(
        &self,
        user_id: &str,
        service: &str,
        enrolled_at: Timestamp,
        set: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Binds a BankID to a user and records the enrolment, in one transaction. False (nothing
    /// stored) when `mode` does not fit what the user has.
    async fn enrol_bankid(&self, r: &BankIdEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError>;

    /// Completes a pending BankID flow and stores the enrolment it made, in one transaction: None
    /// when the flow was no longer pending, else what the enrolment's write did (nothing changed
    /// unless done). What proves the user changed: every session of theirs but `keep_session`
    /// (an id hash, the one that asked) ends in the same transaction.
    async fn complete_bankid_enrolment(
        &self,
        flow_id: &str,
        r: &BankIdEnrolmentRecord,
        mode: EnrolMode,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<Option<EnrolWrite>, StorageError>;

    async fn bankid_enrolment(&self, user_id: &str) -> Result<Option<BankIdEnrolmentRecord>, StorageError>;

    async fn bankid_enrolments_by_hash(&self, pn_hash: &str) -> Result<Vec<BankIdEnrolmentRecord>, StorageError>;

    /// Records the enrolled number and the enrolment, in one transaction (see [`EnrolWrite`]).
    /// What proves the user changed: every session of theirs but `keep_session` (an id hash, the
    /// one that asked) ends in the same transaction.
    async fn enrol_sms(
        &self,
        r: &SmsEnrolmentRecord,
        mode: EnrolMode,
        keep_session: Option<&str>,
    ) -> Result<EnrolWrite, StorageError>;

    async fn sms_enrolment(&self, user_id: &str) -> Result<Option<SmsEnrolmentRecord>, StorageError>;

    /// Claims the right to remind `user_id` now: true (and recorded) when the last reminder was
    /// sent at or before `last_before`, or never; false otherwise. One statement.
    async fn claim_reminder(&self, user_id: &str, now: Timestamp, last_before: Timestamp)
    -> Result<bool, StorageError>;
}

/// Flows in progress: BankID orders, mobile-code challenges and password resets.
#[async_trait]
pub trait FlowStore: Send + Sync {
    async fn insert_bankid_flow(&self, f: &BankIdFlowRecord) -> Result<(), StorageError>;

    async fn bankid_flow(&self, id: &str) -> Result<Option<BankIdFlowRecord>, StorageError>;

    /// Claims the next collect of a pending order: true (and `last_collect_at` set to `now`) when
    /// nobody collected since `not_since`; one statement, so one poller wins.
    async fn claim_bankid_collect(&self, id: &str, now: Timestamp, not_since: Timestamp) -> Result<bool, StorageError>;

    /// Records a collect that left the order pending.
    async fn note_bankid_pending(&self, id: &str, hint: &str, at: Timestamp) -> Result<(), StorageError>;

    /// Sets how a pending flow's app is started (`qr`, `autostart`); a flow that has ended keeps its own.
    async fn set_bankid_mode(&self, id: &str, mode: &str) -> Result<(), StorageError>;

    /// Moves a pending flow to a final state. False when it was no longer pending (someone else finished it).
    async fn finish_bankid_flow(
        &self,
        id: &str,
        state: &str,
        hint: Option<&str>,
        result_user_id: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Cancels a pending flow whose page was left, unless it was collected at or after `since`
    /// (the page came back and polls): the check and the cancel in one statement.
    async fn cancel_unwatched_bankid_flow(
        &self,
        id: &str,
        since: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Marks a complete flow as used (a login is taken once). False when it was not complete, or
    /// when it was opened in the app on this device with a return URL and the app has not sent the
    /// user back to this browser yet.
    async fn consume_bankid_flow(&self, id: &str) -> Result<bool, StorageError>;

    /// Records that the app sent the user back to the browser that started the flow. False when
    /// it was recorded before, the flow has ended, or it completed before `finished_since`.
    async fn mark_bankid_returned(
        &self,
        id: &str,
        at: Timestamp,
        finished_since: Timestamp,
    ) -> Result<bool, StorageError>;

    /// The completed BankID order of a reset flow, if there is one (one opened in the app on this
    /// device only once the app sent the user back here).
    async fn bankid_flow_for_context(
        &self,
        context: &str,
        purpose: &str,
    ) -> Result<Option<BankIdFlowRecord>, StorageError>;

    async fn delete_bankid_flows_before(&self, before: Timestamp) -> Result<u64, StorageError>;

    async fn insert_sms_challenge(&self, c: &SmsChallengeRecord) -> Result<(), StorageError>;

    async fn sms_challenge(&self, id: &str) -> Result<Option<SmsChallengeRecord>, StorageError>;

    /// Claims one try at a pending challenge that has tries left; the tries used so far (this one
    /// included), or None when there is none to claim.
    async fn claim_sms_attempt(&self, id: &str, max: i64) -> Result<Option<i64>, StorageError>;

    /// Replaces the live code (a resend): the old one stops working.
    async fn sms_replace_code(&self, id: &str, code_hash: &str, sent_at: Timestamp) -> Result<bool, StorageError>;

    /// Moves a pending challenge to a final state; false when it was no longer pending.
    async fn finish_sms_challenge(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError>;

    /// A verified enrolment challenge whose enrolment the storage refused: `verified → refused`.
    async fn refuse_sms_challenge(&self, id: &str) -> Result<bool, StorageError>;

    async fn insert_reset_flow(&self, r: &ResetFlowRecord) -> Result<(), StorageError>;

    async fn reset_flow(&self, id: &str) -> Result<Option<ResetFlowRecord>, StorageError>;

    /// Adds a verified service to a flow that is still open, in one statement (parallel
    /// verifications are never lost); false when it was there already or the flow is not open.
    async fn reset_verified(&self, id: &str, service: &str) -> Result<bool, StorageError>;

    /// Claims a verified flow for its one password write (`verified → writing`); false when it
    /// was not verified (another request has it, or it ended), is past its time at `now`, or
    /// has `max_failures` failures.
    async fn claim_reset_flow(&self, id: &str, now: Timestamp, max_failures: i64) -> Result<bool, StorageError>;

    /// Gives a claimed flow back (`writing → verified`): the write was refused, or AD did not say
    /// whether it made it (`written_maybe_at`: when; AD may then have the flow's own password).
    async fn release_reset_flow(&self, id: &str, written_maybe_at: Option<Timestamp>) -> Result<(), StorageError>;

    async fn set_reset_sms_challenge(&self, id: &str, challenge: &str) -> Result<(), StorageError>;

    /// Counts a failed verification; returns the failures so far.
    async fn reset_failure(&self, id: &str) -> Result<i64, StorageError>;

    /// Ends an open flow (`identifying` or `verified`: time, failures, a password changed
    /// elsewhere), once; false when it was not open (one claimed for its write is left alone).
    async fn end_reset_flow(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError>;

    /// The claim's holder moves its flow (`writing`) to a final state, once; false when it was
    /// not being written.
    async fn finish_reset_flow(
        &self,
        id: &str,
        state: &str,
        outcome: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Deletes reset flows, code challenges and sent mail that began before `before` (a flow or
    /// challenge still open then has long expired). Returns how many rows went.
    async fn purge_finished(&self, before: Timestamp) -> Result<u64, StorageError>;
}

/// The mail outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    async fn queue_mail(&self, m: &MailRecord) -> Result<(), StorageError>;

    /// Claims mail due for a (re)try, atomically: its next try moves to `lease_until`, so no other
    /// worker takes it meanwhile.
    async fn claim_due_mail(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<MailRecord>, StorageError>;

    async fn mail_sent(&self, id: i64, at: Timestamp) -> Result<(), StorageError>;

    async fn mail_failed(&self, id: i64, error: &str, next_attempt_at: Timestamp) -> Result<(), StorageError>;

    /// How many mails wait to be sent, and when the oldest of them was queued.
    async fn outbox_backlog(&self) -> Result<(i64, Option<Timestamp>), StorageError>;
}

/// Background jobs that must run on one instance at a time, and what they sent.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Claims the job `name` until `lease_until` when nobody holds it at `now` (its last lease
    /// ran out): true when this caller may run it. One statement.
    async fn claim_job(&self, name: &str, now: Timestamp, lease_until: Timestamp) -> Result<bool, StorageError>;

    /// Gives the job back at `at` (the round is over) if the lease until `lease_until` is still
    /// the caller's: the next claim from `at` on succeeds.
    async fn release_job(&self, name: &str, lease_until: Timestamp, at: Timestamp) -> Result<(), StorageError>;

    /// Records that `user_id` was reminded `days` before their password expires at `expires_at`:
    /// true the first time only (whoever asks), so that each reminder goes out once.
    async fn claim_expiry_reminder(
        &self,
        user_id: &str,
        expires_at: Timestamp,
        days: i64,
        now: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Forgets reminders for expiry times before `before` (the janitor).
    async fn delete_expiry_reminders_before(&self, before: Timestamp) -> Result<u64, StorageError>;
}

/// Everything the portal stores, by role; one implementation per database.
#[async_trait]
pub trait Storage:
    SessionStore + AuditStore + ThrottleStore + EnrolmentStore + FlowStore + OutboxStore + JobStore + Send + Sync + 'static
{
    /// A trivial query, for the health endpoint.
    async fn ping(&self) -> Result<(), StorageError>;
}

/// Opens the database named by `url` and brings its schema up to date.
pub async fn open(
    url: &str,
    max_connections: u32,
    password: Option<&SecretString>,
) -> Result<std::sync::Arc<dyn Storage>, StorageError> {
    use std::sync::Arc;
    if url.starts_with("sqlite:") {
        let store = SqliteStorage::open(url, max_connections).await?;
        store.migrate().await?;
        // One process's file: nobody else writes it, so memory serves from the start.
        Ok(Arc::new(cache::CachedStorage::new(Arc::new(store), true)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStorage::open(url, max_connections, password).await?;
        store.migrate().await?;
        let cached = Arc::new(cache::CachedStorage::new(Arc::new(store.clone()), false));
        store.feed(&cached);
        Ok(cached)
    } else {
        // Only the scheme: the rest may hold a password.
        Err(StorageError::UnsupportedUrl(url.split(':').next().unwrap_or_default().to_string()))
    }
}
