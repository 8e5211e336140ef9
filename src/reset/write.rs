//! The write at the end of a reset: the flow is claimed for it (once, with the day's count), the
//! account's password must still be the one it had when the flow began, then AD is written and
//! what follows it runs ([`Aftermath`]).

use std::sync::Arc;

use secrecy::SecretString;

use super::aftermath::Aftermath;
use super::assess::Assessor;
use super::outcome::{ResetOutcome, ResetView};
use super::policy::Rules;
use super::rules::{NewPasswordRules, rules_refused};
use super::service::ResetError;
use super::state::{Finish, ResetState};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Timestamp};
use crate::config::ResetSettings;
use crate::directory::{Directory, DirectoryError, DirectoryUser, PasswordWriteError, filetime_seconds};
use crate::session::CHANGE_SKEW;
use crate::storage::{Storage, StorageError};
use crate::throttle::{Attempt, Limit, Reserve, Throttle};

/// The flow taken for its write, with the day's count; or the answer when it cannot be.
enum Claim {
    Held(Attempt),
    Refused(ResetOutcome),
}

pub(super) struct Writer {
    pub(super) store: Arc<dyn Storage>,
    pub(super) directory: Arc<dyn Directory>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) auditor: Auditor,
    /// What follows a write AD made (or may have made).
    pub(super) after: Aftermath,
    pub(super) throttle: Throttle,
    pub(super) rules: Arc<NewPasswordRules>,
    pub(super) settings: ResetSettings,
}

impl Writer {
    /// The flow's user as AD has them now, if the flow may still write for them: enough stars,
    /// the account open, and its password one the flow may overwrite (else the flow ends,
    /// superseded).
    async fn current_user(
        &self,
        view: &ResetView,
        kind: EventKind,
        meta: &RequestMeta,
    ) -> Result<Option<DirectoryUser>, ResetError> {
        let (true, ResetState::Verified, Some(user_id)) = (view.enough, view.state, &view.user_id) else {
            return Ok(None);
        };
        let user = self.directory.find_user_by_id(user_id).await?;
        let Some(user) = user.filter(|u| !u.closed_at(self.clock.now())) else { return Ok(None) };
        if !self.unchanged(view, &user) {
            // Read from an open flow: ended only while it is still open.
            if view.state.supersede().is_ok() {
                let (column, _) = ResetState::Superseded.stored();
                if self.store.end_reset_flow(&view.id, column, self.clock.now()).await? {
                    self.superseded(kind, &user, meta).await?;
                }
            }
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// Whether `user`'s password is still one the flow may overwrite (see [`unchanged`]).
    fn unchanged(&self, view: &ResetView, user: &DirectoryUser) -> bool {
        let must_change = self.settings.must_change_at_next_logon;
        unchanged(view.password_set_then.as_deref(), user.password_set.as_deref(), view.written_maybe_at, must_change)
    }

    /// Someone changed the account's password while the flow was open (its owner, who may have
    /// noticed someone else resetting it; another reset; an administrator): the flow ended
    /// rather than overwrite it.
    async fn superseded(&self, kind: EventKind, user: &DirectoryUser, meta: &RequestMeta) -> Result<(), StorageError> {
        let event = AuditEvent::new(kind, Outcome::Blocked).about(user).detail(Detail::new("changed_meanwhile"));
        self.auditor.record(meta, event).await
    }

    /// The rules for the flow's user, with the user; only at the password step, and only while
    /// the account's password is one the flow may overwrite.
    pub async fn rules(
        &self,
        view: &ResetView,
        meta: &RequestMeta,
    ) -> Result<Option<(Rules, DirectoryUser)>, ResetError> {
        let Some(user) = self.current_user(view, EventKind::PasswordReset, meta).await? else { return Ok(None) };
        Ok(Some((self.rules.for_user(&user).await?, user)))
    }

    /// Takes the flow for its one write, with the day's count, before AD is touched (claim, then
    /// act): of two parallel submissions exactly one writes, and both are counted against the
    /// daily limit only once; a flow past its time or its failures is not taken. Then the account
    /// is read again where its password was last written (the DC the write goes to), so that a
    /// change made since the page was read stops the write, and the flow's stars are counted
    /// again (an enrolment removed while the page was answered no longer counts). Held: the write
    /// may go ahead; else what to answer. `kind`: a reset or an unlock, for the audit trail.
    async fn claim(
        &self,
        view: &ResetView,
        user: &DirectoryUser,
        kind: EventKind,
        assessor: &Assessor,
        meta: &RequestMeta,
    ) -> Result<Claim, ResetError> {
        let limit = Limit { max_failures: self.settings.resets_per_day, window_seconds: 24 * 3600 };
        let counted = match self.throttle.reserve("reset-user", &user.id, limit).await? {
            Reserve::Granted(attempt) => attempt,
            Reserve::Blocked { .. } => {
                let event = AuditEvent::new(kind, Outcome::Blocked).about(user).detail(Detail::new("daily_limit"));
                self.auditor.record(meta, event).await?;
                return Ok(Claim::Refused(ResetOutcome::DailyLimit));
            }
        };
        let now = self.clock.now();
        let taken = view.state.claim().is_ok()
            && self.store.claim_reset_flow(&view.id, now, self.settings.max_failures).await?;
        if !taken {
            self.throttle.release(counted).await?;
            return Ok(Claim::Refused(ResetOutcome::NotAllowed));
        }
        let again = match self.directory.find_user_by_id_where_written(&user.id, Some(&user.dn)).await {
            Ok(again) => again,
            Err(e) => {
                self.unclaim(view, counted).await?;
                return Err(e.into());
            }
        };
        match again {
            Some(again) if self.unchanged(view, &again) => {
                // Counted with the password's date read now (the flow may have begun without it).
                match assessor.still_enough(&view.id, again.password_set.as_deref(), now).await {
                    Ok(true) => Ok(Claim::Held(counted)),
                    Ok(false) => {
                        self.unclaim(view, counted).await?;
                        Ok(Claim::Refused(ResetOutcome::NotAllowed))
                    }
                    Err(e) => {
                        self.unclaim(view, counted).await?;
                        Err(e.into())
                    }
                }
            }
            Some(again) => {
                // The claim's holder ends its flow; nothing was written, so the day's count goes back.
                let (column, _) = ResetState::Superseded.stored();
                if self.store.finish_reset_flow(&view.id, column, None, self.clock.now()).await? {
                    self.superseded(kind, &again, meta).await?;
                }
                self.throttle.release(counted).await?;
                Ok(Claim::Refused(ResetOutcome::NotAllowed))
            }
            None => {
                self.unclaim(view, counted).await?;
                Ok(Claim::Refused(ResetOutcome::NotAllowed))
            }
        }
    }

    /// The write did not happen: the flow and the day's count are given back.
    async fn unclaim(&self, view: &ResetView, counted: Attempt) -> Result<(), StorageError> {
        self.store.release_reset_flow(&view.id, None).await?;
        self.throttle.release(counted).await
    }

    /// Sets the new password (and unlocks, as configured), then tells the user by mail.
    pub async fn set_password(
        &self,
        view: &ResetView,
        password: &SecretString,
        repeated: &SecretString,
        assessor: &Assessor,
        meta: &RequestMeta,
    ) -> Result<ResetOutcome, ResetError> {
        let Some((rules, user)) = self.rules(view, meta).await? else { return Ok(ResetOutcome::NotAllowed) };
        let broken = self.rules.broken(&rules, password, repeated).await;
        if !broken.is_empty() {
            let event =
                AuditEvent::new(EventKind::PasswordReset, Outcome::Failure).about(&user).detail(rules_refused(&broken));
            self.auditor.record(meta, event).await?;
            return Ok(ResetOutcome::Refused(broken));
        }
        let counted = match self.claim(view, &user, EventKind::PasswordReset, assessor, meta).await? {
            Claim::Held(counted) => counted,
            Claim::Refused(outcome) => return Ok(outcome),
        };
        let unlock = self.settings.unlock_on_reset;
        match self.directory.reset_password(&user.dn, password, unlock, self.settings.must_change_at_next_logon).await {
            Ok(()) => {}
            Err(PasswordWriteError::Refused(refusal, text)) => {
                tracing::info!(ad = %text, "password reset refused by AD");
                let event = AuditEvent::new(EventKind::PasswordReset, Outcome::Failure)
                    .about(&user)
                    .detail(Detail::new("ad_refused").arg("reason_key", refusal.message_key()));
                // Both, whichever fails: a flow left claimed could never be used again.
                let audited = self.auditor.record(meta, event).await;
                self.unclaim(view, counted).await?;
                audited?;
                return Ok(ResetOutcome::AdRefused(refusal));
            }
            Err(PasswordWriteError::Directory(e @ DirectoryError::Unconfirmed { .. })) => {
                tracing::error!(reference = %meta.request_id, user_id = %user.id, error = %e, "reset unconfirmed");
                self.after.reset_unconfirmed(view, &user, meta).await;
                return Ok(ResetOutcome::Unconfirmed);
            }
            Err(PasswordWriteError::Directory(e)) => {
                self.directory_failed(EventKind::PasswordReset, &user, meta).await;
                self.unclaim(view, counted).await?;
                return Err(e.into());
            }
        }
        self.after.done(view, &user, Finish::Reset, meta).await;
        Ok(ResetOutcome::Done(Finish::Reset))
    }

    /// A write that did not reach AD (the error page follows, with its reference in the log): the
    /// trail says it was tried.
    async fn directory_failed(&self, kind: EventKind, user: &DirectoryUser, meta: &RequestMeta) {
        let event = AuditEvent::new(kind, Outcome::Failure).about(user).detail(Detail::new("directory_failed"));
        if let Err(e) = self.auditor.record(meta, event).await {
            tracing::error!(reference = %meta.request_id, error = %e, "a write that failed: not audited either");
        }
    }

    /// Unlocks the account without changing the password (not once its password was changed
    /// elsewhere: an unlock would let the flow's holder go on guessing the new one).
    pub async fn unlock(
        &self,
        view: &ResetView,
        assessor: &Assessor,
        meta: &RequestMeta,
    ) -> Result<ResetOutcome, ResetError> {
        let Some(user) = self.current_user(view, EventKind::Unlock, meta).await? else {
            return Ok(ResetOutcome::NotAllowed);
        };
        let counted = match self.claim(view, &user, EventKind::Unlock, assessor, meta).await? {
            Claim::Held(counted) => counted,
            Claim::Refused(outcome) => return Ok(outcome),
        };
        match self.directory.unlock(&user.dn).await {
            Ok(()) => {}
            // Sent, and no answer: the account may be unlocked. As after an unlock, the user's
            // sessions end and the owner is told; unlocking again does no harm, so the flow and
            // the day's count go back and the user is told to try both.
            Err(e @ DirectoryError::Unconfirmed { .. }) => {
                tracing::error!(reference = %meta.request_id, user_id = %user.id, error = %e, "unlock unconfirmed");
                // What must follow a write AD may have made runs first, whatever becomes of the
                // flow's own records (a failure to give them back is logged, not an error page).
                self.after.unlock_unconfirmed(view, &user, meta).await;
                if let Err(e) = self.unclaim(view, counted).await {
                    tracing::error!(reference = %meta.request_id, error = %e, "unlock unconfirmed; the flow not given back");
                }
                return Ok(ResetOutcome::UnlockUnconfirmed);
            }
            Err(e) => {
                self.directory_failed(EventKind::Unlock, &user, meta).await;
                self.unclaim(view, counted).await?;
                return Err(e.into());
            }
        }
        self.after.done(view, &user, Finish::Unlock, meta).await;
        Ok(ResetOutcome::Done(Finish::Unlock))
    }
}

/// Whether AD's pwdLastSet (`read`) is still one the flow may overwrite: the value it had when
/// the flow began (`then`; None: it could not be read then, and nothing is compared), or, after
/// a write of the flow's own that AD did not confirm (at `written_maybe_at`), one set no later
/// than that write (AD's and the portal's clocks differ a little), or "0" when resets ask for a
/// new password at next logon.
fn unchanged(then: Option<&str>, read: Option<&str>, written_maybe_at: Option<Timestamp>, must_change: bool) -> bool {
    let Some(then) = then else { return true };
    if read == Some(then) {
        return true;
    }
    match (written_maybe_at, read) {
        (Some(_), Some("0")) => must_change,
        (Some(at), Some(value)) => filetime_seconds(value).is_some_and(|set| set <= at + CHANGE_SKEW),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::unchanged;

    /// 2026-12-02 00:00 UTC as AD writes it (100 ns since 1601), and in Unix seconds.
    const THEN: &str = "134406432000000000";
    const THEN_UNIX: i64 = 1_796_169_600;

    fn at(unix: i64) -> String {
        ((unix + 11_644_473_600) * 10_000_000).to_string()
    }

    #[test]
    fn only_the_flows_own_unconfirmed_write_may_have_changed_the_password() {
        assert_eq!(at(THEN_UNIX), THEN);
        assert!(unchanged(Some(THEN), Some(THEN), None, false));
        assert!(!unchanged(Some(THEN), Some(&at(THEN_UNIX + 60)), None, false), "changed elsewhere");
        assert!(!unchanged(Some(THEN), None, None, false), "no longer readable: not known to be the same");
        assert!(unchanged(None, Some(THEN), None, false), "not readable when the flow began");
        // The flow's own write went unconfirmed at +100 s: AD's value from then is its own…
        let written = Some(THEN_UNIX + 100);
        assert!(unchanged(Some(THEN), Some(&at(THEN_UNIX + 100)), written, false));
        assert!(unchanged(Some(THEN), Some(&at(THEN_UNIX + 150)), written, false), "a DC's clock a little ahead");
        assert!(unchanged(Some(THEN), Some(THEN), written, false), "or it was never made");
        // …and a change made after it is not.
        assert!(!unchanged(Some(THEN), Some(&at(THEN_UNIX + 600)), written, false));
        assert!(unchanged(Some(THEN), Some("0"), written, true), "its own write, asking for a change at next logon");
        assert!(!unchanged(Some(THEN), Some("0"), written, false), "an administrator's");
        assert!(!unchanged(Some(THEN), Some("0"), None, true));
    }
}
