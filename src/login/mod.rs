//! Logging in with the AD password: look the user up, guard against guessing, bind as the user.
//!
//! The portal never locks an AD account itself: it stops asking the directory well before the
//! domain's lockout threshold. Unknown users are answered exactly like wrong passwords, in words
//! and in time.

pub use crate::throttle::{Limit, Throttle};

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use crate::audit::{AuditEvent, Auditor, EventKind, Outcome, RequestMeta};
use crate::config::Settings;
use crate::directory::{
    BindRefusal, ChangeResult, Directory, DirectoryError, DirectoryUser, PasswordCheck, PasswordPolicy,
    PasswordRefusal, PasswordWriteError, Username,
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

/// Why a login did not succeed, in terms the user may be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong password, unknown user, or a name that cannot be an account: all read the same.
    InvalidCredentials,
    /// Too many failures; try again after this many minutes.
    Throttled { minutes: i64 },
    /// AD refused for a reason the user must know (locked, disabled, must change password...).
    Directory(BindRefusal),
}

/// What a password change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed(DirectoryUser),
    /// The current password or the account was refused (as for a login).
    Refused(Refusal),
    /// AD refused the new password.
    AdRefused(PasswordRefusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Success(SessionUser),
    Refused(Refusal),
}

/// Whether a password may be tried for a typed name.
pub enum Admit {
    Go { user: DirectoryUser, user_key: String },
    Stop(LoginOutcome),
}

const USER_SCOPE: &str = "login-user";
const IP_SCOPE: &str = "login-ip";

pub struct LoginService {
    directory: Arc<dyn Directory>,
    throttle: Throttle,
    auditor: Auditor,
    netbios_domain: String,
    admin_group: Option<String>,
    helpdesk_group: Option<String>,
    reporting_group: Option<String>,
    max_per_user: u32,
    max_per_ip: u32,
    margin: u32,
    window_seconds: i64,
    min_response: Duration,
}

impl LoginService {
    pub fn new(settings: &Settings, directory: Arc<dyn Directory>, throttle: Throttle, auditor: Auditor) -> Self {
        let l = &settings.login;
        Self {
            directory,
            throttle,
            auditor,
            netbios_domain: settings.directory.netbios_domain.clone(),
            admin_group: settings.directory.admin_group.clone(),
            helpdesk_group: settings.directory.helpdesk_group.clone(),
            reporting_group: settings.directory.reporting_group.clone(),
            max_per_user: l.max_failures_per_user,
            max_per_ip: l.max_failures_per_ip,
            margin: l.lockout_margin,
            window_seconds: l.window_minutes as i64 * 60,
            min_response: Duration::from_millis(l.min_response_ms),
        }
    }

    /// The domain policy (the directory keeps it for `directory.policy_cache_seconds`).
    pub async fn domain_policy(&self) -> Result<PasswordPolicy, DirectoryError> {
        self.directory.password_policy(None).await
    }

    /// Failures allowed per user: the configured number, but always `lockout_margin` short of AD's threshold.
    fn user_limit(&self, policy: Option<&PasswordPolicy>) -> Limit {
        let mut max = self.max_per_user;
        if let Some(threshold) = policy.map(|p| p.lockout_threshold).filter(|t| *t > 0) {
            max = max.min(threshold.saturating_sub(self.margin).max(1));
        }
        Limit { max_failures: max, window_seconds: self.window_seconds }
    }

    pub async fn login(
        &self,
        typed: &str,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        let started = Instant::now();
        let result = self.attempt(typed, password, meta).await;
        // Every answer takes at least the floor, whichever path it took.
        tokio::time::sleep_until(started + self.min_response).await;
        result
    }

    /// Everything before the password is tried: the address and user limits, and the look-up.
    /// Unknown names count and read exactly like wrong passwords.
    async fn admit(&self, typed: &str, meta: &RequestMeta) -> Result<Admit, LoginError> {
        let audit_name: String = typed.trim().chars().take(256).collect();
        let ip_limit = Limit { max_failures: self.max_per_ip, window_seconds: self.window_seconds };
        if let Some(wait) = self.throttle.blocked_for(IP_SCOPE, &meta.source_ip, ip_limit).await? {
            self.audit(meta, Outcome::Blocked, &audit_name, None, "too many failures from this address").await?;
            return Ok(Admit::Stop(throttled(wait)));
        }

        let name = Username::parse(typed, &self.netbios_domain);
        let user = match &name {
            Ok(name) => self.directory.find_user(name).await?,
            Err(_) => None,
        };
        // Unknown names are throttled like real ones, so the limit reveals nothing.
        let user_key = match (&user, &name) {
            (Some(u), _) => format!("id:{}", u.id),
            (None, Ok(n)) => format!("name:{}", n.key()),
            (None, Err(_)) => format!("name:{}", audit_name.to_lowercase()),
        };
        let policy = self.domain_policy().await.ok();
        if let Some(wait) = self.throttle.blocked_for(USER_SCOPE, &user_key, self.user_limit(policy.as_ref())).await? {
            let id = user.as_ref().map(|u| u.id.as_str());
            self.audit(meta, Outcome::Blocked, &audit_name, id, "too many failures for this user").await?;
            return Ok(Admit::Stop(throttled(wait)));
        }

        let Some(user) = user else {
            self.count_failure(&user_key, meta).await?;
            let why = if name.is_err() { "not a valid account name" } else { "no such user" };
            self.audit(meta, Outcome::Failure, &audit_name, None, why).await?;
            return Ok(Admit::Stop(LoginOutcome::Refused(Refusal::InvalidCredentials)));
        };
        Ok(Admit::Go { user, user_key })
    }

    async fn attempt(
        &self,
        typed: &str,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, LoginError> {
        let (user, user_key) = match self.admit(typed, meta).await? {
            Admit::Go { user, user_key } => (user, user_key),
            Admit::Stop(outcome) => return Ok(outcome),
        };

        match self.directory.check_password(&user.dn, password).await? {
            PasswordCheck::Refused(refusal) => {
                if refusal.is_bad_password() {
                    self.count_failure(&user_key, meta).await?;
                }
                self.audit(meta, Outcome::Failure, &user.account_name, Some(&user.id), refusal.id()).await?;
                let refusal =
                    if refusal.is_bad_password() { Refusal::InvalidCredentials } else { Refusal::Directory(refusal) };
                Ok(LoginOutcome::Refused(refusal))
            }
            PasswordCheck::Accepted => {
                self.throttle.clear(USER_SCOPE, &user_key).await?;
                let roles = self.roles(&user.dn).await?;
                let is_admin = roles.admin;
                let detail = if roles.any() { roles.to_list() } else { "user".to_string() };
                self.audit(meta, Outcome::Success, &user.account_name, Some(&user.id), &detail).await?;
                Ok(LoginOutcome::Success(SessionUser {
                    display_name: user.name_to_show().to_string(),
                    user_id: user.id,
                    user_dn: user.dn,
                    account_name: user.account_name,
                    is_admin,
                    roles,
                }))
            }
        }
    }

    /// The user's portal roles: membership of each configured group, nesting included (wherever
    /// in the domain the groups are, whatever the user search base).
    async fn roles(&self, user_dn: &str) -> Result<Roles, DirectoryError> {
        let member = async |g: &Option<String>| -> Result<bool, DirectoryError> {
            match g {
                Some(group) => self.directory.is_member_of(user_dn, group).await,
                None => Ok(false),
            }
        };
        Ok(Roles {
            admin: member(&self.admin_group).await?,
            helpdesk: member(&self.helpdesk_group).await?,
            reporting: member(&self.reporting_group).await?,
        })
    }

    /// Logs in a user who proved who they are another way (BankID): the account must still be usable.
    /// Returns None when it is disabled, locked or gone.
    pub async fn login_verified(
        &self,
        user_id: &str,
        method: &str,
        meta: &RequestMeta,
    ) -> Result<Option<SessionUser>, LoginError> {
        let user = self.directory.find_user_by_id(user_id).await?;
        let Some(user) = user.filter(|u| !u.disabled && !u.locked) else {
            self.audit(
                meta,
                Outcome::Failure,
                "",
                Some(user_id),
                &format!("{method}: account disabled, locked or gone"),
            )
            .await?;
            return Ok(None);
        };
        let roles = self.roles(&user.dn).await?;
        let is_admin = roles.admin;
        let detail = format!("{method}, {}", if roles.any() { roles.to_list() } else { "user".to_string() });
        self.audit(meta, Outcome::Success, &user.account_name, Some(&user.id), &detail).await?;
        Ok(Some(SessionUser {
            display_name: user.name_to_show().to_string(),
            user_id: user.id,
            user_dn: user.dn,
            account_name: user.account_name,
            is_admin,
            roles,
        }))
    }

    /// Changes a password knowing the current one (for the logged-in user, or a typed name):
    /// the same limits as logging in, and a wrong current password counts as a failed login.
    pub async fn change_password(
        &self,
        typed: &str,
        current: &SecretString,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<ChangeOutcome, LoginError> {
        let started = Instant::now();
        let result = self.change_attempt(typed, current, new, meta).await;
        tokio::time::sleep_until(started + self.min_response).await;
        result
    }

    async fn change_attempt(
        &self,
        typed: &str,
        current: &SecretString,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<ChangeOutcome, LoginError> {
        let (user, user_key) = match self.admit(typed, meta).await? {
            Admit::Go { user, user_key } => (user, user_key),
            Admit::Stop(LoginOutcome::Refused(r)) => return Ok(ChangeOutcome::Refused(r)),
            Admit::Stop(LoginOutcome::Success(_)) => unreachable!("admit never logs in"),
        };
        let audit = |outcome, detail: String| {
            AuditEvent::new(EventKind::PasswordChange, outcome)
                .username(&user.account_name)
                .user_id(&user.id)
                .detail(detail)
        };
        match self.directory.change_password(&user.dn, current, new).await {
            Ok(ChangeResult::Changed) => {
                self.throttle.clear(USER_SCOPE, &user_key).await?;
                self.auditor.record(meta, audit(Outcome::Success, "changed".into())).await?;
                Ok(ChangeOutcome::Changed(user))
            }
            Ok(ChangeResult::CurrentRefused(refusal)) => {
                if refusal.is_bad_password() {
                    self.count_failure(&user_key, meta).await?;
                }
                self.auditor
                    .record(meta, audit(Outcome::Failure, format!("current password: {}", refusal.id())))
                    .await?;
                let refusal =
                    if refusal.is_bad_password() { Refusal::InvalidCredentials } else { Refusal::Directory(refusal) };
                Ok(ChangeOutcome::Refused(refusal))
            }
            Err(PasswordWriteError::Refused(refusal, text)) => {
                self.auditor.record(meta, audit(Outcome::Failure, format!("refused by AD: {text}"))).await?;
                Ok(ChangeOutcome::AdRefused(refusal))
            }
            Err(PasswordWriteError::Directory(e)) => Err(e.into()),
        }
    }

    /// The user behind a typed name, for showing the rules before a change (no limits counted).
    pub async fn lookup(&self, typed: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        match Username::parse(typed, &self.netbios_domain) {
            Ok(name) => self.directory.find_user(&name).await,
            Err(_) => Ok(None),
        }
    }

    async fn count_failure(&self, user_key: &str, meta: &RequestMeta) -> Result<(), StorageError> {
        self.throttle.fail(USER_SCOPE, user_key).await?;
        self.throttle.fail(IP_SCOPE, &meta.source_ip).await
    }

    async fn audit(
        &self,
        meta: &RequestMeta,
        outcome: Outcome,
        name: &str,
        user_id: Option<&str>,
        detail: &str,
    ) -> Result<(), StorageError> {
        let mut event = AuditEvent::new(EventKind::Login, outcome).username(name).detail(detail);
        if let Some(id) = user_id {
            event = event.user_id(id);
        }
        self.auditor.record(meta, event).await
    }
}

fn throttled(wait_seconds: i64) -> LoginOutcome {
    let minutes = (wait_seconds + 59) / 60;
    LoginOutcome::Refused(Refusal::Throttled { minutes })
}
