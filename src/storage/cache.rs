//! What the busiest pages read, kept in memory in front of the database: sessions, each user's
//! enrolments and BankID flows. The enrolment page and the BankID status poll then read nothing
//! from the database between changes (a statement through sqlx costs more CPU in thread and
//! socket wake-ups than the rest of the page).
//!
//! Every write through this store forgets what it changes before it returns, so a request reads
//! its own writes; the write and its forgetting run as one task, so that a request that goes away
//! mid-write (a closed tab) cannot part them. What other instances write arrives as [`Changed`]
//! from the database (PostgreSQL NOTIFY, sent by triggers, so no statement can forget it); while
//! that feed is down, or silent longer than its heartbeat allows, nothing is served from memory.
//! SQLite is one process's file: there are no other writers. Entries also expire 30 s
//! (`kept::MAX_AGE`) after the read that fetched them began, whatever happens.
//!
//! A read that raced with a write never stores what it read: writes and notices bump an epoch
//! under the same lock under which a read stores its result, and the read stores only when the
//! epoch it started in is still current.

use std::sync::Arc;

use async_trait::async_trait;
use quick_cache::sync::Cache;

use super::*;

mod kept;
use kept::{Entry, Kept};

/// A change made in the database, as a cache must hear of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Session(String),
    /// Something the user enrolled (or its cooling-off, or its last use).
    User(String),
    BankIdFlow(String),
    /// Rows went without a row each (TRUNCATE): nothing held may be trusted.
    Everything,
    /// The feed of changes was lost: nothing held may be trusted until it is back.
    Lost,
    /// The feed (re)started: what was held before is forgotten, and memory may serve again.
    Listening,
}

pub struct CachedStorage {
    inner: Arc<dyn Storage>,
    kept: Arc<Kept>,
    /// Dropped with the cache: tells a feed to stop.
    closed: tokio::sync::watch::Sender<()>,
}

impl CachedStorage {
    /// `live`: whether memory may serve before a feed says [`Changed::Listening`] (true when no
    /// other process writes the database).
    pub fn new(inner: Arc<dyn Storage>, live: bool) -> Self {
        Self { inner, kept: Arc::new(Kept::new(live)), closed: tokio::sync::watch::channel(()).0 }
    }

    /// Changes (errs) when the cache is dropped.
    pub fn closed(&self) -> tokio::sync::watch::Receiver<()> {
        self.closed.subscribe()
    }

    /// A change another instance (or this one) made.
    pub fn heard(&self, change: Changed) {
        let kept = &self.kept;
        match change {
            Changed::Session(id) => kept.forget(|k| k.forget_session(&id)),
            Changed::User(user) => kept.forget(|k| k.forget_user(&user)),
            Changed::BankIdFlow(id) => kept.forget(|k| k.forget_flow(&id)),
            Changed::Everything => kept.forget(Kept::forget_all),
            Changed::Lost => {
                kept.set_live(false);
                kept.forget(Kept::forget_all);
            }
            Changed::Listening => {
                kept.forget(Kept::forget_all);
                kept.set_live(true);
            }
        }
    }

    /// Reads through `read` when `key` is not held, and keeps what it read unless a change came
    /// in meanwhile.
    async fn read_through<T: Clone>(
        &self,
        cache: impl Fn(&Kept) -> &Cache<String, Entry<T>>,
        key: &str,
        read: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        if let Some(value) = self.kept.recall(cache(&self.kept), key) {
            return Ok(value);
        }
        let started = self.kept.started();
        let value = read.await?;
        self.kept.keep(cache(&self.kept), key, &value, started);
        Ok(value)
    }

    /// As [`Self::read_through`], keeping only what exists: a miss is not remembered (unknown
    /// cookies and flow ids would only fill the cache).
    async fn read_through_found<T: Clone>(
        &self,
        cache: impl Fn(&Kept) -> &Cache<String, Entry<T>>,
        key: &str,
        read: impl std::future::Future<Output = Result<Option<T>, StorageError>>,
    ) -> Result<Option<T>, StorageError> {
        if let Some(value) = self.kept.recall(cache(&self.kept), key) {
            return Ok(Some(value));
        }
        let started = self.kept.started();
        let value = read.await?;
        if let Some(found) = &value {
            self.kept.keep(cache(&self.kept), key, found, started);
        }
        Ok(value)
    }

    /// Runs a write, then forgets what it touched (also when it failed: it may have happened), as
    /// one task: if the request goes away, the write still finishes and is still forgotten.
    async fn write<T: Send + 'static>(
        &self,
        change: impl FnOnce(Arc<dyn Storage>) -> WriteFuture<T>,
        forget: impl FnOnce(&Kept) + Send + 'static,
    ) -> Result<T, StorageError> {
        let (kept, change) = (self.kept.clone(), change(self.inner.clone()));
        let task = tokio::spawn(async move {
            let out = change.await;
            kept.forget(forget);
            out
        });
        task.await.unwrap_or_else(|e| Err(StorageError::Interrupted(e.to_string())))
    }
}

type WriteFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StorageError>> + Send>>;

/// An owned write: the database and owned copies of the arguments move into the task.
macro_rules! owned {
    (|$db:ident| $body:expr) => {
        move |$db: Arc<dyn Storage>| -> WriteFuture<_> { Box::pin(async move { $body.await }) }
    };
}

/// Implements a role by passing each listed method to the database unchanged; the items after
/// the list are written out (the cached reads and the writes that forget).
macro_rules! role {
    ($role:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* } $($own:tt)*) => {
        #[async_trait]
        impl $role for CachedStorage {
            $(async fn $name(&self $(, $arg: $ty)*) -> $ret { self.inner.$name($($arg),*).await })*
            $($own)*
        }
    };
}

role!(SessionStore {
    fn insert_session(&self, s: &SessionRecord) -> Result<(), StorageError>;
}
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StorageError> {
        self.read_through_found(|k| &k.sessions, id_hash, self.inner.session(id_hash)).await
    }

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<(), StorageError> {
        let (id, key) = (id_hash.to_string(), id_hash.to_string());
        self.write(owned!(|db| db.touch_session(&id, at)), move |k| k.forget_session(&key)).await
    }

    async fn session_reauthenticated(&self, id_hash: &str, at: Timestamp, roles: &str) -> Result<(), StorageError> {
        let (id, key, roles) = (id_hash.to_string(), id_hash.to_string(), roles.to_string());
        self.write(owned!(|db| db.session_reauthenticated(&id, at, &roles)), move |k| k.forget_session(&key)).await
    }

    async fn move_session(&self, id_hash: &str, new_id_hash: &str) -> Result<bool, StorageError> {
        let (id, new, key) = (id_hash.to_string(), new_id_hash.to_string(), id_hash.to_string());
        self.write(owned!(|db| db.move_session(&id, &new)), move |k| k.forget_session(&key)).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StorageError> {
        let (id, key) = (id_hash.to_string(), id_hash.to_string());
        self.write(owned!(|db| db.delete_session(&id)), move |k| k.forget_session(&key)).await
    }

    async fn session_password_checked(
        &self,
        id_hash: &str,
        pwd_last_set: Option<&str>,
        at: Timestamp,
        previous: Option<Timestamp>,
    ) -> Result<bool, StorageError> {
        let (id, key, set) = (id_hash.to_string(), id_hash.to_string(), pwd_last_set.map(str::to_string));
        let checked = owned!(|db| db.session_password_checked(&id, set.as_deref(), at, previous));
        self.write(checked, move |k| k.forget_session(&key)).await
    }

    async fn session_password_renewed(
        &self,
        id_hash: &str,
        pwd_last_set: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let (id, key, set) = (id_hash.to_string(), id_hash.to_string(), pwd_last_set.map(str::to_string));
        self.write(owned!(|db| db.session_password_renewed(&id, set.as_deref(), at)), move |k| k.forget_session(&key))
            .await
    }

    async fn session_proof(&self, id_hash: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        let (id, key, service) = (id_hash.to_string(), id_hash.to_string(), service.to_string());
        self.write(owned!(|db| db.session_proof(&id, &service, at)), move |k| k.forget_session(&key)).await
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StorageError> {
        let (user, who, keep) = (user_id.to_string(), user_id.to_string(), keep.map(str::to_string));
        let forget = move |k: &Kept| k.sessions.retain(|_, e| e.value.user_id != who);
        self.write(owned!(|db| db.delete_user_sessions(&user, keep.as_deref())), forget).await
    }

    async fn delete_expired_sessions(&self, idle_before: Timestamp, created_before: Timestamp) -> Result<u64, StorageError> {
        let forget = move |k: &Kept| {
            k.sessions.retain(|_, e| e.value.last_seen_at >= idle_before && e.value.created_at >= created_before)
        };
        self.write(owned!(|db| db.delete_expired_sessions(idle_before, created_before)), forget).await
    }
);

role!(AuditStore {
    fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError>;
    fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StorageError>;
    fn audit_search(&self, filter: &AuditFilter, offset: i64, limit: i64) -> Result<(Vec<AuditRecord>, i64), StorageError>;
    fn delete_audit_before(&self, before: Timestamp) -> Result<u64, StorageError>;
    fn daily_counts(&self, events: &[&str], since: Timestamp) -> Result<Vec<(i64, String, i64)>, StorageError>;
});

role!(ThrottleStore {
    fn record_failure(&self, scope: &str, key: &str, at: Timestamp) -> Result<(), StorageError>;
    fn reserve_attempt(&self, scope: &str, key: &str, at: Timestamp, since: Timestamp, max: i64)
        -> Result<Option<(i64, i64)>, StorageError>;
    fn reserve_in_run(&self, scope: &str, key: &str, at: Timestamp, gap: i64, max: i64)
        -> Result<Option<(i64, i64)>, StorageError>;
    fn release_attempts(&self, ids: &[i64], clear: Option<(&str, &[&str])>) -> Result<(), StorageError>;
    fn failures_since(&self, scope: &str, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, StorageError>;
    fn clear_failures(&self, scope: &str, key: &str) -> Result<(), StorageError>;
    fn delete_failures_before(&self, before: Timestamp, keep: Option<(&str, Timestamp)>) -> Result<u64, StorageError>;
});

role!(EnrolmentStore {
    fn all_enrolments(&self) -> Result<Vec<EnrolmentRecord>, StorageError>;
    fn bankid_enrolments_by_hash(&self, pn_hash: &str) -> Result<Vec<BankIdEnrolmentRecord>, StorageError>;
    fn claim_reminder(&self, user_id: &str, now: Timestamp, last_before: Timestamp) -> Result<bool, StorageError>;
}
    async fn enrolments(&self, user_id: &str) -> Result<Vec<EnrolmentRecord>, StorageError> {
        self.read_through(|k| &k.enrolments, user_id, self.inner.enrolments(user_id)).await
    }

    async fn bankid_enrolment(&self, user_id: &str) -> Result<Option<BankIdEnrolmentRecord>, StorageError> {
        self.read_through(|k| &k.bankid_enrolments, user_id, self.inner.bankid_enrolment(user_id)).await
    }

    async fn sms_enrolment(&self, user_id: &str) -> Result<Option<SmsEnrolmentRecord>, StorageError> {
        self.read_through(|k| &k.sms_enrolments, user_id, self.inner.sms_enrolment(user_id)).await
    }

    async fn touch_enrolment(&self, user_id: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        let (user, who, service) = (user_id.to_string(), user_id.to_string(), service.to_string());
        self.write(owned!(|db| db.touch_enrolment(&user, &service, at)), move |k| k.forget_user(&who)).await
    }

    async fn revoke_enrolment(
        &self,
        user_id: &str,
        service: Option<&str>,
        keep_session: Option<&str>,
    ) -> Result<(u64, u64), StorageError> {
        let (user, who, service) = (user_id.to_string(), user_id.to_string(), service.map(str::to_string));
        let keep = keep_session.map(str::to_string);
        let forget = move |k: &Kept| k.forget_user_and_sessions(&who);
        self.write(owned!(|db| db.revoke_enrolment(&user, service.as_deref(), keep.as_deref())), forget).await
    }

    async fn record_restart(
        &self,
        user_id: &str,
        service: &str,
        enrolled_at: Timestamp,
        set: Timestamp,
    ) -> Result<bool, StorageError> {
        let (user, who, service) = (user_id.to_string(), user_id.to_string(), service.to_string());
        let change = owned!(|db| db.record_restart(&user, &service, enrolled_at, set));
        self.write(change, move |k| k.forget_user(&who)).await
    }

    async fn lift_cooldown(
        &self,
        user_id: &str,
        service: &str,
        proved_at: Timestamp,
        window: (Timestamp, Timestamp),
        at: Timestamp,
    ) -> Result<u64, StorageError> {
        let (user, who, service) = (user_id.to_string(), user_id.to_string(), service.to_string());
        let change = owned!(|db| db.lift_cooldown(&user, &service, proved_at, window, at));
        self.write(change, move |k| k.forget_user(&who)).await
    }

    async fn enrol_bankid(&self, r: &BankIdEnrolmentRecord, mode: EnrolMode) -> Result<bool, StorageError> {
        let (record, who) = (r.clone(), r.user_id.clone());
        self.write(owned!(|db| db.enrol_bankid(&record, mode)), move |k| k.forget_user(&who)).await
    }

    async fn complete_bankid_enrolment(
        &self,
        flow_id: &str,
        r: &BankIdEnrolmentRecord,
        mode: EnrolMode,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<Option<EnrolWrite>, StorageError> {
        let (flow, record, keep) = (flow_id.to_string(), r.clone(), keep_session.map(str::to_string));
        let (id, who) = (flow_id.to_string(), r.user_id.clone());
        let forget = move |k: &Kept| {
            k.forget_flow(&id);
            k.forget_user_and_sessions(&who)
        };
        self.write(owned!(|db| db.complete_bankid_enrolment(&flow, &record, mode, at, keep.as_deref())), forget).await
    }

    async fn enrol_sms(
        &self,
        r: &SmsEnrolmentRecord,
        mode: EnrolMode,
        keep_session: Option<&str>,
    ) -> Result<EnrolWrite, StorageError> {
        let (record, who, keep) = (r.clone(), r.user_id.clone(), keep_session.map(str::to_string));
        let forget = move |k: &Kept| k.forget_user_and_sessions(&who);
        self.write(owned!(|db| db.enrol_sms(&record, mode, keep.as_deref())), forget).await
    }
);

role!(FlowStore {
    fn insert_bankid_flow(&self, f: &BankIdFlowRecord) -> Result<(), StorageError>;
    fn bankid_flow_for_context(&self, context: &str, purpose: &str) -> Result<Option<BankIdFlowRecord>, StorageError>;
    fn insert_sms_challenge(&self, c: &SmsChallengeRecord) -> Result<(), StorageError>;
    fn sms_challenge(&self, id: &str) -> Result<Option<SmsChallengeRecord>, StorageError>;
    fn claim_sms_attempt(&self, id: &str, max: i64) -> Result<Option<i64>, StorageError>;
    fn sms_replace_code(&self, id: &str, code_hash: &str, sent_at: Timestamp) -> Result<bool, StorageError>;
    fn finish_sms_challenge(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError>;
    fn refuse_sms_challenge(&self, id: &str) -> Result<bool, StorageError>;
    fn insert_reset_flow(&self, r: &ResetFlowRecord) -> Result<(), StorageError>;
    fn reset_flow(&self, id: &str) -> Result<Option<ResetFlowRecord>, StorageError>;
    fn reset_verified(&self, id: &str, service: &str) -> Result<bool, StorageError>;
    fn claim_reset_flow(&self, id: &str, now: Timestamp, max_failures: i64) -> Result<bool, StorageError>;
    fn release_reset_flow(&self, id: &str, written_maybe_at: Option<Timestamp>) -> Result<(), StorageError>;
    fn end_reset_flow(&self, id: &str, state: &str, at: Timestamp) -> Result<bool, StorageError>;
    fn set_reset_sms_challenge(&self, id: &str, challenge: &str) -> Result<(), StorageError>;
    fn reset_failure(&self, id: &str) -> Result<i64, StorageError>;
    fn finish_reset_flow(&self, id: &str, state: &str, outcome: Option<&str>, at: Timestamp) -> Result<bool, StorageError>;
    fn purge_finished(&self, before: Timestamp) -> Result<u64, StorageError>;
}
    async fn bankid_flow(&self, id: &str) -> Result<Option<BankIdFlowRecord>, StorageError> {
        self.read_through_found(|k| &k.flows, id, self.inner.bankid_flow(id)).await
    }

    async fn claim_bankid_collect(&self, id: &str, now: Timestamp, not_since: Timestamp) -> Result<bool, StorageError> {
        let (flow, key) = (id.to_string(), id.to_string());
        self.write(owned!(|db| db.claim_bankid_collect(&flow, now, not_since)), move |k| k.forget_flow(&key)).await
    }

    async fn note_bankid_pending(&self, id: &str, hint: &str, at: Timestamp) -> Result<(), StorageError> {
        let (flow, key, hint) = (id.to_string(), id.to_string(), hint.to_string());
        self.write(owned!(|db| db.note_bankid_pending(&flow, &hint, at)), move |k| k.forget_flow(&key)).await
    }

    async fn set_bankid_mode(&self, id: &str, mode: &str) -> Result<(), StorageError> {
        let (flow, key, mode) = (id.to_string(), id.to_string(), mode.to_string());
        self.write(owned!(|db| db.set_bankid_mode(&flow, &mode)), move |k| k.forget_flow(&key)).await
    }

    async fn finish_bankid_flow(
        &self,
        id: &str,
        state: &str,
        hint: Option<&str>,
        result_user_id: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let (flow, key, state) = (id.to_string(), id.to_string(), state.to_string());
        let (hint, user) = (hint.map(str::to_string), result_user_id.map(str::to_string));
        let change = owned!(|db| db.finish_bankid_flow(&flow, &state, hint.as_deref(), user.as_deref(), at));
        self.write(change, move |k| k.forget_flow(&key)).await
    }

    async fn cancel_unwatched_bankid_flow(&self, id: &str, since: Timestamp, at: Timestamp) -> Result<bool, StorageError> {
        let (flow, key) = (id.to_string(), id.to_string());
        self.write(owned!(|db| db.cancel_unwatched_bankid_flow(&flow, since, at)), move |k| k.forget_flow(&key)).await
    }

    async fn consume_bankid_flow(&self, id: &str) -> Result<bool, StorageError> {
        let (flow, key) = (id.to_string(), id.to_string());
        self.write(owned!(|db| db.consume_bankid_flow(&flow)), move |k| k.forget_flow(&key)).await
    }

    async fn mark_bankid_returned(&self, id: &str, at: Timestamp, since: Timestamp) -> Result<bool, StorageError> {
        let (flow, key) = (id.to_string(), id.to_string());
        self.write(owned!(|db| db.mark_bankid_returned(&flow, at, since)), move |k| k.forget_flow(&key)).await
    }


    async fn delete_bankid_flows_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let forget = move |k: &Kept| k.flows.retain(|_, e| e.value.started_at >= before);
        self.write(owned!(|db| db.delete_bankid_flows_before(before)), forget).await
    }
);

role!(OutboxStore {
    fn queue_mail(&self, m: &MailRecord) -> Result<(), StorageError>;
    fn claim_due_mail(&self, now: Timestamp, lease_until: Timestamp, limit: i64) -> Result<Vec<MailRecord>, StorageError>;
    fn mail_sent(&self, id: i64, at: Timestamp) -> Result<(), StorageError>;
    fn mail_failed(&self, id: i64, error: &str, next_attempt_at: Timestamp) -> Result<(), StorageError>;
    fn outbox_backlog(&self) -> Result<(i64, Option<Timestamp>), StorageError>;
});

role!(JobStore {
    fn claim_job(&self, name: &str, now: Timestamp, lease_until: Timestamp) -> Result<bool, StorageError>;
    fn release_job(&self, name: &str, lease_until: Timestamp, at: Timestamp) -> Result<(), StorageError>;
    fn claim_expiry_reminder(&self, user_id: &str, expires_at: Timestamp, days: i64, now: Timestamp)
        -> Result<bool, StorageError>;
    fn delete_expiry_reminders_before(&self, before: Timestamp) -> Result<u64, StorageError>;
});

#[async_trait]
impl Storage for CachedStorage {
    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.ping().await
    }
}
