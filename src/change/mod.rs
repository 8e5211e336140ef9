//! Changing a password with the current one, logged in or not.
//!
//! The current password is proved first, throttled, counted and timed like a login
//! ([`LoginService::prove_current`]): nothing about the account, not even its rules, is told
//! before that. Then the new password is checked against the user's rules, written to AD in one
//! modify (AD checks the current password again and enforces history and minimum age), the
//! user's other sessions end and they are told by mail.

use std::sync::Arc;

use secrecy::SecretString;

use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::directory::{Directory, DirectoryError, DirectoryUser, PasswordRefusal};
use crate::login::{ChangeOutcome, LoginError, LoginService, Refusal};
use crate::mail::{Notice as MailNotice, Outbox};
use crate::reset::{NewPasswordRules, Rule, Rules, rules_refused};
use crate::session::Sessions;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The directory could not be asked (the user is told to try again later).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl From<LoginError> for ChangeError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Directory(e) => Self::Directory(e),
            LoginError::Storage(e) => Self::Storage(e),
        }
    }
}

/// Why a change did not happen, in terms the user may be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// The current password or the account was refused, or the limit was reached: as for a login.
    Current(Refusal),
    /// The new password breaks these of the user's rules. `proved`: the account whose current
    /// password was proved (so that the form may show its rules).
    Rules { broken: Vec<Rule>, proved: String },
    /// AD refused the new password (history, minimum age, its own complexity check...).
    Directory { refusal: PasswordRefusal, proved: String },
    /// The change was sent to AD and no answer came: it may have been made. The user's other
    /// sessions have ended as after a change, and a mail says it may have been made; the session
    /// that asked goes on under this new cookie value, as after a change.
    Unconfirmed { session: Option<String> },
}

/// A change made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The new cookie value of the session that made the change: it goes on under a new id, so
    /// that a copy of its cookie taken before ends with the others. None: no session asked (or
    /// it could not be renewed, and ended with the others).
    pub session: Option<String>,
}

/// What a user asks for.
pub struct ChangeRequest<'a> {
    /// The account name typed, or the session's.
    pub typed: &'a str,
    pub current: &'a SecretString,
    pub new: &'a SecretString,
    pub repeat: &'a SecretString,
    /// The session to keep when every other session of the user ends (the one changing, if any).
    pub keep_session: Option<&'a str>,
}

pub struct ChangeService {
    login: Arc<LoginService>,
    directory: Arc<dyn Directory>,
    rules: Arc<NewPasswordRules>,
    sessions: Sessions,
    outbox: Outbox,
    auditor: Auditor,
}

impl ChangeService {
    pub fn new(
        login: Arc<LoginService>,
        directory: Arc<dyn Directory>,
        rules: Arc<NewPasswordRules>,
        sessions: Sessions,
        outbox: Outbox,
        auditor: Auditor,
    ) -> Self {
        Self { login, rules, directory, sessions, outbox, auditor }
    }

    /// The rules the form shows: the account's when `user_id` is known (the session's, or one
    /// whose current password was proved in this browser), otherwise the domain's.
    pub async fn form_rules(&self, user_id: Option<&str>) -> Result<Rules, DirectoryError> {
        let user = match user_id {
            Some(id) => self.directory.find_user_by_id(id).await?,
            None => None,
        };
        match user {
            Some(user) => self.rules.for_user(&user).await,
            None => self.rules.for_domain().await,
        }
    }

    /// Changes the password, or says why not. On success the password is changed whatever
    /// happens after the write: ending the other sessions or queueing the mail may fail, and is
    /// logged, but the change is reported (a refusal would invite sending the old password again).
    pub async fn change(
        &self,
        request: ChangeRequest<'_>,
        meta: &RequestMeta,
    ) -> Result<Result<Changed, ChangeRefusal>, ChangeError> {
        let known = request.keep_session.is_some();
        let proved = match self.login.prove_current(request.typed, request.current, known, meta).await? {
            Ok(proved) => proved,
            Err(refusal) => return Ok(Err(ChangeRefusal::Current(refusal))),
        };
        let (user, keys) = (proved.user, proved.keys);
        let rules = self.rules.for_user_with(&user, proved.policy.as_ref()).await?;
        let broken = self.rules.broken(&rules, request.new, request.repeat).await;
        if !broken.is_empty() {
            let event = AuditEvent::new(EventKind::PasswordChange, Outcome::Failure)
                .about(&user)
                .detail(rules_refused(&broken));
            self.auditor.record(meta, event).await?;
            return Ok(Err(ChangeRefusal::Rules { broken, proved: user.id }));
        }
        let proved_id = user.id.clone();
        match self.login.change_password(user, &keys, request.current, request.new, meta).await? {
            ChangeOutcome::Changed(user) => {
                let session = self.end_other_sessions(&user, request.keep_session, meta).await;
                self.tell(&user, MailNotice::PasswordChanged, meta).await;
                Ok(Ok(Changed { session }))
            }
            ChangeOutcome::Refused(refusal) => Ok(Err(ChangeRefusal::Current(refusal))),
            ChangeOutcome::AdRefused(refusal) => Ok(Err(ChangeRefusal::Directory { refusal, proved: proved_id })),
            ChangeOutcome::Unconfirmed(user) => {
                // Had it been made, an attacker's session must not outlive it, and the owner
                // must hear of it.
                let session = self.end_other_sessions(&user, request.keep_session, meta).await;
                self.tell(&user, MailNotice::PasswordMaybeChanged, meta).await;
                Ok(Err(ChangeRefusal::Unconfirmed { session }))
            }
        }
    }

    /// Mails the user (when AD has an address); a failure is logged.
    async fn tell(&self, user: &DirectoryUser, notice: MailNotice, meta: &RequestMeta) {
        if let Some(mail) = &user.mail
            && let Err(e) = self.outbox.notify(mail, user.name_to_show(), notice, meta).await
        {
            tracing::error!(reference = %meta.request_id, error = %e, "change: notice not queued");
        }
    }

    /// Every session of the user but the one that changed it ends. That one goes on under a new
    /// cookie value (returned), and takes the new password as its own (or a check against AD
    /// would end it too). If it cannot be renewed, it ends with the others.
    async fn end_other_sessions(
        &self,
        user: &DirectoryUser,
        keep_session: Option<&str>,
        meta: &RequestMeta,
    ) -> Option<String> {
        let renewed = match keep_session {
            Some(token) => self.sessions.changed_here(token).await.unwrap_or_else(|e| {
                tracing::error!(reference = %meta.request_id, error = %e, "change: the session not renewed; it ends");
                None
            }),
            None => None,
        };
        if let Err(e) = self.sessions.end_all_for(&user.id, renewed.as_deref()).await {
            tracing::error!(reference = %meta.request_id, error = %e, "change: other sessions not ended");
            let event = AuditEvent::new(EventKind::SessionExpired, Outcome::Failure)
                .about(user)
                .detail(Detail::new("sessions_not_ended"));
            if let Err(e) = self.auditor.record(meta, event).await {
                tracing::error!(reference = %meta.request_id, error = %e, "nor audited");
            }
        }
        renewed
    }
}

#[cfg(test)]
mod tests;
