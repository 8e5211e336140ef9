//! Logging in with the AD password: look the user up, guard against guessing, bind as the user.
//!
//! The portal never locks an AD account itself: it stops asking the directory well before the
//! domain's lockout threshold. Unknown users are answered exactly like wrong passwords, in words
//! and in time.

mod details;
mod outcome;

pub use outcome::{Admit, ChangeOutcome, Counted, LoginOutcome, Proved, Reauth, Refusal, UserKeys};

use details::{bind_key, bind_refused, roles_key, with_roles};

use crate::throttle::Reserve;
pub use crate::throttle::{Limit, Throttle};

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::config::Settings;
use crate::directory::{
    BindRefusal, ChangeResult, Directory, DirectoryError, DirectoryUser, PasswordCheck, PasswordPolicy,
    PasswordWriteError, Username,
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

/// The scope a user's login failures are counted under.
pub const USER_SCOPE: &str = "login-user";
/// AD counts a failure when the bind reaches it, by its own clock: a quiet time that ends a run
/// of failures is taken as this much longer than AD's window.
const AD_CLOCK_SLACK: i64 = 120;
const IP_SCOPE: &str = "login-ip";

/// AD's default lockout observation window: the window counted over when the policy is unknown.
const UNKNOWN_WINDOW_SECONDS: i64 = 30 * 60;

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
    min_response: Duration,
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
            min_response: Duration::from_millis(l.min_response_ms),
        }
    }

    /// Failures allowed per user: the configured number, but always `lockout_margin` short of AD's
    /// threshold (the user's fine-grained one where a PSO applies), counted as AD counts them: a
    /// run of failures ends only after a quiet time longer than AD's observation window (the
    /// limit's window; [`Throttle::reserve_run`]), so failures spaced out just inside it cannot
    /// add up to a lockout. A policy that could not be read allows one failure per window (AD's
    /// threshold might be as low as that).
    fn user_limit(&self, policy: Option<&PasswordPolicy>) -> Limit {
        let Some(policy) = policy else {
            let window = self.window_seconds.max(UNKNOWN_WINDOW_SECONDS) + AD_CLOCK_SLACK;
            return Limit { max_failures: 1, window_seconds: window };
        };
        let mut max = self.max_per_user;
        if policy.lockout_threshold > 0 {
            max = max.min(policy.lockout_threshold.saturating_sub(self.margin).max(1));
        }
        // AD locks nothing with a threshold of 0: its window does not matter then.
        let ad_window = if policy.lockout_threshold > 0 { policy.lockout_window_minutes as i64 * 60 } else { 0 };
        Limit { max_failures: max, window_seconds: self.window_seconds.max(ad_window) + AD_CLOCK_SLACK }
    }

    pub async fn login(
        &self,
        typed: &str,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        self.floored(self.attempt(typed, password, meta)).await
    }

    /// Every answer to a password takes at least the floor, whichever path it took, so that time
    /// does not tell an unknown name from a wrong password.
    async fn floored<T>(&self, attempt: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let result = attempt.await;
        tokio::time::sleep_until(started + self.min_response).await;
        result
    }

    /// Everything before the password is tried: the address and user limits, and the look-up.
    /// The try is counted first and decided after (so that a burst of parallel tries can never all
    /// slip under the limit); unknown names count and read exactly like wrong passwords.
    async fn admit(&self, typed: &str, meta: &RequestMeta) -> Result<Admit, LoginError> {
        let name = Username::parse(typed, &self.netbios_domain);
        // What a name that matches no account is audited and counted under (as its tag): one
        // name however it is written (`EXAMPLE\x`, `x`).
        let said = name.as_ref().map(Username::key).unwrap_or_else(|_| typed.to_string());
        let ip_limit = Limit { max_failures: self.max_per_ip, window_seconds: self.window_seconds };
        let ip_key = crate::throttle::address_key(&meta.source_ip);
        let ip = match self.throttle.reserve(IP_SCOPE, &ip_key, ip_limit).await? {
            Reserve::Granted(attempt) => attempt,
            Reserve::Blocked { wait } => {
                self.auditor
                    .record(meta, entry(Outcome::Blocked, Detail::new("throttled_address")).typed(&said))
                    .await?;
                return Ok(Admit::Stop(throttled(wait)));
            }
        };

        let user = match &name {
            Ok(name) => self.directory.find_user(name).await?,
            Err(_) => None,
        };
        // Unknown names are throttled like real ones, so the limit reveals nothing; they are
        // counted under their tag, never as typed (it may be a password).
        let name_key = |name: &str| format!("name:{}", self.auditor.tag(name));
        let names = match &user {
            Some(u) => [Some(&u.account_name), u.principal_name.as_ref(), u.mail.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|n| Username::parse(n, &self.netbios_domain).ok())
                .map(|n| name_key(&n.key()))
                .collect(),
            None => Vec::new(),
        };
        let keys = UserKeys { typed: name_key(&said), account: user.as_ref().map(|u| format!("id:{}", u.id)), names };
        let policy = match &user {
            Some(user) => self.directory.policy_of(user).await.ok(),
            None => self.directory.password_policy(None).await.ok(),
        };
        let limit = self.user_limit(policy.as_ref());
        let window_minutes = (limit.window_seconds + 59) / 60;
        let mut counted = match self.throttle.reserve_run(USER_SCOPE, &keys.typed, limit).await? {
            Reserve::Granted(attempt) => Counted { ip, user: attempt, account: None, window_minutes },
            Reserve::Blocked { wait } => {
                // Nothing was tried: the address's count is taken back.
                self.throttle.release(ip).await?;
                let event = entry(Outcome::Blocked, Detail::new("throttled_user"));
                self.auditor
                    .record(meta, if let Some(u) = &user { event.about(u) } else { event.typed(&said) })
                    .await?;
                return Ok(Admit::Stop(throttled(wait)));
            }
        };
        if let (Some(key), Some(u)) = (&keys.account, &user) {
            match self.throttle.reserve_run(USER_SCOPE, key, limit).await? {
                Reserve::Granted(attempt) => counted.account = Some(attempt),
                Reserve::Blocked { wait } => {
                    // Counted as a wrong password is (an unknown name's try is one too).
                    let event = entry(Outcome::Blocked, Detail::new("throttled_account")).about(u);
                    self.auditor.record(meta, event).await?;
                    return Ok(Admit::AccountFull { told: counted.wrong(), wait, counted });
                }
            }
        }

        let Some(user) = user else {
            let why = if name.is_err() { "not_an_account_name" } else { "no_such_user" };
            self.auditor.record(meta, entry(Outcome::Failure, Detail::new(why)).typed(&said)).await?;
            return Ok(Admit::Stop(LoginOutcome::Refused(counted.wrong())));
        };
        Ok(Admit::Go { user: Box::new(user), keys, counted, policy: policy.map(Box::new) })
    }

    /// The try was no failure (the password was right, or AD refused for another reason that it
    /// tells only with the right password): its counts are taken back.
    async fn uncount(&self, counted: Counted) -> Result<(), StorageError> {
        self.throttle.release_all(&counted.attempts(), None).await
    }

    /// The password was right: the try's counts are taken back and the user's failures forgotten
    /// (under the account and each of its names).
    async fn uncount_and_clear(&self, counted: Counted, keys: &UserKeys) -> Result<(), StorageError> {
        self.throttle.release_all(&counted.attempts(), Some((USER_SCOPE, &keys.cleared()))).await
    }

    async fn attempt(
        &self,
        typed: &str,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        let (user, keys, counted) = match self.admit(typed, meta).await? {
            Admit::Go { user, keys, counted, .. } => (*user, keys, counted),
            Admit::Stop(outcome) => return Ok(outcome),
            Admit::AccountFull { told, .. } => return Ok(LoginOutcome::Refused(told)),
        };

        match self.directory.check_password(&user.dn, password).await? {
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
        self.floored(self.prove_attempt(typed, current, known, meta)).await
    }

    async fn prove_attempt(
        &self,
        typed: &str,
        current: &SecretString,
        known: bool,
        meta: &RequestMeta,
    ) -> Result<Result<Proved, Refusal>, LoginError> {
        let (user, keys, counted, policy) = match self.admit(typed, meta).await? {
            Admit::Go { user, keys, counted, policy } => (*user, keys, counted, policy),
            Admit::AccountFull { wait, counted, .. } if known => {
                self.uncount(counted).await?;
                return Ok(Err(Refusal::Throttled { minutes: (wait + 59) / 60 }));
            }
            Admit::Stop(LoginOutcome::Refused(r)) | Admit::AccountFull { told: r, .. } => return Ok(Err(r)),
            Admit::Stop(LoginOutcome::Success(_)) => unreachable!("admit never logs in"),
        };
        let refusal = match self.directory.check_password(&user.dn, current).await? {
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
        self.floored(self.reauth_attempt(user, password, meta)).await
    }

    async fn reauth_attempt(
        &self,
        session_user: &SessionUser,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<Reauth, LoginError> {
        let audit = |outcome, detail: Detail| {
            AuditEvent::new(EventKind::AdminReauth, outcome)
                .username(&session_user.account_name)
                .user_id(&session_user.user_id)
                .detail(detail)
        };
        let (user, keys, counted) = match self.admit(&session_user.account_name, meta).await? {
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
        match self.directory.check_password(&user.dn, password).await? {
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

    async fn count_failure(&self, keys: &UserKeys, meta: &RequestMeta) -> Result<(), StorageError> {
        for key in keys.all() {
            self.throttle.fail(USER_SCOPE, key).await?;
        }
        self.throttle.fail(IP_SCOPE, &crate::throttle::address_key(&meta.source_ip)).await
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

fn throttled(wait_seconds: i64) -> LoginOutcome {
    let minutes = (wait_seconds + 59) / 60;
    LoginOutcome::Refused(Refusal::Throttled { minutes })
}

#[cfg(test)]
mod tests;
