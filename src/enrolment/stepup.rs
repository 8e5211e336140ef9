//! Changing what proves who a user is: adding, replacing or removing an identity service.
//!
//! A password alone must never become a lasting takeover, so each change asks for proof with what
//! is already there. The proof lives in the server-side session as a [`StepUp`]:
//!
//! ```text
//! Password { at } ──verified with an enrolled service──▶ Verified { service, at }
//!        ▲                                                   │
//!        └──────────── password given again ─────────────────┘ (the service proof is kept)
//! ```
//!
//! [`StepUp::authorise`] decides a [`Change`] at `now`:
//! - the first service of a user who has none needs the AD password, given within the window;
//! - any further addition, and every replacement or removal, needs a verification with a service
//!   the user has enrolled, in this session, within the window, and the password given in this
//!   session at some time (a session begun with BankID alone, perhaps relayed, changes nothing
//!   until it is given);
//! - a verification with a service still in its cooling-off (perhaps one a password thief added)
//!   does not replace or remove one that is not;
//! - adding a service the user already has is refused (the replace path is separate), and so is
//!   replacing or removing one they do not have.

use super::ServiceKind;
use crate::clock::Timestamp;

/// A change to the user's enrolled services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add(ServiceKind),
    Replace(ServiceKind),
    Remove(ServiceKind),
}

impl Change {
    pub fn kind(self) -> ServiceKind {
        match self {
            Change::Add(k) | Change::Replace(k) | Change::Remove(k) => k,
        }
    }

    /// The stable identifier used in the audit log and the notices.
    pub fn id(self) -> &'static str {
        match self {
            Change::Add(_) => "add",
            Change::Replace(_) => "replace",
            Change::Remove(_) => "remove",
        }
    }
}

/// What the session has proved, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUp {
    /// When the AD password was last given in this session ([`NEVER`]: a BankID login).
    pub password_at: Timestamp,
    /// The enrolled service last verified with in this session, and when.
    pub verified: Option<(ServiceKind, Timestamp)>,
}

/// The password was not given in this session.
pub const NEVER: Timestamp = 0;

/// Why a change cannot go ahead now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Verify with one of these (enrolled) services first.
    VerifyFirst(Vec<ServiceKind>),
    /// The proof was with a service still in its cooling-off, and the change would replace or
    /// remove one that is not: verify with one of these (out of it) instead.
    ProofCooling(Vec<ServiceKind>),
    /// Give the AD password again first (the login is too old).
    PasswordFirst,
    /// The service is enrolled already: replace it instead.
    AlreadyEnrolled,
    /// The service is not enrolled: nothing to replace or remove.
    NotEnrolled,
}

impl StepUp {
    /// The session proved a service now.
    pub fn verify(self, service: ServiceKind, now: Timestamp) -> StepUp {
        StepUp { verified: Some((service, now)), ..self }
    }

    /// The session gave the password again now.
    pub fn password(self, now: Timestamp) -> StepUp {
        StepUp { password_at: now, ..self }
    }

    /// Whether `change` may be made now, for a user with `enrolled` services (`cooling`: those
    /// still in their cooling-off); `window` is how long (seconds) a proof stays fresh.
    pub fn authorise(
        &self,
        change: Change,
        enrolled: &[ServiceKind],
        cooling: &[ServiceKind],
        now: Timestamp,
        window: i64,
    ) -> Result<(), Refusal> {
        let fresh = |at: Timestamp| at <= now && now - at <= window;
        let has = enrolled.contains(&change.kind());
        match change {
            Change::Add(_) if has => return Err(Refusal::AlreadyEnrolled),
            Change::Replace(_) | Change::Remove(_) if !has => return Err(Refusal::NotEnrolled),
            _ => {}
        }
        if enrolled.is_empty() {
            return if fresh(self.password_at) { Ok(()) } else { Err(Refusal::PasswordFirst) };
        }
        if self.password_at == NEVER {
            return Err(Refusal::PasswordFirst);
        }
        match self.verified {
            Some((service, at)) if enrolled.contains(&service) && fresh(at) => {
                let target_trusted = matches!(change, Change::Replace(k) | Change::Remove(k) if !cooling.contains(&k));
                if cooling.contains(&service) && target_trusted {
                    return Err(Refusal::ProofCooling(
                        enrolled.iter().copied().filter(|k| !cooling.contains(k)).collect(),
                    ));
                }
                Ok(())
            }
            _ => Err(Refusal::VerifyFirst(enrolled.to_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceKind::{BankId, Sms};

    const WINDOW: i64 = 600;
    const NOW: Timestamp = 1_000_000;

    fn logged_in(ago: i64) -> StepUp {
        StepUp { password_at: NOW - ago, verified: None }
    }

    #[test]
    fn the_first_service_needs_only_a_recent_password() {
        assert_eq!(logged_in(60).authorise(Change::Add(BankId), &[], &[], NOW, WINDOW), Ok(()));
        assert_eq!(
            logged_in(WINDOW + 1).authorise(Change::Add(Sms), &[], &[], NOW, WINDOW),
            Err(Refusal::PasswordFirst)
        );
        let again = logged_in(WINDOW + 1).password(NOW - 5);
        assert_eq!(again.authorise(Change::Add(Sms), &[], &[], NOW, WINDOW), Ok(()));
    }

    #[test]
    fn a_password_alone_cannot_add_a_second_service() {
        // Just logged in with the (stolen) password: the enrolled BankID must be shown first.
        let refused = logged_in(0).authorise(Change::Add(Sms), &[BankId], &[], NOW, WINDOW);
        assert_eq!(refused, Err(Refusal::VerifyFirst(vec![BankId])));
        let verified = logged_in(0).verify(BankId, NOW - 30);
        assert_eq!(verified.authorise(Change::Add(Sms), &[BankId], &[], NOW, WINDOW), Ok(()));
    }

    #[test]
    fn a_proof_goes_stale_and_must_be_with_an_enrolled_service() {
        let stale = logged_in(0).verify(BankId, NOW - WINDOW - 1);
        assert!(matches!(stale.authorise(Change::Add(Sms), &[BankId], &[], NOW, WINDOW), Err(Refusal::VerifyFirst(_))));
        // A proof with a service that has since been removed proves nothing.
        let other = logged_in(0).verify(Sms, NOW);
        assert!(matches!(other.authorise(Change::Add(Sms), &[BankId], &[], NOW, WINDOW), Err(Refusal::VerifyFirst(_))));
        assert!(matches!(
            other.authorise(Change::Replace(BankId), &[BankId], &[], NOW, WINDOW),
            Err(Refusal::VerifyFirst(_))
        ));
        // A proof from the future (a clock moved back) is not fresh.
        let future = logged_in(0).verify(BankId, NOW + 10);
        assert!(future.authorise(Change::Remove(BankId), &[BankId], &[], NOW, WINDOW).is_err());
    }

    #[test]
    fn replacing_and_removing_need_proof_even_of_the_only_service() {
        let password_only = logged_in(0);
        for change in [Change::Replace(Sms), Change::Remove(Sms)] {
            assert_eq!(password_only.authorise(change, &[Sms], &[], NOW, WINDOW), Err(Refusal::VerifyFirst(vec![Sms])));
            assert_eq!(password_only.verify(Sms, NOW).authorise(change, &[Sms], &[], NOW, WINDOW), Ok(()));
        }
        // With the other service as proof.
        let with_bankid = logged_in(0).verify(BankId, NOW);
        assert_eq!(with_bankid.authorise(Change::Replace(Sms), &[BankId, Sms], &[], NOW, WINDOW), Ok(()));
    }

    #[test]
    fn a_session_begun_with_bankid_alone_changes_nothing_until_the_password_is_given() {
        // Logged in with a (relayed) BankID, and verified with it again: no password yet.
        let bankid_login = StepUp { password_at: NEVER, verified: Some((BankId, NOW)) };
        for change in [Change::Add(Sms), Change::Replace(BankId), Change::Remove(BankId)] {
            let enrolled = [BankId];
            assert_eq!(bankid_login.authorise(change, &enrolled, &[], NOW, WINDOW), Err(Refusal::PasswordFirst));
            let given = bankid_login.password(NOW - 5);
            assert_eq!(given.authorise(change, &enrolled, &[], NOW, WINDOW), Ok(()), "{change:?}");
        }
    }

    #[test]
    fn a_service_still_cooling_off_does_not_replace_or_remove_one_that_is_not() {
        // The thief's number, added with the stolen password while BankID was the owner's only
        // service (or swapped in): it proves, but not enough to take the owner's BankID away.
        let with_new_sms = logged_in(0).verify(Sms, NOW);
        for change in [Change::Replace(BankId), Change::Remove(BankId)] {
            let refused = with_new_sms.authorise(change, &[BankId, Sms], &[Sms], NOW, WINDOW);
            assert_eq!(refused, Err(Refusal::ProofCooling(vec![BankId])));
        }
        // What is itself still cooling off it may change, and it may add.
        assert_eq!(with_new_sms.authorise(Change::Remove(Sms), &[BankId, Sms], &[Sms], NOW, WINDOW), Ok(()));
        assert_eq!(with_new_sms.authorise(Change::Add(BankId), &[Sms], &[Sms], NOW, WINDOW), Ok(()));
        // Out of its cooling-off it is as good as any.
        assert_eq!(with_new_sms.authorise(Change::Remove(BankId), &[BankId, Sms], &[], NOW, WINDOW), Ok(()));
    }

    #[test]
    fn adding_what_is_there_or_changing_what_is_not_is_refused() {
        let proved = logged_in(0).verify(BankId, NOW);
        assert_eq!(proved.authorise(Change::Add(BankId), &[BankId], &[], NOW, WINDOW), Err(Refusal::AlreadyEnrolled));
        assert_eq!(proved.authorise(Change::Replace(Sms), &[BankId], &[], NOW, WINDOW), Err(Refusal::NotEnrolled));
        assert_eq!(proved.authorise(Change::Remove(Sms), &[BankId], &[], NOW, WINDOW), Err(Refusal::NotEnrolled));
    }
}
