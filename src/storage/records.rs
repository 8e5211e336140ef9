//! The rows the storage roles read and write, as the portal sees them.

use crate::clock::Timestamp;

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: String,
    pub user_dn: String,
    pub account_name: String,
    pub display_name: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// Comma-separated portal roles.
    pub roles: String,
    /// When the user last gave their password.
    pub authenticated_at: Timestamp,
    /// The enrolled service the user last verified with in this session (a step-up), and when.
    pub proof_service: Option<String>,
    pub proof_at: Option<Timestamp>,
    /// AD's `pwdLastSet` for the user when last checked (None: adopt the next one read), and when.
    pub pwd_last_set: Option<String>,
    pub pwd_checked_at: Option<Timestamp>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Timestamp,
    pub event: String,
    pub outcome: String,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
    /// The member of staff who did it, when the entry is about someone else.
    pub actor: Option<String>,
}

/// An enrolled identity service.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnrolmentRecord {
    pub user_id: String,
    pub service: String,
    pub enrolled_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// The service desk let this enrolment count toward a reset before its cooling-off ended.
    pub cooldown_lifted_at: Option<Timestamp>,
    /// A password set that started its cooling-off again, as the portal saw it (AD keeps only
    /// the last; see `enrolment::CoolingOff`).
    pub restarted_at: Option<Timestamp>,
}

/// Whether an enrolment is a first one of its kind or replaces the one there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolMode {
    /// Refused (false) when the user already has this service: the replace path is separate.
    Add,
    /// Refused (false) when the user has no such service to replace.
    Replace,
}

/// What a write of an enrolment (an added or a replaced service) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolWrite {
    /// Written, and the user's other sessions ended with it.
    Done,
    /// `mode` did not fit what the user has (a second one, or a replacement of none): nothing
    /// written.
    Refused,
    /// The session that asked had ended meanwhile (the owner ended it, say): nothing written.
    SessionEnded,
}

/// A BankID order in progress.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BankIdFlowRecord {
    pub id: String,
    pub purpose: String,
    pub binding_hash: String,
    pub user_id: Option<String>,
    pub required_pn_hash: Option<String>,
    pub order_ref: String,
    pub auto_start_token: String,
    pub qr_start_token: String,
    pub qr_start_secret: String,
    pub mode: String,
    pub state: String,
    pub hint_code: Option<String>,
    pub started_at: Timestamp,
    pub last_collect_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub result_user_id: Option<String>,
    /// The flow this order belongs to (a password reset), if any.
    pub context: Option<String>,
    /// The hash of the nonce in the return URL given to BankID (None: no return URL was given).
    pub return_nonce_hash: Option<String>,
    /// When the app sent the user back to the browser that started the order (or BankID saw the
    /// app at that browser's address).
    pub returned_at: Option<Timestamp>,
    /// The key of the address the order was started from (`throttle::address_key`).
    pub start_address: Option<String>,
}

debug_showing!(BankIdFlowRecord {
    id,
    purpose,
    user_id,
    order_ref,
    mode,
    state,
    hint_code,
    started_at,
    last_collect_at,
    finished_at,
    result_user_id,
    context,
    returned_at
});

/// The BankID bound to a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BankIdEnrolmentRecord {
    pub user_id: String,
    pub pn_encrypted: String,
    pub pn_hash: String,
    pub pn_masked: String,
    pub name: String,
    pub enrolled_at: Timestamp,
}

/// A mobile-code challenge.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SmsChallengeRecord {
    pub id: String,
    pub purpose: String,
    pub binding_hash: String,
    pub user_id: String,
    pub number_encrypted: String,
    pub number_hash: String,
    pub number_masked: String,
    pub code_hash: String,
    pub attempts: i64,
    pub sent_at: Timestamp,
    pub state: String,
    pub finished_at: Option<Timestamp>,
}

debug_showing!(SmsChallengeRecord { id, purpose, user_id, number_masked, attempts, sent_at, state, finished_at });

/// The mobile number a user enrolled.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SmsEnrolmentRecord {
    pub user_id: String,
    pub number_encrypted: String,
    pub number_hash: String,
    pub number_masked: String,
    pub enrolled_at: Timestamp,
}

/// A password reset (or unlock) in progress.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResetFlowRecord {
    pub id: String,
    pub binding_hash: String,
    pub typed_name: String,
    /// None when the typed name matched no user: the flow goes through the motions.
    pub user_id: Option<String>,
    /// The verified services, comma-separated.
    pub verified: String,
    /// The mobile-code challenge of the current step, if any.
    pub sms_challenge: Option<String>,
    pub failures: i64,
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: Option<String>,
    /// The account's pwdLastSet when the flow began (a password changed since ends the flow).
    pub pwd_last_set: Option<String>,
    /// When a write of the flow's own went unconfirmed (AD's value may be that write's).
    pub written_maybe_at: Option<Timestamp>,
}

/// A mail in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailRecord {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// What the audit viewer filters on; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Part of the username, or an exact user id; also finds what a member of staff whose name
    /// starts so did about others (a detail's `by` or `actor`).
    pub user: Option<String>,
    pub user_id: Option<String>,
    pub event: Option<String>,
    pub outcome: Option<String>,
    pub ip: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}
