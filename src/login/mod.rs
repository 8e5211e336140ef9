//! Logging in with the AD password: look the user up, guard against guessing, bind as the user.
//!
//! The portal never locks an AD account itself: it stops asking the directory well before the
//! domain's lockout threshold. Unknown users are answered exactly like wrong passwords, in words
//! and in time.

mod admit;
mod details;
mod outcome;
mod pace;

pub use admit::USER_SCOPE;
use admit::throttled;

pub use outcome::{Admit, ChangeOutcome, Counted, LoginOutcome, Proved, Reauth, Refusal, UserKeys};

use details::{bind_key, bind_refused, roles_key, with_roles};

pub use crate::throttle::{Limit, Throttle};

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::config::Settings;
use crate::directory::{
    BindRefusal, ChangeResult, Directory, DirectoryError, DirectoryUser, PasswordCheck, PasswordWriteError, Username,
};
use crate::session::{Roles, SessionUser};
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The DN of an entry no domain has, at the domain's root: the password typed for a name that is
/// no account's is tried against it, so that it takes a bind as an account's does. AD answers it
/// as a wrong password (`check-config` makes sure).
pub fn nobodys_dn(settings: &crate::config::DirectorySettings) -> String {
    format!("CN=stjarna-no-such-account-6b1f0c,{}", settings.domain_dn())
}

pub struct LoginService {
    directory: Arc<dyn Directory>,
    throttle: Throttle,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
    netbios_domain: String,
    role_groups: crate::session::RoleGroups,
    max_per_user: u32,
    max_per_ip: u32,
    margin: u32,
    window_seconds: i64,
    pacer: pace::Pacer,
    /// Bound as, with the password typed, for a name that is no account's (see [`admit`]).
    ///
    /// [`admit`]: LoginService::admit
    nobodys_dn: String,
}

impl LoginService {
    pub fn new(
        settings: &Settings,
        directory: Arc<dyn Directory>,
        throttle: Throttle,
        auditor: Auditor,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let l = &settings.login;
        Self {
            directory,
            throttle,
            auditor,
            clock,
            netbios_domain: settings.directory.netbios_domain.clone(),
            role_groups: crate::session::RoleGroups {
                admin: settings.directory.admin_group.clone(),
                helpdesk: settings.directory.helpdesk_group.clone(),
                reporting: settings.directory.reporting_group.clone(),
            },
            max_per_user: l.max_failures_per_user,
            max_per_ip: l.max_failures_per_ip,
            margin: l.lockout_margin,
            window_seconds: l.window_minutes as i64 * 60,
            pacer: pace::Pacer::new(Duration::from_millis(l.min_response_ms)),
            nobodys_dn: nobodys_dn(&settings.directory),
        }
    }

    pub async fn login(
        &self,
        typed: &str,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        let mut watch = self.pacer.start();
        let result = self.attempt(typed, password, meta, &mut watch).await;
        self.pacer.answer(watch).await;
        result
    }

    async fn attempt(
        &self,
        typed: &str,
        password: &SecretString,
        meta: &RequestMeta,
        watch: &mut pace::Watch,
    ) -> Result<LoginOutcome, LoginError> {
        let (user, keys, counted) = match self.admit(typed, Some(password), meta).await? {
            Admit::Go { user, keys, counted, .. } => (*user, keys, counted),
            Admit::Stop(outcome) => return Ok(outcome),
            Admit::AccountFull { told, .. } => return Ok(LoginOutcome::Refused(told)),
        };

        let check = self.directory.check_password(&user.dn, password).await?;
        match check {
            PasswordCheck::Refused(refusal) if hides_account(refusal) => watch.wrong(),
            _ => watch.other(),
        }
        match check {
            PasswordCheck::Refused(refusal) => {
                self.auditor.record(meta, entry(Outcome::Failure, bind_refused(refusal)).about(&user)).await?;
                if hides_account(refusal) {
                    return Ok(LoginOutcome::Refused(counted.wrong()));
                }
                self.uncount(counted).await?;
                Ok(LoginOutcome::Refused(Refusal::Directory(refusal)))
            }
            PasswordCheck::Accepted => {
                self.uncount_and_clear(counted, &keys).await?;
                let roles = self.roles(&user.dn).await?;
                let is_admin = roles.admin;
                self.auditor.record(meta, entry(Outcome::Success, with_roles(roles)).about(&user)).await?;
                Ok(LoginOutcome::Success(SessionUser {
                    display_name: user.name_to_show().to_string(),
                    password_set: user.password_set,
                    user_id: user.id,
                    user_dn: user.dn,
                    account_name: user.account_name,
                    is_admin,
                    roles,
                }))
            }
        }
    }

    /// The user's portal roles.
    async fn roles(&self, user_dn: &str) -> Result<Roles, DirectoryError> {
        self.role_groups.read(self.directory.as_ref(), user_dn).await
    }

    /// The user behind a typed name (account, principal name or mail), for the service desk;
    /// no limit is counted (the caller is an authenticated agent).
    pub async fn find(&self, typed: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        match Username::parse(typed, &self.netbios_domain) {
            Ok(name) => self.directory.find_user(&name).await,
            Err(_) => Ok(None),
        }
    }

    /// A user by id, as the directory has them now.
    pub async fn user(&self, user_id: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.directory.find_user_by_id(user_id).await
    }

    /// Logs in a user who proved who they are another way (BankID): the account must still be usable.
    /// Returns None when it is disabled, expired, locked or gone.
    pub async fn login_verified(
        &self,
        user_id: &str,
        method: &str,
        meta: &RequestMeta,
    ) -> Result<Option<SessionUser>, LoginError> {
        let user = self.directory.find_user_by_id(user_id).await?;
        let now = self.clock.now();
        let Some(user) = user.filter(|u| !u.closed_at(now) && !u.locked) else {
            let detail = Detail::new("account_unusable").arg("method_key", format!("service.{method}.name"));
            self.auditor.record(meta, entry(Outcome::Failure, detail).username("").user_id(user_id)).await?;
            return Ok(None);
        };
        let roles = self.roles(&user.dn).await?;
        let is_admin = roles.admin;
        let detail = Detail::new("login_with")
            .arg("method_key", format!("service.{method}.name"))
            .arg("roles_key", roles_key(roles));
        self.auditor.record(meta, entry(Outcome::Success, detail).about(&user)).await?;
        Ok(Some(SessionUser {
            display_name: user.name_to_show().to_string(),
            password_set: user.password_set,
            user_id: user.id,
            user_dn: user.dn,
            account_name: user.account_name,
            is_admin,
            roles,
        }))
    }

    /// The first step of a password change: is `current` the password of the account behind
    /// `typed`? Throttled, counted and timed exactly like a login, so that nothing about the account
    /// (not even its rules) is shown before this is true. An expired password, or one that must be
    /// changed, proves it too: AD says so only when the password is right. `known`: the user is
    /// logged in as the account (then a full count of the account is told as the wait it is, and
    /// the try is not held against them, as for a re-authentication).
    pub async fn prove_current(
        &self,
        typed: &str,
        current: &SecretString,
        known: bool,
        meta: &RequestMeta,
    ) -> Result<Result<Proved, Refusal>, LoginError> {
        let mut watch = self.pacer.start();
        let result = self.prove_attempt(typed, current, known, meta, &mut watch).await;
        self.pacer.answer(watch).await;
        result
    }

    async fn prove_attempt(
        &self,
        typed: &str,
        current: &SecretString,
        known: bool,
        meta: &RequestMeta,
        watch: &mut pace::Watch,
    ) -> Result<Result<Proved, Refusal>, LoginError> {
        if known {
            // A logged-in user's own name: nothing to keep from them, nor to pace.
            watch.other();
        }
        let (user, keys, counted, policy) = match self.admit(typed, (!known).then_some(current), meta).await? {
            Admit::Go { user, keys, counted, policy } => (*user, keys, counted, policy),
            Admit::AccountFull { wait, counted, .. } if known => {
                self.uncount(counted).await?;
                return Ok(Err(Refusal::Throttled { minutes: (wait + 59) / 60 }));
            }
            Admit::Stop(LoginOutcome::Refused(r)) | Admit::AccountFull { told: r, .. } => return Ok(Err(r)),
            Admit::Stop(LoginOutcome::Success(_)) => unreachable!("admit never logs in"),
        };
        let check = self.directory.check_password(&user.dn, current).await?;
        match check {
            PasswordCheck::Refused(refusal) if hides_account(refusal) && !known => watch.wrong(),
            _ => watch.other(),
        }
        let refusal = match check {
            PasswordCheck::Accepted
            | PasswordCheck::Refused(BindRefusal::PasswordExpired | BindRefusal::MustChangePassword) => {
                // The right password, as for a login: the user's earlier failures are forgotten.
                self.uncount_and_clear(counted, &keys).await?;
                return Ok(Ok(Proved { user, keys, policy: policy.map(|p| *p) }));
            }
            PasswordCheck::Refused(refusal) => refusal,
        };
        let event = AuditEvent::new(EventKind::PasswordChange, Outcome::Failure)
            .about(&user)
            .detail(Detail::new("current_refused").arg("refusal_key", bind_key(refusal)));
        self.auditor.record(meta, event).await?;
        if hides_account(refusal) {
            return Ok(Err(counted.wrong()));
        }
        self.uncount(counted).await?;
        Ok(Err(Refusal::Directory(refusal)))
    }

    /// Changes the password of a user who proved the current one (see [`Self::prove_current`]):
    /// one modify, so AD enforces history and minimum age.
    pub async fn change_password(
        &self,
        user: DirectoryUser,
        keys: &UserKeys,
        current: &SecretString,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<ChangeOutcome, LoginError> {
        let audit =
            |outcome, detail: Detail| AuditEvent::new(EventKind::PasswordChange, outcome).about(&user).detail(detail);
        match self.directory.change_password(&user.dn, current, new).await {
            Ok(ChangeResult::Changed) => {
                // The password is changed whatever happens next: a failure to record it is logged
                // (with the entry), not reported as the change failing, so that what follows a
                // change (ending the other sessions, the mail) still happens.
                if let Err(e) = self.auditor.record(meta, audit(Outcome::Success, Detail::new("changed"))).await {
                    tracing::error!(
                        reference = %meta.request_id, user_id = %user.id, error = %e,
                        "change: the password was changed but the audit entry was not written"
                    );
                }
                Ok(ChangeOutcome::Changed(user))
            }
            Ok(ChangeResult::CurrentRefused(refusal)) => {
                if hides_account(refusal) {
                    self.count_failure(keys, meta).await?;
                }
                self.auditor
                    .record(
                        meta,
                        audit(Outcome::Failure, Detail::new("current_refused").arg("refusal_key", bind_key(refusal))),
                    )
                    .await?;
                let refusal =
                    if hides_account(refusal) { Refusal::InvalidCredentials } else { Refusal::Directory(refusal) };
                Ok(ChangeOutcome::Refused(refusal))
            }
            Err(PasswordWriteError::Refused(refusal, text)) => {
                tracing::info!(ad = %text, "password change refused by AD");
                let detail = Detail::new("ad_refused").arg("reason_key", refusal.message_key());
                self.auditor.record(meta, audit(Outcome::Failure, detail)).await?;
                Ok(ChangeOutcome::AdRefused(refusal))
            }
            Err(PasswordWriteError::Directory(e @ DirectoryError::Unconfirmed { .. })) => {
                tracing::error!(reference = %meta.request_id, user_id = %user.id, error = %e, "change unconfirmed");
                let detail = Detail::new("unconfirmed");
                if let Err(e) = self.auditor.record(meta, audit(Outcome::Failure, detail)).await {
                    tracing::error!(reference = %meta.request_id, error = %e, "change: audit entry not written");
                }
                Ok(ChangeOutcome::Unconfirmed(user))
            }
            Err(PasswordWriteError::Directory(e)) => Err(e.into()),
        }
    }

    /// The logged-in user gives the password again (for admin pages, or before changing enrolled
    /// services): throttled and timed like a login; the roles and the account's state are read
    /// again, so a removed admin loses the rights and a disabled or locked account loses the session.
    pub async fn reauthenticate(
        &self,
        user: &SessionUser,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<Reauth, LoginError> {
        let mut watch = self.pacer.start();
        let result = self.reauth_attempt(user, password, meta, &mut watch).await;
        self.pacer.answer(watch).await;
        result
    }

    async fn reauth_attempt(
        &self,
        session_user: &SessionUser,
        password: &SecretString,
        meta: &RequestMeta,
        watch: &mut pace::Watch,
    ) -> Result<Reauth, LoginError> {
        // The user's own session: nothing to keep from them, nor to pace.
        watch.other();
        let audit = |outcome, detail: Detail| {
            AuditEvent::new(EventKind::AdminReauth, outcome)
                .username(&session_user.account_name)
                .user_id(&session_user.user_id)
                .detail(detail)
        };
        let (user, keys, counted) = match self.admit(&session_user.account_name, None, meta).await? {
            Admit::Go { user, keys, counted, .. } if user.id == session_user.user_id => (*user, keys, counted),
            // The user is known here: the wait is told, and nothing was tried.
            Admit::AccountFull { wait, counted, .. } => {
                self.uncount(counted).await?;
                match throttled(wait) {
                    LoginOutcome::Refused(r) => return Ok(Reauth::Refused(r)),
                    LoginOutcome::Success(_) => unreachable!("a wait is a refusal"),
                }
            }
            Admit::Go { counted, .. } => {
                self.uncount(counted).await?;
                self.auditor.record(meta, audit(Outcome::Failure, Detail::new("account_gone"))).await?;
                return Ok(Reauth::AccountUnusable);
            }
            Admit::Stop(LoginOutcome::Refused(Refusal::InvalidCredentials | Refusal::LastAttempt { .. })) => {
                self.auditor.record(meta, audit(Outcome::Failure, Detail::new("account_gone"))).await?;
                return Ok(Reauth::AccountUnusable);
            }
            Admit::Stop(LoginOutcome::Refused(r)) => return Ok(Reauth::Refused(r)),
            Admit::Stop(LoginOutcome::Success(_)) => unreachable!("admit never logs in"),
        };
        if user.closed_at(self.clock.now()) || user.locked {
            self.uncount(counted).await?;
            self.auditor.record(meta, audit(Outcome::Failure, Detail::new("disabled_session_ended"))).await?;
            return Ok(Reauth::AccountUnusable);
        }
        let check = self.directory.check_password(&user.dn, password).await?;
        match check {
            PasswordCheck::Accepted => {
                self.uncount_and_clear(counted, &keys).await?;
                let roles = self.roles(&user.dn).await?;
                self.auditor.record(meta, audit(Outcome::Success, with_roles(roles))).await?;
                Ok(Reauth::Confirmed { roles, password_set: user.password_set })
            }
            PasswordCheck::Refused(refusal) if refusal.is_bad_password() => {
                self.auditor.record(meta, audit(Outcome::Failure, bind_refused(refusal))).await?;
                Ok(Reauth::Refused(counted.wrong()))
            }
            PasswordCheck::Refused(refusal) => {
                self.uncount(counted).await?;
                self.auditor
                    .record(
                        meta,
                        audit(
                            Outcome::Failure,
                            Detail::new("refused_session_ended").arg("refusal_key", bind_key(refusal)),
                        ),
                    )
                    .await?;
                Ok(Reauth::AccountUnusable)
            }
        }
    }
}

/// A login's audit entry, to which the caller adds whom it is about: the account, or a name
/// typed that matches none (or before it is looked up), which the trail keeps as its tag.
fn entry(outcome: Outcome, detail: Detail) -> AuditEvent {
    AuditEvent::new(EventKind::Login, outcome).detail(detail)
}

/// Refusals that must read exactly like an unknown user: a wrong password, and a locked account
/// (AD answers 775 whatever the password, so telling it would tell anyone that the account exists
/// and is locked; the page offers unlocking to everyone instead).
fn hides_account(refusal: BindRefusal) -> bool {
    refusal.is_bad_password() || refusal == BindRefusal::AccountLocked
}

#[cfg(test)]
mod tests;
