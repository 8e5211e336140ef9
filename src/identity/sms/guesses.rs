//! Codes typed: each one is a guess, counted against the user's guesses for the day before it is
//! checked (so that parallel guesses cannot slip under the count) and given back unless it was
//! wrong. A reset before its first proof has a budget of its own, past which a code is checked as
//! a decoy's (the answer tells nobody that the limit was reached); everyone else (logged in, a
//! reset after a first proof, the service desk) shares one, past which nothing is checked.

use super::{Sender, SmsFlows, SmsOutcome};
use crate::audit::{Detail, EventKind, Outcome, RequestMeta};
use crate::identity::bankid::FlowUser;
use crate::storage::StorageError;
use crate::throttle::{Limit, Reserve};

impl SmsFlows {
    /// Checks a code typed in a reset before a first proof, as one of the user's guesses for the
    /// day ([`super::budget::wrong_codes`]). With the day's guesses used up the code is checked as
    /// a decoy's (always wrong, a try used), so that the answer tells nothing.
    pub async fn check_reset_guess(
        &self,
        id: &str,
        binding: &str,
        user: FlowUser<'_>,
        typed: &str,
        meta: &RequestMeta,
    ) -> Result<Option<SmsOutcome>, StorageError> {
        let budget = super::budget::wrong_codes(user.user_id);
        self.check_counted(budget, (true, true), id, binding, user, typed, None, meta).await
    }

    /// Checks a typed code (logged in, in a reset after a first proof, for the service desk), as
    /// one of that sender's guesses for the user's day ([`super::budget::wrong_codes_known`]): past them,
    /// nothing is checked ([`SmsOutcome::DayUsedUp`]); without it a password thief could guess at
    /// a step-up code all day, three tries a resend. None when the challenge is not this user's
    /// and browser's. `keep_session`: the id hash of the asking session, which goes on when the
    /// code completes an enrolment or a replacement (every other session of the user ends with it).
    #[allow(clippy::too_many_arguments)]
    pub async fn check(
        &self,
        id: &str,
        binding: &str,
        user: FlowUser<'_>,
        typed: &str,
        keep_session: Option<&str>,
        sender: Sender<'_>,
        meta: &RequestMeta,
    ) -> Result<Option<SmsOutcome>, StorageError> {
        let budget = super::budget::wrong_codes_known(sender, &user.budget_key());
        self.check_counted(budget, (false, sender.queued()), id, binding, user, typed, keep_session, meta).await
    }

    /// The guess is counted against `budget` before the code is checked (so that parallel guesses
    /// cannot slip under it), and given back unless the code was wrong. Past the budget the code
    /// is checked as a decoy's (`decoy`), or not at all. `for_reset`: typed in a reset flow, where
    /// only a reset's challenges are checked (and a reset's nowhere else).
    #[allow(clippy::too_many_arguments)]
    async fn check_counted(
        &self,
        (scope, key, limit): (&'static str, String, Limit),
        (decoy, for_reset): (bool, bool),
        id: &str,
        binding: &str,
        user: FlowUser<'_>,
        typed: &str,
        keep_session: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Option<SmsOutcome>, StorageError> {
        let guess = match self.throttle.reserve(scope, &key, limit).await? {
            Reserve::Granted(attempt) => Some(attempt),
            Reserve::Blocked { .. } => {
                if !decoy && self.load(id, binding, user.user_id, for_reset).await?.is_none() {
                    return Ok(None);
                }
                // For the administrators: the audit says why.
                let why = if decoy { "guess_decoy" } else { "guess_refused" };
                let detail = Detail::new(why).arg("scope_key", format!("audit.scope.{scope}"));
                self.auditor.record(meta, Self::event(EventKind::SmsCheck, Outcome::Blocked, &user, detail)).await?;
                if !decoy {
                    return Ok(Some(SmsOutcome::DayUsedUp));
                }
                None
            }
        };
        let outcome =
            self.check_code(id, binding, user, typed, keep_session, (guess.is_none(), for_reset), meta).await?;
        if let (Some(attempt), false) =
            (guess, matches!(outcome, Some(SmsOutcome::Wrong { .. } | SmsOutcome::LastWrong)))
        {
            self.throttle.release(attempt).await?;
        }
        Ok(outcome)
    }
}
