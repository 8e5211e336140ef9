//! What the reset service answers: where a flow stands, and what a step came to.

use super::policy::Rule;
use super::state::{Finish, ResetState};
use crate::directory::PasswordRefusal;
use crate::enrolment::ServiceKind;

/// Where a flow stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetView {
    pub id: String,
    pub state: ResetState,
    pub verified: Vec<ServiceKind>,
    pub collected: u8,
    pub needed: u8,
    /// The stars are enough (and the required services are verified): the password step is open.
    pub enough: bool,
    /// Services to offer next: every offered service before the first verification (so the page
    /// reveals nothing), then the user's other enrolled services.
    pub next: Vec<ServiceKind>,
    /// After a first verification: what the user enrolled can never reach the stars.
    pub not_enough_enrolled: bool,
    /// After a first verification: enrolled services that do not count yet (cooling-off).
    pub cooling: Vec<ServiceKind>,
    /// Verified services enrolled or replaced after the flow began: they do not count in it.
    pub changed_since: Vec<ServiceKind>,
    /// After a first verification: a privileged account, which cannot reset itself here.
    pub protected: bool,
    /// After a first verification: the account is disabled, expired or gone, and cannot be reset
    /// or unlocked here.
    pub closed: bool,
    /// The user behind the flow (None: the typed name matched nobody). Never shown.
    pub user_id: Option<String>,
    pub typed_name: String,
    pub sms_challenge: Option<String>,
    /// The account's pwdLastSet when the flow began. Never shown.
    pub password_set_then: Option<String>,
    /// When a write of the flow's own went unconfirmed. Never shown.
    pub written_maybe_at: Option<crate::clock::Timestamp>,
}

/// The result of the last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetOutcome {
    /// AD has it: told so whatever became of the portal's own records after the write.
    Done(Finish),
    /// Our own rules refused the password.
    Refused(Vec<Rule>),
    /// AD refused it.
    AdRefused(PasswordRefusal),
    /// Too many resets today.
    DailyLimit,
    /// The flow is not (or no longer) at the password step.
    NotAllowed,
    /// The password was sent to AD and no answer came: it may have been set. The user's sessions
    /// have ended as after a reset, and the flow is open for the password step again.
    Unconfirmed,
    /// The unlock was sent to AD and no answer came: the account may be unlocked. Nothing else
    /// changed, so the flow is open to unlock again.
    UnlockUnconfirmed,
}

/// What a failed verification did to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetStep {
    Continue,
    Ended,
}
