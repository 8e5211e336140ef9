//! What a BankID order is for, where it stands, and what the page says about it.

use super::rfa::{StartMode, message_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowPurpose {
    /// Bind a BankID to the logged-in user, who has none.
    Enrol,
    /// Bind another BankID in place of the one the logged-in user has.
    Replace,
    /// Log in without a password.
    Login,
    /// Prove again that the logged-in (or named) user holds the enrolled BankID.
    Verify,
    /// Start a password reset without a username: the enrolled personal number finds the account.
    Reset,
    /// One verification step of a password reset, for the user behind the typed name (if any).
    ResetStep,
    /// The service desk verifies a caller (`phone/auth`, no QR code).
    Caller,
}

impl FlowPurpose {
    pub fn id(self) -> &'static str {
        match self {
            FlowPurpose::Enrol => "enrol",
            FlowPurpose::Replace => "replace",
            FlowPurpose::Login => "login",
            FlowPurpose::Verify => "verify",
            FlowPurpose::Reset => "reset",
            FlowPurpose::ResetStep => "reset-step",
            FlowPurpose::Caller => "caller",
        }
    }

    pub(super) fn parse(s: &str) -> FlowPurpose {
        match s {
            "enrol" => FlowPurpose::Enrol,
            "replace" => FlowPurpose::Replace,
            "login" => FlowPurpose::Login,
            "reset" => FlowPurpose::Reset,
            "reset-step" => FlowPurpose::ResetStep,
            "caller" => FlowPurpose::Caller,
            _ => FlowPurpose::Verify,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowState {
    Pending,
    Complete,
    Failed,
    Cancelled,
}

/// What the page shows about a flow.
#[derive(Clone, PartialEq, Eq)]
pub struct FlowView {
    pub id: String,
    pub purpose: FlowPurpose,
    pub state: FlowState,
    /// The catalogue key of the message to show.
    pub message_key: &'static str,
    pub qr: bool,
    pub auto_start_token: String,
    /// The user the flow was for (enrol, verify) or found (login).
    pub user_id: Option<String>,
    /// The flow this order belongs to (a password reset), if any.
    pub context: Option<String>,
    /// When the order ended (completed, failed or cancelled).
    pub finished_at: Option<crate::clock::Timestamp>,
    /// Done in the app, waiting for it to be tied to this browser (see `same_device`): the app is
    /// not offered again.
    pub returning: bool,
}

debug_showing!(FlowView { id, purpose, state, message_key, qr, user_id, context, finished_at });

pub(super) fn done_key(purpose: FlowPurpose) -> &'static str {
    match purpose {
        FlowPurpose::Enrol | FlowPurpose::Replace => "bankid.enrolled",
        FlowPurpose::Login => "bankid.logged_in",
        FlowPurpose::Verify | FlowPurpose::Reset | FlowPurpose::ResetStep | FlowPurpose::Caller => "bankid.verified",
    }
}

pub(super) fn failure_key(hint: &str, purpose: FlowPurpose) -> &'static str {
    match hint {
        // Someone who forgot their password cannot "log in with the password and enrol first".
        "notEnrolled" if purpose == FlowPurpose::Reset => "bankid.not_enrolled_reset",
        "mismatch" => "bankid.mismatch",
        "alreadyEnrolled" => "bankid.already_enrolled",
        "riskTooHigh" => "bankid.risk_too_high",
        "otherDevice" => "bankid.other_device",
        "notVerified" => "bankid.not_verified",
        "notEnrolled" => "bankid.not_enrolled",
        "severalAccounts" => "bankid.several_accounts",
        "invalidPersonalNumber" | "noUser" | "notFound" | "nothingToReplace" => "bankid.rfa22",
        other => message_key(false, other, StartMode::Qr),
    }
}
