//! Enrolment: the identity services on offer, their stars, and how far a user has come.
//!
//! The rules are pure logic (no I/O, no web framework); [`EnrolmentService`] applies them to
//! what is stored. A user fills the star row by enrolling services; each
//! service is worth the stars the administrator set. Enrolment is complete when the stars reach
//! `enrolment_stars` and every required service is enrolled.

mod cooling;
mod desk;
mod kinship;
mod restarts;
mod scoring;
mod service;
mod stepup;

pub use cooling::{CoolingOff, password_set_at};
pub use desk::{Desk, Lift, ProofStanding};
pub use kinship::PersonalNumbers;
pub use restarts::RestartWatch;
pub use scoring::{Assessment, EnrolmentStatus, RuleProblem, StarRule, assess, check_rules};
pub use service::{ChangeNotifier, Enrolled, EnrolmentService, Owner, telling};
pub use stepup::{Change, Refusal as ChangeRefusal, StepUp};

use std::fmt;
use std::str::FromStr;

use crate::config::{ServiceSettings, ServicesSettings};

/// The kinds of identity service the portal knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    BankId,
    Sms,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 2] = [ServiceKind::BankId, ServiceKind::Sms];

    /// The stable identifier used in the configuration, the database and URLs.
    pub fn id(self) -> &'static str {
        match self {
            ServiceKind::BankId => "bankid",
            ServiceKind::Sms => "sms",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identity service \"{0}\"")]
pub struct UnknownService(String);

impl FromStr for ServiceKind {
    type Err = UnknownService;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL.into_iter().find(|k| k.id() == s).ok_or_else(|| UnknownService(s.to_string()))
    }
}

/// An identity service as offered by this portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub kind: ServiceKind,
    pub stars: u8,
    pub required: bool,
}

/// The enabled services from the configuration, in display order.
pub fn catalogue_from(settings: &ServicesSettings) -> Vec<Service> {
    let entry = |kind, s: &Option<ServiceSettings>| {
        s.as_ref().filter(|s| s.enabled).map(|s| Service { kind, stars: s.stars, required: s.required })
    };
    [entry(ServiceKind::BankId, &settings.bankid), entry(ServiceKind::Sms, &settings.sms)]
        .into_iter()
        .flatten()
        .collect()
}
