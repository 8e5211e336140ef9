//! The enrolment service: what a user has enrolled, and the changes to it that the user makes
//! (removing a service here; adding and replacing finish in the identity flows, which prove the
//! new service). Every change is authorised by the session's [`StepUp`], audited, and told.

use std::sync::Arc;

use super::{Change, ChangeRefusal, CoolingOff, ServiceKind, StepUp, password_set_at};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Timestamp};
use crate::directory::{Directory, DirectoryError};
use crate::storage::{EnrolmentRecord, Storage, StorageError};

/// Told of every change to a user's enrolled services.
#[async_trait::async_trait]
pub trait ChangeNotifier: Send + Sync + 'static {
    /// `change` was made for `user_id`. `removed_number` is the mobile number (encrypted, as
    /// stored) that a replacement or removal of the mobile code took away; it is told too.
    async fn changed(&self, user_id: &str, change: Change, removed_number: Option<String>, meta: &RequestMeta);

    /// The service desk lifted the cooling-off of the user's `kind`: it counts toward a reset at
    /// once. Told like a change (a desk talked round by someone with the user's password and a
    /// swapped SIM took away the day the owner had to notice).
    async fn lifted(&self, user_id: &str, kind: ServiceKind, meta: &RequestMeta);
}

/// Telling of `change` as a future that owns what it needs, to run on a task of its own (see
/// [`Auditor::made_then`]).
pub fn telling(
    notifier: &Option<Arc<dyn ChangeNotifier>>,
    user_id: &str,
    change: Change,
    removed_number: Option<String>,
    meta: &RequestMeta,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (notifier, user_id, meta) = (notifier.clone(), user_id.to_string(), meta.clone());
    async move {
        if let Some(n) = notifier {
            n.changed(&user_id, change, removed_number, &meta).await;
        }
    }
}

/// An enrolled service as the enrolment page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub kind: ServiceKind,
    pub enrolled_at: Timestamp,
    /// The masked personal number and name, or the masked mobile number.
    pub detail: Option<String>,
    /// Until when it does not count toward a reset (cooling-off), if it does not yet.
    pub cooling_until: Option<Timestamp>,
    /// It was still cooling off when the password was changed, and cools off again from then:
    /// perhaps someone who knew the old password added it.
    pub restarted: bool,
}

/// Who is changing their enrolment.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub user_id: &'a str,
    pub account_name: &'a str,
    /// The account's `pwdLastSet` as the session read it (None for someone the desk acts on).
    pub password_set: Option<&'a str>,
}

pub struct EnrolmentService {
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    auditor: Auditor,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    /// How long a step-up proof stays fresh, in seconds.
    window: i64,
    /// How long a new or replaced service does not count toward a reset.
    cooling: CoolingOff,
}

impl EnrolmentService {
    pub fn new(
        store: Arc<dyn Storage>,
        directory: Arc<dyn Directory>,
        clock: Arc<dyn Clock>,
        auditor: Auditor,
        window: i64,
        cooldown: i64,
    ) -> Self {
        Self { store, directory, clock, auditor, notifier: None, window, cooling: CoolingOff { seconds: cooldown } }
    }

    /// What AD holds for the user in `attribute` (the personal number a BankID must match, the
    /// mobile number to enrol), read fresh with the service account.
    pub async fn ad_value(&self, user_dn: &str, attribute: &str) -> Result<Option<String>, DirectoryError> {
        self.directory.attribute(user_dn, attribute).await
    }

    pub fn with_notifier(mut self, notifier: Arc<dyn ChangeNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Until when an enrolment does not count toward a reset; None when it counts now.
    /// `password_set`: the account's `pwdLastSet`, when known (see [`CoolingOff`]).
    pub fn cooling_until(
        &self,
        record: &EnrolmentRecord,
        password_set: Option<&str>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        self.cooling.until(record, password_set_at(password_set), now)
    }

    /// Whether the user's `kind` is enrolled but still cooling off, as of the account's password
    /// now (read from the directory: a service that cools off again since a password change does
    /// not log anyone in either; when the directory cannot tell, it is taken as cooling off).
    pub async fn is_cooling(&self, user_id: &str, kind: ServiceKind) -> Result<bool, StorageError> {
        let now = self.clock.now();
        let records = self.store.enrolments(user_id).await?;
        let Some(record) = records.iter().find(|r| r.service == kind.id()) else { return Ok(false) };
        if self.cooling_until(record, None, now).is_some() {
            return Ok(true);
        }
        // Started again by a change at the latest when its own time ran out: over by twice that.
        if now - record.enrolled_at >= 2 * self.cooling.seconds {
            return Ok(false);
        }
        let password_set = match self.directory.find_user_by_id(user_id).await {
            Ok(user) => user.and_then(|u| u.password_set),
            Err(e) => {
                tracing::warn!(error = %e, "whether a service cools off again: pwdLastSet not read");
                return Ok(true);
            }
        };
        Ok(self.cooling_until(record, password_set.as_deref(), now).is_some())
    }

    /// The user's enrolled services, with what the page may show of each. `password_set`: the
    /// account's `pwdLastSet`, when known (see [`CoolingOff`]).
    pub async fn enrolled(&self, user_id: &str, password_set: Option<&str>) -> Result<Vec<Enrolled>, StorageError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for record in self.store.enrolments(user_id).await? {
            let Ok(kind) = record.service.parse::<ServiceKind>() else { continue };
            let detail = match kind {
                ServiceKind::BankId => {
                    self.store.bankid_enrolment(user_id).await?.map(|b| format!("{} ({})", b.name, b.pn_masked))
                }
                ServiceKind::Sms => self.store.sms_enrolment(user_id).await?.map(|s| s.number_masked),
            };
            out.push(Enrolled {
                kind,
                enrolled_at: record.enrolled_at,
                detail,
                cooling_until: self.cooling_until(&record, password_set, now),
                restarted: self.cooling.restarted(&record, password_set_at(password_set)),
            });
        }
        Ok(out)
    }

    /// Whether the session may make `change` now.
    pub async fn authorise(
        &self,
        step_up: &StepUp,
        owner: Owner<'_>,
        change: Change,
    ) -> Result<Result<(), ChangeRefusal>, StorageError> {
        let (records, now) = (self.store.enrolments(owner.user_id).await?, self.clock.now());
        let password_set = owner.password_set;
        let kind = |r: &EnrolmentRecord| r.service.parse::<ServiceKind>().ok();
        let enrolled: Vec<ServiceKind> = records.iter().filter_map(kind).collect();
        let cooling: Vec<ServiceKind> =
            records.iter().filter(|r| self.cooling_until(r, password_set, now).is_some()).filter_map(kind).collect();
        Ok(step_up.authorise(change, &enrolled, &cooling, now, self.window))
    }

    /// Authorises and audits a refused change (the audit trail shows who tried).
    pub async fn authorise_audited(
        &self,
        step_up: &StepUp,
        owner: Owner<'_>,
        change: Change,
        meta: &RequestMeta,
    ) -> Result<Result<(), ChangeRefusal>, StorageError> {
        let decision = self.authorise(step_up, owner, change).await?;
        if let Err(refusal) = &decision {
            let why = match refusal {
                ChangeRefusal::VerifyFirst(_) => "verify_first",
                ChangeRefusal::ProofCooling(_) => "proof_cooling",
                ChangeRefusal::PasswordFirst => "password_first",
                ChangeRefusal::AlreadyEnrolled => "already_enrolled",
                ChangeRefusal::NotEnrolled => "not_enrolled",
            };
            let event = AuditEvent::new(EventKind::Enrol, Outcome::Blocked)
                .username(owner.account_name)
                .user_id(owner.user_id)
                .detail(
                    Detail::new("change_refused")
                        .service(change.kind().id())
                        .arg("change_key", format!("audit.change.{}", change.id()))
                        .arg("why_key", format!("audit.refusal.{why}")),
                );
            self.auditor.record(meta, event).await?;
        }
        Ok(decision)
    }

    /// Removes an enrolled service, with proof; audited and told. Every other session of the user
    /// (all but `keep_session`, the id hash of the one that asked) ends with it, in one
    /// transaction: what proves the user changed.
    pub async fn remove(
        &self,
        step_up: &StepUp,
        owner: Owner<'_>,
        kind: ServiceKind,
        keep_session: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Result<(), ChangeRefusal>, StorageError> {
        let change = Change::Remove(kind);
        if let Err(refusal) = self.authorise_audited(step_up, owner, change, meta).await? {
            return Ok(Err(refusal));
        }
        let removed_number = match kind {
            ServiceKind::Sms => self.store.sms_enrolment(owner.user_id).await?.map(|s| s.number_encrypted),
            ServiceKind::BankId => None,
        };
        let (removed, ended) = self.store.revoke_enrolment(owner.user_id, Some(kind.id()), keep_session).await?;
        if removed == 0 {
            return Ok(Err(ChangeRefusal::NotEnrolled));
        }
        let event = AuditEvent::new(EventKind::Enrol, Outcome::Success)
            .username(owner.account_name)
            .user_id(owner.user_id)
            .detail(Detail::new("service_removed").service(kind.id()).arg("ended", ended));
        let tell = telling(&self.notifier, owner.user_id, change, removed_number, meta);
        self.auditor.made_then(meta, event, tell).await;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests;
