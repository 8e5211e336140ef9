//! Star scoring and the rules an administrator's star settings must follow.

use std::fmt;

use super::{Service, ServiceKind};

/// The two totals an administrator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StarRule {
    /// Stars needed to complete enrolment: the length of the star row.
    pub enrolment_stars: u8,
    /// Stars needed to reset a password.
    pub reset_stars: u8,
}

/// How far a user has come with enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentStatus {
    NotEnrolled,
    PartlyEnrolled,
    Enrolled,
}

impl EnrolmentStatus {
    pub fn id(self) -> &'static str {
        match self {
            EnrolmentStatus::NotEnrolled => "not-enrolled",
            EnrolmentStatus::PartlyEnrolled => "partly-enrolled",
            EnrolmentStatus::Enrolled => "enrolled",
        }
    }
}

/// A user's enrolment measured against the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Stars from the enrolled services that are still on offer.
    pub collected: u8,
    /// The length of the star row.
    pub needed: u8,
    /// Required services the user has not enrolled.
    pub missing_required: Vec<ServiceKind>,
    pub status: EnrolmentStatus,
}

impl Assessment {
    /// Filled stars for display: never more than the row holds.
    pub fn filled(&self) -> u8 {
        self.collected.min(self.needed)
    }
}

/// Scores the services a user has enrolled. Each service counts once; a service that is no longer
/// offered counts for nothing.
pub fn assess(offered: &[Service], enrolled: &[ServiceKind], rule: StarRule) -> Assessment {
    let is_enrolled = |k: ServiceKind| enrolled.contains(&k);
    let collected =
        offered.iter().filter(|s| is_enrolled(s.kind)).map(|s| u32::from(s.stars)).sum::<u32>().min(u32::from(u8::MAX))
            as u8;
    let missing_required: Vec<ServiceKind> =
        offered.iter().filter(|s| s.required && !is_enrolled(s.kind)).map(|s| s.kind).collect();
    let any = offered.iter().any(|s| is_enrolled(s.kind));
    let status = if collected >= rule.enrolment_stars && missing_required.is_empty() {
        EnrolmentStatus::Enrolled
    } else if any {
        EnrolmentStatus::PartlyEnrolled
    } else {
        EnrolmentStatus::NotEnrolled
    };
    Assessment { collected, needed: rule.enrolment_stars, missing_required, status }
}

/// Something wrong with the star settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleProblem {
    StarsOutOfRange { kind: ServiceKind, stars: u8 },
    EnrolmentStarsZero,
    ResetStarsZero,
    ResetAboveEnrolment { reset: u8, enrolment: u8 },
    NoServices,
    Unreachable { available: u32, enrolment: u8 },
}

impl RuleProblem {
    /// The configuration key the problem is about.
    pub fn key(&self) -> &'static str {
        match self {
            RuleProblem::StarsOutOfRange { kind: ServiceKind::BankId, .. } => "services.bankid.stars",
            RuleProblem::StarsOutOfRange { kind: ServiceKind::Sms, .. } => "services.sms.stars",
            RuleProblem::EnrolmentStarsZero | RuleProblem::Unreachable { .. } => "enrolment.enrolment_stars",
            RuleProblem::ResetStarsZero | RuleProblem::ResetAboveEnrolment { .. } => "enrolment.reset_stars",
            RuleProblem::NoServices => "services",
        }
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleProblem::StarsOutOfRange { stars, .. } => {
                write!(f, "is {stars}, but a service is worth from 1 to 5 stars")
            }
            RuleProblem::EnrolmentStarsZero => write!(f, "must be at least 1"),
            RuleProblem::ResetStarsZero => write!(f, "must be at least 1"),
            RuleProblem::ResetAboveEnrolment { reset, enrolment } => write!(
                f,
                "is {reset}, above enrolment_stars ({enrolment}): a user could enrol fully and still not be able to reset"
            ),
            RuleProblem::NoServices => {
                write!(f, "no identity service is enabled, so nobody can enrol")
            }
            RuleProblem::Unreachable { available, enrolment } => write!(
                f,
                "is {enrolment}, but the enabled services are worth only {available} stars together, so nobody can complete enrolment"
            ),
        }
    }
}

/// Checks the administrator's star settings; empty when they are consistent.
pub fn check_rules(offered: &[Service], enrolment_stars: u8, reset_stars: u8) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    for s in offered {
        if !(1..=5).contains(&s.stars) {
            problems.push(RuleProblem::StarsOutOfRange { kind: s.kind, stars: s.stars });
        }
    }
    if enrolment_stars == 0 {
        problems.push(RuleProblem::EnrolmentStarsZero);
    }
    if reset_stars == 0 {
        problems.push(RuleProblem::ResetStarsZero);
    }
    if reset_stars > enrolment_stars {
        problems.push(RuleProblem::ResetAboveEnrolment { reset: reset_stars, enrolment: enrolment_stars });
    }
    if offered.is_empty() {
        problems.push(RuleProblem::NoServices);
    } else {
        let available: u32 = offered.iter().map(|s| u32::from(s.stars)).sum();
        if available < u32::from(enrolment_stars) {
            problems.push(RuleProblem::Unreachable { available, enrolment: enrolment_stars });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANKID: Service = Service { kind: ServiceKind::BankId, stars: 3, required: false };
    const SMS: Service = Service { kind: ServiceKind::Sms, stars: 2, required: false };
    const RULE: StarRule = StarRule { enrolment_stars: 5, reset_stars: 3 };

    #[test]
    fn nothing_enrolled_is_not_enrolled() {
        let a = assess(&[BANKID, SMS], &[], RULE);
        assert_eq!(a.status, EnrolmentStatus::NotEnrolled);
        assert_eq!((a.collected, a.needed, a.filled()), (0, 5, 0));
    }

    #[test]
    fn some_stars_is_partly_enrolled() {
        let a = assess(&[BANKID, SMS], &[ServiceKind::BankId], RULE);
        assert_eq!(a.status, EnrolmentStatus::PartlyEnrolled);
        assert_eq!(a.collected, 3);
    }

    #[test]
    fn a_full_row_is_enrolled() {
        let a = assess(&[BANKID, SMS], &[ServiceKind::Sms, ServiceKind::BankId], RULE);
        assert_eq!(a.status, EnrolmentStatus::Enrolled);
        assert_eq!(a.collected, 5);
    }

    #[test]
    fn extra_stars_do_not_overflow_the_row() {
        let big = Service { stars: 5, ..BANKID };
        let a = assess(&[big, SMS], &[ServiceKind::Sms, ServiceKind::BankId], RULE);
        assert_eq!((a.collected, a.filled()), (7, 5));
        assert_eq!(a.status, EnrolmentStatus::Enrolled);
    }

    #[test]
    fn a_missing_required_service_keeps_the_user_partly_enrolled() {
        let sms = Service { required: true, ..SMS };
        let bankid = Service { stars: 5, ..BANKID };
        let a = assess(&[bankid, sms], &[ServiceKind::BankId], RULE);
        assert_eq!(a.collected, 5);
        assert_eq!(a.missing_required, vec![ServiceKind::Sms]);
        assert_eq!(a.status, EnrolmentStatus::PartlyEnrolled);
    }

    #[test]
    fn a_service_no_longer_offered_counts_for_nothing() {
        let a = assess(&[SMS], &[ServiceKind::BankId], RULE);
        assert_eq!(a.collected, 0);
        assert_eq!(a.status, EnrolmentStatus::NotEnrolled);
    }

    #[test]
    fn consistent_rules_have_no_problems() {
        assert!(check_rules(&[BANKID, SMS], 5, 3).is_empty());
        assert!(check_rules(&[BANKID, SMS], 5, 5).is_empty());
    }

    #[test]
    fn reset_stars_above_enrolment_stars_are_refused() {
        let problems = check_rules(&[BANKID, SMS], 4, 5);
        assert_eq!(problems, vec![RuleProblem::ResetAboveEnrolment { reset: 5, enrolment: 4 }]);
        assert_eq!(problems[0].key(), "enrolment.reset_stars");
    }

    #[test]
    fn stars_outside_one_to_five_are_refused() {
        let zero = Service { stars: 0, ..SMS };
        let six = Service { stars: 6, ..BANKID };
        let problems = check_rules(&[six, zero], 5, 3);
        assert!(problems.contains(&RuleProblem::StarsOutOfRange { kind: ServiceKind::BankId, stars: 6 }));
        assert!(problems.contains(&RuleProblem::StarsOutOfRange { kind: ServiceKind::Sms, stars: 0 }));
    }

    #[test]
    fn a_row_longer_than_all_services_together_is_refused() {
        let problems = check_rules(&[SMS], 5, 3);
        assert_eq!(problems, vec![RuleProblem::Unreachable { available: 2, enrolment: 5 }]);
        assert_eq!(check_rules(&[], 1, 1), vec![RuleProblem::NoServices]);
    }
}
