//! The enrolment service: what a user has enrolled, and the changes to it that the user makes
//! (removing a service here; adding and replacing finish in the identity flows, which prove the
//! new service). Every change is authorised by the session's [`StepUp`], audited, and told.

use std::sync::Arc;

use super::kinship::{Kinship, Marks, PersonalNumbers, kinship};
use super::{Change, ChangeRefusal, CoolingOff, ServiceKind, StepUp, password_set_at};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Timestamp};
use crate::directory::{Directory, DirectoryError, Privileged};
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

/// A service desk's lift of the chosen services' cooling-off, with all it needs to run as a task
/// of its own.
struct Lifting {
    store: Arc<dyn Storage>,
    auditor: Auditor,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    actor: String,
    user_id: String,
    account_name: String,
    chosen: Vec<ServiceKind>,
    /// The service that proved the caller, and when.
    proof: (ServiceKind, Timestamp),
    /// What may be lifted (see [`CoolingOff::liftable`]).
    window: (Timestamp, Timestamp),
    now: Timestamp,
}

impl Lifting {
    /// Lifts, audits, then tells the user of each service lifted.
    async fn run(self, meta: &RequestMeta) -> Result<Lift, StorageError> {
        let (proven_with, proved_at) = self.proof;
        let (mut lifted, mut failed) = (Vec::new(), None);
        for kind in &self.chosen {
            match self.store.lift_cooldown(&self.user_id, kind.id(), proved_at, self.window, self.now).await {
                Ok(0) => {}
                Ok(_) => lifted.push(*kind),
                // What was lifted before is still audited and told, then the error shown.
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if lifted.is_empty()
            && let Some(e) = failed
        {
            return Err(e);
        }
        let n = lifted.len() as u64;
        let ids = if lifted.is_empty() {
            "-".to_string()
        } else {
            lifted.iter().map(|k| k.id()).collect::<Vec<_>>().join(",")
        };
        let detail =
            Detail::new("lifted").arg("n", n).service(proven_with.id()).arg("lifted", ids).arg("actor", &self.actor);
        let (lift, outcome) =
            if n == 0 { (Lift::NothingLifted, Outcome::Failure) } else { (Lift::Lifted(n), Outcome::Success) };
        let mut event = AuditEvent::new(EventKind::Enrol, outcome).user_id(&self.user_id).detail(detail);
        if !self.account_name.is_empty() {
            event = event.username(&self.account_name);
        }
        if lifted.is_empty() {
            self.auditor.record(meta, event).await?;
            return Ok(lift);
        }
        self.auditor.record_made(meta, event).await;
        if let Some(n) = &self.notifier {
            for kind in lifted {
                n.lifted(&self.user_id, kind, meta).await;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(lift),
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

/// What became of a service desk's request to lift a user's cooling-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lift {
    /// Lifted for this many services.
    Lifted(u64),
    /// Agents never lift their own (nor that of another account with their BankID, number, or
    /// personal number in AD).
    OwnAccount,
    /// Nothing of the same kind to compare the agent's account with this one: it may be theirs.
    CannotTell,
    /// AD did not answer whether the account is the agent's.
    DirectoryDown,
    /// A privileged account (or one AD could not say is not): only an administrator lifts its.
    Privileged,
    /// No caller verification of this user within the step-up window.
    NotVerified,
    /// The caller was verified with a service that is cooling off itself.
    ProofCooling,
    /// No service was chosen to lift.
    NothingChosen,
    /// None of those chosen was cooling off and there when the caller proved themselves (one
    /// enrolled or replaced since keeps cooling).
    NothingLifted,
}

/// What a caller's proof with a service is worth to the service desk, judged as of the moment it
/// was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofStanding {
    /// The service was enrolled, out of its cooling-off (or lifted), when it proved the caller.
    Trusted,
    /// The service was still cooling off then: it may be whoever had the password for a moment.
    Cooling,
    /// The service that proved it is no longer there as it was (removed, or replaced since).
    Gone,
}

pub struct EnrolmentService {
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    auditor: Auditor,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    /// The personal numbers AD holds, when one is configured (see [`super::kinship`]).
    personal_numbers: Option<Arc<dyn PersonalNumbers>>,
    /// Which accounts are privileged (none without).
    privileged: Option<Privileged>,
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
        Self {
            store,
            directory,
            clock,
            auditor,
            notifier: None,
            personal_numbers: None,
            privileged: None,
            window,
            cooling: CoolingOff { seconds: cooldown },
        }
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

    /// The service desk does not lift a privileged account's cooling-off; an administrator does.
    pub fn with_privileged(mut self, privileged: Privileged) -> Self {
        self.privileged = Some(privileged);
        self
    }

    /// Accounts are also compared by the personal number AD holds for them.
    pub fn with_personal_numbers(mut self, numbers: Arc<dyn PersonalNumbers>) -> Self {
        self.personal_numbers = Some(numbers);
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

    /// What an account is known by (see [`super::kinship`]): its enrolled BankID and mobile
    /// number, and the personal number AD holds for it. None when AD did not answer.
    async fn marks(&self, user_id: &str) -> Result<Option<Marks>, StorageError> {
        let mut marks = Marks::default();
        if let Some(bankid) = self.store.bankid_enrolment(user_id).await? {
            marks.personal_numbers.push(bankid.pn_hash);
        }
        marks.number = self.store.sms_enrolment(user_id).await?.map(|s| s.number_hash);
        if let Some(numbers) = &self.personal_numbers {
            match numbers.hash_of(user_id).await {
                Ok(hash) => marks.personal_numbers.extend(hash),
                Err(e) => {
                    tracing::warn!(error = %e, "the personal number in AD not read (the service desk's own-account check)");
                    return Ok(None);
                }
            }
        }
        Ok(Some(marks))
    }

    /// Whether the agent `actor` and the account `user_id` are one person (an everyday and a
    /// staff account, say), or cannot be told apart. None when AD did not answer.
    async fn kinship(&self, actor: &str, user_id: &str) -> Result<Option<Kinship>, StorageError> {
        if actor == user_id {
            return Ok(Some(Kinship::Same));
        }
        let Some(agent) = self.marks(actor).await? else { return Ok(None) };
        Ok(self.marks(user_id).await?.map(|target| kinship(&agent, &target)))
    }

    /// How a proof made with the user's `kind` at `proved_at` stands (see [`ProofStanding`]), as
    /// things were then: a lift after it does not count, nor a password set after it.
    /// `password_set`: the account's `pwdLastSet` (a service cooling off again since a change
    /// proves no more than a new one).
    pub async fn proof_standing(
        &self,
        owner: Owner<'_>,
        kind: ServiceKind,
        proved_at: Timestamp,
    ) -> Result<ProofStanding, StorageError> {
        let records = self.store.enrolments(owner.user_id).await?;
        let Some(r) = records.iter().find(|r| r.service == kind.id() && r.enrolled_at <= proved_at) else {
            return Ok(ProofStanding::Gone);
        };
        let then =
            EnrolmentRecord { cooldown_lifted_at: r.cooldown_lifted_at.filter(|l| *l <= proved_at), ..r.clone() };
        let set = password_set_at(owner.password_set).filter(|set| *set <= proved_at);
        let cooling = self.cooling.until(&then, set, proved_at).is_some();
        Ok(if cooling { ProofStanding::Cooling } else { ProofStanding::Trusted })
    }

    /// Whether a proof made at `at` is still fresh enough to act on (the step-up window).
    pub fn fresh(&self, at: Timestamp) -> bool {
        self.clock.now() - at <= self.window
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

    /// The service desk lifts the cooling-off of `user_id`'s enrolments after verifying the caller
    /// with `proven_with`. Refused (None) when that service is itself cooling off: a caller who
    /// proves themselves with the very phone that was just enrolled proves nothing. `admin`: the
    /// agent is an administrator, who may lift a privileged account's. Audited.
    pub async fn lift_cooldown(
        &self,
        actor: Owner<'_>,
        admin: bool,
        target: Owner<'_>,
        proof: Option<(ServiceKind, Timestamp)>,
        chosen: &[ServiceKind],
        meta: &RequestMeta,
    ) -> Result<Lift, StorageError> {
        let user_id = target.user_id;
        let now = self.clock.now();
        let fresh = proof.filter(|(_, at)| self.fresh(*at));
        // Never an account that is, or may be, the agent's own, whatever the proof.
        let kin = self.kinship(actor.user_id, user_id).await?;
        // A privileged account is an administrator's to lift (AD's tiers: the service desk does
        // not manage the accounts that manage the domain). Taken as privileged when AD cannot tell.
        let privileged = match (&self.privileged, admin) {
            (Some(p), false) if kin == Some(Kinship::Other) => p.standing(user_id, now).await.privileged,
            _ => false,
        };
        let (lift, what) = match (kin, fresh) {
            (Some(Kinship::Same), _) => (Lift::OwnAccount, Detail::new("lift_own")),
            (Some(Kinship::CannotTell), _) => (Lift::CannotTell, Detail::new("lift_cannot_tell")),
            (None, _) => (Lift::DirectoryDown, Detail::new("lift_directory_down")),
            (Some(Kinship::Other), _) if privileged => (Lift::Privileged, Detail::new("lift_privileged")),
            (Some(Kinship::Other), None) => (Lift::NotVerified, Detail::new("lift_unverified")),
            (Some(Kinship::Other), Some((proven_with, proved_at))) => match self
                .proof_standing(target, proven_with, proved_at)
                .await?
            {
                ProofStanding::Cooling => {
                    (Lift::ProofCooling, Detail::new("lift_proof_cooling").service(proven_with.id()))
                }
                // Removed or replaced since it proved the caller: it proves nothing now.
                ProofStanding::Gone => (Lift::NotVerified, Detail::new("lift_unverified")),
                ProofStanding::Trusted if chosen.is_empty() => (Lift::NothingChosen, Detail::new("lift_none_chosen")),
                ProofStanding::Trusted => {
                    // Only what the caller confirmed, only while it cools off (or since the
                    // password was set, when that started it again), and only what was there when
                    // they proved themselves.
                    let window = self.cooling.liftable(password_set_at(target.password_set), now);
                    let lifting = Lifting {
                        store: self.store.clone(),
                        auditor: self.auditor.clone(),
                        notifier: self.notifier.clone(),
                        actor: actor.account_name.to_string(),
                        user_id: user_id.to_string(),
                        account_name: target.account_name.to_string(),
                        chosen: chosen.to_vec(),
                        proof: (proven_with, proved_at),
                        window,
                        now,
                    };
                    // The lifts, their entry and the notices as one task: a request that goes away
                    // meanwhile cannot part them.
                    let owned = meta.clone();
                    return tokio::spawn(async move { lifting.run(&owned).await })
                        .await
                        .map_err(|e| StorageError::Interrupted(e.to_string()))?;
                }
            },
        };
        // Refused (what was lifted, or not, is audited by the lifting itself).
        let mut event = AuditEvent::new(EventKind::Enrol, Outcome::Blocked)
            .user_id(user_id)
            .detail(what.arg("actor", actor.account_name));
        if !target.account_name.is_empty() {
            event = event.username(target.account_name);
        }
        self.auditor.record(meta, event).await?;
        Ok(lift)
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
