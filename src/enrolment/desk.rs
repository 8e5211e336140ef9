//! The service desk's side of enrolment: what a caller's proof with a service is worth, judged
//! as of when it was made, and lifting the cooling-off (see [`super::CoolingOff`]) of the services
//! a verified caller confirms as theirs: never for an account of the agent's own (see
//! [`super::kinship`]), and, for the desk, never for a privileged account (an administrator's to
//! lift).

use std::sync::Arc;

use super::kinship::{Kinship, Marks, PersonalNumbers, kinship};
use super::{ChangeNotifier, CoolingOff, Owner, ServiceKind, password_set_at};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Timestamp};
use crate::directory::Privileged;
use crate::storage::{EnrolmentRecord, Storage, StorageError};

/// A service desk's lift of the chosen services' cooling-off, with all it needs to run as a task
/// of its own.
struct Lifting {
    store: Arc<dyn Storage>,
    auditor: Auditor,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    actor: String,
    user_id: String,
    account_name: String,
    /// Each service chosen, with what of it may be lifted (see [`CoolingOff::liftable`]).
    chosen: Vec<(ServiceKind, (Timestamp, Timestamp))>,
    /// The service that proved the caller, and when.
    proof: (ServiceKind, Timestamp),
    now: Timestamp,
}

impl Lifting {
    /// Lifts, audits, then tells the user of each service lifted.
    async fn run(self, meta: &RequestMeta) -> Result<Lift, StorageError> {
        let (proven_with, proved_at) = self.proof;
        let (mut lifted, mut failed) = (Vec::new(), None);
        for (kind, window) in &self.chosen {
            match self.store.lift_cooldown(&self.user_id, kind.id(), proved_at, *window, self.now).await {
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

pub struct Desk {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    auditor: Auditor,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    /// The personal numbers AD holds, when one is configured (see [`super::kinship`]).
    personal_numbers: Option<Arc<dyn PersonalNumbers>>,
    /// Which accounts are privileged (none without).
    privileged: Option<Privileged>,
    /// Different mobile numbers are taken for two people: only where BankID is not offered (see
    /// [`super::kinship`]).
    numbers_tell: bool,
    /// How long a caller's proof stays fresh enough to act on, in seconds (the step-up window).
    window: i64,
    cooling: CoolingOff,
}

impl Desk {
    /// `window`: the step-up window; `cooldown`: the cooling-off, in seconds.
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>, auditor: Auditor, window: i64, cooldown: i64) -> Self {
        Self {
            store,
            clock,
            auditor,
            notifier: None,
            personal_numbers: None,
            privileged: None,
            numbers_tell: false,
            window,
            cooling: CoolingOff { seconds: cooldown },
        }
    }

    /// BankID is not offered: accounts can only be compared by their mobile numbers, and
    /// different ones are taken for two people (an agent with two phones is not caught).
    pub fn without_bankid(mut self) -> Self {
        self.numbers_tell = true;
        self
    }

    /// Told of every lift.
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
        Ok(self.marks(user_id).await?.map(|target| kinship(&agent, &target, self.numbers_tell)))
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
        let then = EnrolmentRecord {
            cooldown_lifted_at: r.cooldown_lifted_at.filter(|l| *l <= proved_at),
            restarted_at: r.restarted_at.filter(|s| *s <= proved_at),
            ..r.clone()
        };
        let set = password_set_at(owner.password_set).filter(|set| *set <= proved_at);
        let cooling = self.cooling.until(&then, set, proved_at).is_some();
        Ok(if cooling { ProofStanding::Cooling } else { ProofStanding::Trusted })
    }

    /// Whether a proof made at `at` is still fresh enough to act on (the step-up window).
    pub fn fresh(&self, at: Timestamp) -> bool {
        self.clock.now() - at <= self.window
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
        let (lift, what) = match self.judge(actor.user_id, admin, target, proof, chosen).await? {
            Err(refused) => refused,
            Ok(proof) => {
                // Only what the caller confirmed, only while it cools off (or since the password
                // was set, when that started it again: as AD tells it now, or as the portal kept
                // it), and only what was there when they proved themselves.
                let ad_set = password_set_at(target.password_set);
                let records = self.store.enrolments(user_id).await?;
                let chosen = chosen
                    .iter()
                    .map(|kind| {
                        let record = records.iter().find(|r| r.service == kind.id());
                        let set = record.and_then(|r| self.cooling.restart(r, ad_set)).or(ad_set);
                        (*kind, self.cooling.liftable(set, now))
                    })
                    .collect();
                let lifting = Lifting {
                    store: self.store.clone(),
                    auditor: self.auditor.clone(),
                    notifier: self.notifier.clone(),
                    actor: actor.account_name.to_string(),
                    user_id: user_id.to_string(),
                    account_name: target.account_name.to_string(),
                    chosen,
                    proof,
                    now,
                };
                // The lifts, their entry and the notices as one task: a request that goes away
                // meanwhile cannot part them.
                let owned = meta.clone();
                return tokio::spawn(async move { lifting.run(&owned).await })
                    .await
                    .map_err(|e| StorageError::Interrupted(e.to_string()))?;
            }
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

    /// Whether an agent (an administrator when `admin`) may lift the account's cooling-off as
    /// far as its privilege goes: the service desk does not lift a privileged account's. None
    /// when AD cannot tell. What [`Self::lift_cooldown`] checks besides is not asked here.
    pub async fn may_lift(&self, admin: bool, user_id: &str) -> Option<bool> {
        match (&self.privileged, admin) {
            (Some(privileged), false) => match privileged.of(user_id).await {
                Ok(privileged) => Some(privileged == Some(false)),
                Err(e) => {
                    tracing::warn!(error = %e, "whether the desk may lift: AD not read");
                    None
                }
            },
            _ => Some(true),
        }
    }

    /// The caller's proof a lift may go on with, or why it is refused, in this order: no fresh verification of the caller (so
    /// that nothing below is told of an account the agent has not verified), an account that
    /// is or may be the agent's own, a privileged account for the service desk (AD's tiers: the
    /// desk does not manage the accounts that manage the domain; AD not answering refuses too),
    /// a proof with a service that was cooling off itself or is gone, nothing chosen.
    async fn judge(
        &self,
        actor: &str,
        admin: bool,
        target: Owner<'_>,
        proof: Option<(ServiceKind, Timestamp)>,
        chosen: &[ServiceKind],
    ) -> Result<Result<(ServiceKind, Timestamp), (Lift, Detail)>, StorageError> {
        let refused = |lift, key| Ok(Err((lift, Detail::new(key))));
        let Some((proven_with, proved_at)) = proof.filter(|(_, at)| self.fresh(*at)) else {
            return refused(Lift::NotVerified, "lift_unverified");
        };
        match self.kinship(actor, target.user_id).await? {
            None => return refused(Lift::DirectoryDown, "lift_directory_down"),
            Some(Kinship::Same) => return refused(Lift::OwnAccount, "lift_own"),
            Some(Kinship::CannotTell) => return refused(Lift::CannotTell, "lift_cannot_tell"),
            Some(Kinship::Other) => {}
        }
        if let (Some(privileged), false) = (&self.privileged, admin) {
            match privileged.of(target.user_id).await {
                Ok(Some(false)) => {}
                Ok(Some(true)) => return refused(Lift::Privileged, "lift_privileged"),
                Ok(None) => return refused(Lift::NotVerified, "lift_no_account"),
                Err(e) => {
                    tracing::warn!(error = %e, "a lift: whether the account is privileged not read");
                    return refused(Lift::DirectoryDown, "lift_directory_down");
                }
            }
        }
        Ok(match self.proof_standing(target, proven_with, proved_at).await? {
            ProofStanding::Cooling => {
                Err((Lift::ProofCooling, Detail::new("lift_proof_cooling").service(proven_with.id())))
            }
            // Removed or replaced since it proved the caller: it proves nothing now.
            ProofStanding::Gone => Err((Lift::NotVerified, Detail::new("lift_unverified"))),
            ProofStanding::Trusted if chosen.is_empty() => Err((Lift::NothingChosen, Detail::new("lift_none_chosen"))),
            ProofStanding::Trusted => Ok((proven_with, proved_at)),
        })
    }
}

#[cfg(test)]
mod tests;
