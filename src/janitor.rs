//! The janitor: deletes what has served its time (expired sessions, old limit counters, finished
//! flows and challenges, sent mail, BankID orders, audit entries past their retention). Every
//! statement is idempotent, so it is safe on every instance at once; `run_once(now)` is what the
//! loop calls and what tests call with their own clock.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::storage::{Storage, StorageError};

#[derive(Clone)]
pub struct Janitor {
    store: Arc<dyn Storage>,
    idle_seconds: i64,
    absolute_seconds: i64,
    /// Finished flows, challenges, orders and sent mail.
    retention_seconds: i64,
    audit_retention_seconds: i64,
}

/// What one round deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub counters: u64,
    pub finished: u64,
    pub orders: u64,
    pub audit: u64,
    pub reminders: u64,
}

/// Limit counters older than this count toward nothing (the longest window is a day)...
const COUNTER_SECONDS: i64 = 2 * 86400;
/// ...but a login's failures count in runs that end only after AD's observation window passes
/// without one, and that window may be up to 99,999 minutes: a user's failures stay while any
/// of theirs is newer than this.
const LOGIN_RUN_SECONDS: i64 = 70 * 86400;

impl Janitor {
    pub fn new(
        store: Arc<dyn Storage>,
        session_idle_minutes: u64,
        session_absolute_minutes: u64,
        retention_days: u32,
        audit_retention_days: u64,
    ) -> Self {
        Self {
            store,
            idle_seconds: session_idle_minutes as i64 * 60,
            absolute_seconds: session_absolute_minutes as i64 * 60,
            retention_seconds: retention_days as i64 * 86400,
            audit_retention_seconds: audit_retention_days as i64 * 86400,
        }
    }

    pub async fn run_once(&self, now: Timestamp) -> Result<Swept, StorageError> {
        let store = &self.store;
        Ok(Swept {
            sessions: store.delete_expired_sessions(now - self.idle_seconds, now - self.absolute_seconds).await?,
            counters: store
                .delete_failures_before(
                    now - COUNTER_SECONDS,
                    Some((crate::login::USER_SCOPE, now - LOGIN_RUN_SECONDS)),
                )
                .await?,
            finished: store.purge_finished(now - self.retention_seconds).await?,
            orders: store.delete_bankid_flows_before(now - self.retention_seconds.max(86400)).await?,
            audit: store.delete_audit_before(now - self.audit_retention_seconds).await?,
            // Reminders for passwords that expired a day ago can never be sent again.
            reminders: store.delete_expiry_reminders_before(now - 86400).await?,
        })
    }
}
