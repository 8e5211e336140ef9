//! How far a reset has come: the stars that count (not the services still cooling off), what a
//! privileged account needs, and what to offer next. Pure logic, given what the flow proved.

use crate::config::ProtectedMode;
use crate::enrolment::{EnrolmentStatus, Service, ServiceKind, StarRule, assess};

/// What the rules say about a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub collected: u8,
    pub needed: u8,
    /// The stars are enough and the account may be reset here.
    pub enough: bool,
    pub next: Vec<ServiceKind>,
    /// After a first proof: what is enrolled (and counts) can never reach the stars.
    pub not_enough_enrolled: bool,
    /// After a first proof: enrolled services still cooling off.
    pub cooling: Vec<ServiceKind>,
    /// After a first proof: a privileged account, sent to the service desk.
    pub refused_privileged: bool,
}

/// The rules the reset flow applies.
#[derive(Debug, Clone)]
pub struct Stars<'a> {
    pub services: &'a [Service],
    pub reset_stars: u8,
    pub protected: ProtectedMode,
    pub protected_stars: u8,
}

impl Stars<'_> {
    /// `known`: the typed name matched a user; `enrolled` what they have, `cooling` which of it
    /// does not count yet; `privileged` (asked only after a first proof).
    pub fn progress(
        &self,
        known: bool,
        verified: &[ServiceKind],
        enrolled: &[ServiceKind],
        cooling: &[ServiceKind],
        privileged: bool,
    ) -> Progress {
        // A proof counts for a service enrolled now and out of its cooling-off: one removed since
        // (its owner noticed a stolen phone) no longer does.
        let counting: Vec<ServiceKind> =
            verified.iter().copied().filter(|k| enrolled.contains(k) && !cooling.contains(k)).collect();
        let needed = match (privileged, self.protected) {
            (true, ProtectedMode::Stars) => self.protected_stars.max(self.reset_stars),
            _ => self.reset_stars,
        };
        let refused_privileged = privileged && self.protected == ProtectedMode::ServiceDesk;
        let rule = StarRule { enrolment_stars: needed, reset_stars: needed };
        let progress = assess(self.services, &counting, rule);
        let enough = known && progress.status == EnrolmentStatus::Enrolled && !refused_privileged;
        // Before a first proof every offered service is listed, so the page reveals nothing.
        if verified.is_empty() {
            let next = self.services.iter().map(|s| s.kind).collect();
            return Progress {
                collected: progress.filled(),
                needed,
                enough,
                next,
                not_enough_enrolled: false,
                cooling: Vec::new(),
                refused_privileged,
            };
        }
        let usable: Vec<ServiceKind> = enrolled.iter().copied().filter(|k| !cooling.contains(k)).collect();
        let possible = assess(self.services, &usable, rule).status == EnrolmentStatus::Enrolled;
        let next =
            self.services.iter().map(|s| s.kind).filter(|k| enrolled.contains(k) && !verified.contains(k)).collect();
        Progress {
            collected: progress.filled(),
            needed,
            enough,
            next,
            not_enough_enrolled: !possible,
            cooling: cooling.to_vec(),
            refused_privileged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceKind::{BankId, Sms};

    const SERVICES: [Service; 2] =
        [Service { kind: BankId, stars: 3, required: false }, Service { kind: Sms, stars: 2, required: false }];

    fn stars(protected: ProtectedMode) -> Stars<'static> {
        Stars { services: &SERVICES, reset_stars: 3, protected, protected_stars: 5 }
    }

    #[test]
    fn a_cooling_service_proves_but_does_not_count() {
        let p = stars(ProtectedMode::ServiceDesk).progress(true, &[BankId], &[BankId, Sms], &[BankId], false);
        assert!(!p.enough);
        assert_eq!((p.collected, p.cooling.clone()), (0, vec![BankId]));
        assert!(p.not_enough_enrolled, "SMS alone (2) cannot reach 3 while BankID cools");
        let p = stars(ProtectedMode::ServiceDesk).progress(true, &[BankId], &[BankId, Sms], &[], false);
        assert!(p.enough);
    }

    #[test]
    fn a_proof_of_a_service_removed_since_does_not_count() {
        let p = stars(ProtectedMode::ServiceDesk).progress(true, &[Sms, BankId], &[BankId], &[], false);
        assert_eq!(p.collected, 3);
        let p = stars(ProtectedMode::ServiceDesk).progress(true, &[BankId, Sms], &[Sms], &[], false);
        assert!(!p.enough, "BankID was removed after it proved the flow");
        assert_eq!(p.collected, 2);
    }

    #[test]
    fn nothing_differs_before_a_first_proof() {
        let s = stars(ProtectedMode::ServiceDesk);
        let unknown = s.progress(false, &[], &[], &[], false);
        let cooling_admin = s.progress(true, &[], &[BankId], &[BankId], false);
        assert_eq!(unknown, cooling_admin);
        assert_eq!(unknown.next, vec![BankId, Sms]);
    }

    #[test]
    fn a_privileged_account_is_refused_or_needs_more_stars() {
        let p = stars(ProtectedMode::ServiceDesk).progress(true, &[BankId, Sms], &[BankId, Sms], &[], true);
        assert!(!p.enough && p.refused_privileged);
        let p = stars(ProtectedMode::Stars).progress(true, &[BankId], &[BankId, Sms], &[], true);
        assert!(!p.enough && !p.refused_privileged);
        assert_eq!(p.needed, 5);
        let p = stars(ProtectedMode::Stars).progress(true, &[BankId, Sms], &[BankId, Sms], &[], true);
        assert!(p.enough);
    }
}
