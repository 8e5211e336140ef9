//! The write at the end of a reset: the flow is claimed for it (once, with the day's count), the
//! account's password must still be the one it had when the flow began, then AD is written and
//! what follows it runs ([`Aftermath`]).

use std::sync::Arc;

use secrecy::SecretString;

use super::aftermath::Aftermath;
use super::outcome::{ResetOutcome, ResetView};
use super::policy::Rules;
use super::rules::{NewPasswordRules, rules_refused};
use super::service::ResetError;
use super::state::{Finish, ResetState};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::config::ResetSettings;
use crate::directory::{Directory, DirectoryError, DirectoryUser, PasswordWriteError};
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
    /// The rules for the flow's user, with the user; only at the password step, and only while
    /// the account's password is the one it had when the flow began (else the flow ends).
    pub async fn rules(
        &self,
        view: &ResetView,
        meta: &RequestMeta,
    ) -> Result<Option<(Rules, DirectoryUser)>, ResetError> {
        let (true, ResetState::Verified, Some(user_id)) = (view.enough, view.state, &view.user_id) else {
            return Ok(None);
        };
        let user = self.directory.find_user_by_id(user_id).await?;
        let Some(user) = user.filter(|u| !u.closed_at(self.clock.now())) else { return Ok(None) };
        if view.password_set_then.is_some() && view.password_set_then != user.password_set {
            self.supersede(view, &user, meta).await?;
            return Ok(None);
        }
        Ok(Some((self.rules.for_user(&user).await?, user)))
    }

    /// Someone changed the account's password while the flow was open (its owner, who may have
    /// noticed someone else resetting it; another reset; an administrator): the flow ends rather
    /// than overwrite it.
    async fn supersede(&self, view: &ResetView, user: &DirectoryUser, meta: &RequestMeta) -> Result<(), StorageError> {
        let Ok(superseded) = view.state.supersede() else { return Ok(()) };
        let (column, _) = superseded.stored();
        if self.store.finish_reset_flow(&view.id, column, None, self.clock.now()).await? {
            let event = AuditEvent::new(EventKind::PasswordReset, Outcome::Blocked)
                .about(user)
                .detail(Detail::new("changed_meanwhile"));
            self.auditor.record(meta, event).await?;
        }
        Ok(())
    }

    /// Takes the flow for its one write, with the day's count, before AD is touched (claim, then
    /// act): of two parallel submissions exactly one writes, and both are counted against the
    /// daily limit only once. None: the write may go ahead; else what to answer.
    async fn claim(&self, view: &ResetView, user: &DirectoryUser, meta: &RequestMeta) -> Result<Claim, StorageError> {
        let limit = Limit { max_failures: self.settings.resets_per_day, window_seconds: 24 * 3600 };
        let counted = match self.throttle.reserve("reset-user", &user.id, limit).await? {
            Reserve::Granted(attempt) => attempt,
            Reserve::Blocked { .. } => {
                let event = AuditEvent::new(EventKind::PasswordReset, Outcome::Blocked)
                    .about(user)
                    .detail(Detail::new("daily_limit"));
                self.auditor.record(meta, event).await?;
                return Ok(Claim::Refused(ResetOutcome::DailyLimit));
            }
        };
        if view.state.claim().is_err() || !self.store.claim_reset_flow(&view.id).await? {
            self.throttle.release(counted).await?;
            return Ok(Claim::Refused(ResetOutcome::NotAllowed));
        }
        Ok(Claim::Held(counted))
    }

    /// The write did not happen: the flow and the day's count are given back.
    async fn unclaim(&self, view: &ResetView, counted: Attempt) -> Result<(), StorageError> {
        self.store.release_reset_flow(&view.id, false).await?;
        self.throttle.release(counted).await
    }

    /// Sets the new password (and unlocks, as configured), then tells the user by mail.
    pub async fn set_password(
        &self,
        view: &ResetView,
        password: &SecretString,
        repeated: &SecretString,
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
        let counted = match self.claim(view, &user, meta).await? {
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
                self.auditor.record(meta, event).await?;
                self.unclaim(view, counted).await?;
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

    /// Unlocks the account without changing the password.
    pub async fn unlock(&self, view: &ResetView, meta: &RequestMeta) -> Result<ResetOutcome, ResetError> {
        let (true, ResetState::Verified, Some(user_id)) = (view.enough, view.state, &view.user_id) else {
            return Ok(ResetOutcome::NotAllowed);
        };
        let user = self.directory.find_user_by_id(user_id).await?;
        let Some(user) = user.filter(|u| !u.closed_at(self.clock.now())) else { return Ok(ResetOutcome::NotAllowed) };
        let counted = match self.claim(view, &user, meta).await? {
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
