//! What a mobile-code challenge is for, where it stands, and what its steps come to.

use crate::throttle::Limit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsPurpose {
    /// Enrol a first mobile number.
    Enrol,
    /// Put a new number in place of the enrolled one.
    Replace,
    /// Prove the enrolled number, logged in (a step-up) or for the service desk.
    Verify,
    /// Prove the enrolled number in a password reset: checked only there (a reset's code must not
    /// become a logged-in session's step-up, nor a step-up's code count in a reset).
    Reset,
}

impl SmsPurpose {
    pub fn id(self) -> &'static str {
        match self {
            SmsPurpose::Enrol => "enrol",
            SmsPurpose::Replace => "replace",
            SmsPurpose::Verify => "verify",
            SmsPurpose::Reset => "reset",
        }
    }

    /// Whether a challenge stored with `purpose` belongs to a reset flow (its code, or a decoy).
    pub(super) fn of_reset(purpose: &str) -> bool {
        matches!(purpose, "reset" | "decoy")
    }

    pub(super) fn parse(s: &str) -> SmsPurpose {
        match s {
            "enrol" => SmsPurpose::Enrol,
            "replace" => SmsPurpose::Replace,
            "reset" => SmsPurpose::Reset,
            _ => SmsPurpose::Verify,
        }
    }
}

/// The limits on codes and sends.
#[derive(Debug, Clone)]
pub struct SmsLimits {
    pub code_lifetime: i64,
    pub max_attempts: i64,
    pub resend_cooldown: i64,
    pub per_user: Limit,
    pub per_ip: Limit,
    pub per_number: Limit,
    pub per_prefix: Limit,
    /// The countries whose numbers a user may enrol (ISO codes): texts to anywhere else are not
    /// sent (premium ranges abroad are what SMS pumping lives on).
    pub countries: Vec<String>,
}

/// What happened when a code was to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsStart {
    Sent {
        id: String,
    },
    /// A limit was reached; sending is possible again in this many minutes.
    Limited {
        minutes: i64,
    },
    /// Too soon after the last code; wait this many seconds.
    Cooldown {
        seconds: i64,
    },
    /// The gateway failed; nothing was stored.
    GatewayFailed,
    /// No enrolled number to verify.
    NotEnrolled,
    /// A number of a country that is not offered: nothing was sent.
    CountryRefused,
}

/// What happened when a code was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsOutcome {
    /// The code was right, now: the challenge moved to verified (the number was enrolled, for an
    /// enrolment). Only this answer is a proof.
    Verified,
    /// The challenge was verified before (a reload): it proves nothing again.
    AlreadyVerified,
    /// The right code, but the enrolment it was for no longer fits (a number was enrolled meanwhile).
    Conflict,
    Wrong {
        attempts_left: i64,
    },
    /// Not six digits: no code was checked and no try used.
    Malformed,
    /// The last try's code was wrong: the challenge has failed.
    LastWrong,
    /// No try is left (nothing was checked).
    TooManyAttempts,
    /// The user's wrong codes for the day are used up (nothing was checked).
    DayUsedUp,
    Expired,
}

/// Where a challenge stands (past its lifetime, a pending one reads as expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    Pending,
    Verified,
    /// Too many wrong codes.
    Failed,
    Expired,
    /// The right code, but the enrolment it was for was refused (another number came first).
    Refused,
}

impl ChallengeState {
    pub(super) fn from_stored(state: &str) -> ChallengeState {
        match state {
            "pending" => ChallengeState::Pending,
            "verified" => ChallengeState::Verified,
            "expired" => ChallengeState::Expired,
            "refused" => ChallengeState::Refused,
            _ => ChallengeState::Failed,
        }
    }
}

/// What the code page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsView {
    pub id: String,
    pub purpose: SmsPurpose,
    pub masked: String,
    pub state: ChallengeState,
    pub resend_in: i64,
    /// Nothing was sent (see `start_decoy`).
    pub decoy: bool,
    /// When it was verified (or otherwise ended).
    pub finished_at: Option<crate::clock::Timestamp>,
}
