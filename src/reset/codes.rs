//! Mobile codes in a reset: sending one to the enrolled number (or, when the typed name has
//! none, going through the same motions), and checking the code typed.
//!
//! Before the user has proved anything, the answers must not tell whether a text went anywhere:
//! a decoy is bound, counted and paced like a real code, and the budget shown follows the name as
//! typed (a user's several names must not share one, or the limit would tell they are one account).

use super::outcome::{ResetStep, ResetView};
use super::service::ResetService;
use crate::audit::RequestMeta;
use crate::enrolment::ServiceKind;
use crate::identity::bankid::FlowUser;
use crate::identity::sms::{Sender, SmsFlows, SmsOutcome, SmsStart};
use crate::storage::StorageError;

/// What pressing "send a code" came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSent {
    /// A code went (or seemed to). `known`: the flow has a verification already, so the user
    /// may be told that it went to their number.
    Sent { known: bool },
    /// The last code is too recent; another may be sent in this many seconds.
    Wait { seconds: i64 },
    /// A limit was reached; sending is possible again in this many minutes.
    Limited { minutes: i64 },
    /// The gateway failed.
    Unavailable,
}

/// What a code typed came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChecked {
    /// Verified (or verified before), or the failure ended the flow: the flow's page tells.
    Counted,
    /// Not six digits: nothing checked, nothing counted.
    Malformed,
    Wrong {
        attempts_left: i64,
    },
    Expired,
    TooMany,
    /// The day's wrong codes are used up: nothing checked, nothing counted against the flow.
    DayUsedUp,
}

/// Sends a code for the flow (at most one a minute, real or decoy alike). `text`: the message,
/// in the user's language, with the code's place in it.
pub async fn send(
    reset: &ResetService,
    sms: &SmsFlows,
    view: &ResetView,
    binding: &str,
    text: &str,
    meta: &RequestMeta,
) -> Result<CodeSent, StorageError> {
    let key = reset.code_key(view);
    if let Some(previous) = &view.sms_challenge
        && let Some(wait) = sms.view(previous, binding, &key, true).await?.map(|p| p.resend_in).filter(|w| *w > 0)
    {
        return Ok(CodeSent::Wait { seconds: wait });
    }
    // The check above tells the wait; this claim decides it, whatever runs beside it.
    let claim = match reset.claim_code_send(&view.id, sms.limits().resend_cooldown).await? {
        Ok(claim) => claim,
        Err(wait) => return Ok(CodeSent::Wait { seconds: wait }),
    };
    let enrolled = match &view.user_id {
        Some(u) => reset.has_mobile(u).await?,
        None => false,
    };
    // Counted per flow, per address and per target, never against the user's own texts or the
    // service desk's; the code is queued, so a real send answers like a decoy.
    let target = match view.typed_name.trim() {
        "" => key.clone(),
        _ => format!("name:{}", reset.typed_tag(view)),
    };
    // After a first proof the user is known to be the one asking: their texts are no longer
    // spent by strangers who type their name (whose cap would quietly turn them into decoys).
    let sender = match (enrolled, view.verified.is_empty()) {
        (true, false) => Sender::Proved { flow: &view.id },
        _ => Sender::Anonymous { flow: &view.id, target: &target },
    };
    let start = if enrolled {
        let name = reset.code_name(view);
        let user = FlowUser { user_id: &key, account_name: &name, password_set: None };
        sms.start_verify(binding, user, text, meta, sender).await?
    } else {
        // Bound like a real challenge (to the flow's key), counted like a real send.
        sms.start_decoy(binding, &key, sender, meta).await?
    };
    if let SmsStart::Sent { id } = start {
        reset.set_sms_challenge(&view.id, &id).await?;
        return Ok(CodeSent::Sent { known: !view.verified.is_empty() });
    }
    reset.release_code_send(claim).await?;
    Ok(match start {
        SmsStart::Limited { minutes } => CodeSent::Limited { minutes },
        _ => CodeSent::Unavailable,
    })
}

/// Checks the code typed against the flow's challenge; a right one verifies the flow (once), a
/// wrong one counts as a failure of the flow. None: the flow has no code to check.
pub async fn check(
    reset: &ResetService,
    sms: &SmsFlows,
    view: &ResetView,
    binding: &str,
    code: &str,
    meta: &RequestMeta,
) -> Result<Option<CodeChecked>, StorageError> {
    let Some(challenge) = view.sms_challenge.as_deref() else { return Ok(None) };
    let (key, name) = (reset.code_key(view), reset.code_name(view));
    let user = FlowUser { user_id: &key, account_name: &name, password_set: None };
    // Before a first proof each code is one of the user's guesses for the day; after it, the
    // user is known to be the one asking, as for the sends.
    let outcome = match view.verified.is_empty() {
        true => sms.check_reset_guess(challenge, binding, user, code, meta).await?,
        false => sms.check(challenge, binding, user, code, None, Sender::Proved { flow: &view.id }, meta).await?,
    };
    let failure = match outcome {
        Some(SmsOutcome::Verified) if view.user_id.is_some() => {
            reset.verified(view, ServiceKind::Sms, meta).await?;
            return Ok(Some(CodeChecked::Counted));
        }
        // The same right code sent again: it counted once, and is no failure either.
        Some(SmsOutcome::AlreadyVerified) if view.user_id.is_some() => return Ok(Some(CodeChecked::Counted)),
        Some(SmsOutcome::Wrong { attempts_left }) => CodeChecked::Wrong { attempts_left },
        // No code was checked: no failure of the flow either.
        Some(SmsOutcome::Malformed) => return Ok(Some(CodeChecked::Malformed)),
        Some(SmsOutcome::DayUsedUp) => return Ok(Some(CodeChecked::DayUsedUp)),
        Some(SmsOutcome::Expired) => CodeChecked::Expired,
        _ => CodeChecked::TooMany,
    };
    // A flow that ended shows that itself.
    if reset.failed(view, ServiceKind::Sms, meta).await? == ResetStep::Ended {
        return Ok(Some(CodeChecked::Counted));
    }
    Ok(Some(failure))
}
