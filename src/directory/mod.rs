//! The directory: Active Directory over LDAPS.
//!
//! [`Directory`] is what the rest of the portal uses; [`LdapDirectory`] is the real one. Unit tests
//! may use a fake; integration tests run against a real Samba AD DC.

mod dcs;
mod entries;
mod error;
#[cfg(test)]
pub mod fake;
mod hints;
mod ldap;
mod policies;
mod policy;
mod pool;
mod privileged;
mod username;

pub use error::{BindRefusal, CertProblem, DirectoryError, PasswordRefusal, PasswordWriteError};

pub use dcs::{DcStatus, PIN_SECONDS};
pub use entries::{filetime_of, filetime_seconds};
pub use ldap::LdapDirectory;
pub use policy::PasswordPolicy;
pub use pool::PoolStatus;
pub use privileged::{Privileged, Standing};
pub use username::{Username, UsernameError};

use async_trait::async_trait;
use secrecy::SecretString;

/// A user as the directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// objectGUID: stable across renames and moves. The portal keys everything on it.
    pub id: String,
    pub account_name: String,
    pub principal_name: Option<String>,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub mobile: Option<String>,
    /// userAccountControl's ACCOUNTDISABLE bit.
    pub disabled: bool,
    /// Locked out now (msDS-User-Account-Control-Computed's LOCKOUT bit).
    pub locked: bool,
    /// A built-in account AD itself needs (isCriticalSystemObject: Administrator, Guest, krbtgt).
    pub system: bool,
    /// Which password policy applies, when it was read with the user.
    pub policy: PolicyRef,
    /// `pwdLastSet` as AD gives it (a FILETIME): it changes whenever the password is set, by
    /// whoever and wherever.
    pub password_set: Option<String>,
    /// When the account expires (`accountExpires`, seconds since the epoch); None: never.
    pub expires_at: Option<i64>,
}

/// Which password policy applies to a user, as read with them (a single user's look-up reads it;
/// listings do not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    /// Not read with the user: [`Directory::policy_of`] asks.
    NotRead,
    /// The domain's.
    Domain,
    /// A fine-grained policy: the DN of its password settings object.
    Pso(String),
}

impl DirectoryUser {
    pub fn name_to_show(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.account_name)
    }

    /// Disabled, or past its `accountExpires` at `now`: no one may use the account, whatever
    /// they prove (AD refuses its binds, and the portal must not let it in another way).
    pub fn closed_at(&self, now: i64) -> bool {
        self.disabled || self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A user whose password expires, and when (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordExpiry {
    pub user: DirectoryUser,
    pub expires_at: i64,
}

/// A user whose password was set since a time (see [`Directory::password_sets_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSet {
    pub user: DirectoryUser,
    /// When the entry last changed on the DC read (`whenChanged`): when a "must change at the
    /// next logon" (`pwdLastSet` 0, no time) was set, at the latest.
    pub changed_at: Option<i64>,
}

/// The outcome of a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeResult {
    Changed,
    /// The current password was not accepted (or the account cannot be used).
    CurrentRefused(BindRefusal),
}

/// What the directory said about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Accepted,
    Refused(BindRefusal),
}

#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Finds exactly one user in scope by account name, principal name or mail.
    async fn find_user(&self, name: &Username) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// Finds a user in scope by objectGUID (as the portal stores it).
    async fn find_user_by_id(&self, id: &str) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// The same, asked first of the DC that last wrote the password of `dn` (while the others may
    /// not have it yet): for checks that compare what a password write changed.
    async fn find_user_by_id_where_written(
        &self,
        id: &str,
        _dn: Option<&str>,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.find_user_by_id(id).await
    }

    /// Users in scope whose account name, name or mail contains `text` (at most `limit`).
    async fn search_users(&self, text: &str, limit: usize) -> Result<Vec<DirectoryUser>, DirectoryError>;

    /// Every user in scope, read page by page (for tens of thousands of users).
    async fn all_users(&self) -> Result<Vec<DirectoryUser>, DirectoryError>;

    /// The users in scope whose password was set at or after `since`, or must be changed at the
    /// next logon (`pwdLastSet` 0) and whose entry changed since; one paged search.
    async fn password_sets_since(&self, since: crate::clock::Timestamp) -> Result<Vec<PasswordSet>, DirectoryError>;

    /// The objectGUID of every user in scope.
    async fn all_user_ids(&self) -> Result<Vec<String>, DirectoryError> {
        Ok(self.all_users().await?.into_iter().map(|u| u.id).collect())
    }

    /// One attribute's first value, read with the service account.
    async fn attribute(&self, dn: &str, name: &str) -> Result<Option<String>, DirectoryError>;

    /// Binds as the user with `password`. An empty password is refused without asking the directory.
    async fn check_password(&self, user_dn: &str, password: &SecretString) -> Result<PasswordCheck, DirectoryError>;

    /// Whether the user is in `group_dn`, directly or through nested groups.
    async fn is_member_of(&self, user_dn: &str, group_dn: &str) -> Result<bool, DirectoryError>;

    /// The distinguished names of every group the user is in, nesting included.
    async fn groups_of(&self, user_dn: &str) -> Result<Vec<String>, DirectoryError>;

    /// The password and lockout policy in force for the user, or the domain's when `user_dn` is None.
    async fn password_policy(&self, user_dn: Option<&str>) -> Result<PasswordPolicy, DirectoryError>;

    /// The policy in force for `user`, by the PSO read with them when it was (no search for which
    /// policy applies), otherwise as [`Self::password_policy`] asks.
    async fn policy_of(&self, user: &DirectoryUser) -> Result<PasswordPolicy, DirectoryError>;

    /// Sets a new password with the service account (`unicodePwd` replaced over LDAPS), optionally
    /// unlocking the account (`lockoutTime: 0`) and requiring a change at next logon (`pwdLastSet: 0`).
    async fn reset_password(
        &self,
        user_dn: &str,
        password: &SecretString,
        unlock: bool,
        must_change: bool,
    ) -> Result<(), PasswordWriteError>;

    /// Changes a password knowing the current one: one modify that deletes the old `unicodePwd`
    /// and adds the new, so that AD enforces history and minimum age. Made bound as the service
    /// account, which AD lets anyone do with the old password (the Change Password right is
    /// everyone's): AD checks the old value in the same operation, and counts a wrong one as a
    /// failed logon. Callers prove the current password with a bind first (which tells a locked or
    /// disabled account apart); this needs none of its own, so it works as well when the password
    /// has expired or must change.
    async fn change_password(
        &self,
        user_dn: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<ChangeResult, PasswordWriteError>;

    /// Whether a reset (`reset_password`) is made so that AD enforces the password history and
    /// minimum age (the DC supports the policy-hints control). False where it cannot be told.
    async fn reset_enforces_history(&self) -> Result<bool, DirectoryError> {
        Ok(false)
    }

    /// Unlocks the account without touching the password.
    async fn unlock(&self, user_dn: &str) -> Result<(), DirectoryError>;

    /// Connects and binds with the service account; for health and configuration checks.
    async fn ping(&self) -> Result<(), DirectoryError>;

    /// Every enabled user in scope whose password expires (`msDS-UserPasswordExpiryTimeComputed`,
    /// which follows fine-grained policies), with when; a paged search. Users whose password
    /// never expires, or must be changed at the next logon, are left out.
    async fn password_expiries(&self) -> Result<Vec<PasswordExpiry>, DirectoryError>;

    /// Every fine-grained password policy (PSO) in the domain, most precedent first (for the
    /// status page); empty when the service account cannot read them.
    async fn fine_grained_policies(&self) -> Result<Vec<PasswordPolicy>, DirectoryError>;

    /// Each domain controller: in use or skipped, and its connection pools (for monitoring).
    fn domain_controllers(&self) -> Vec<DcStatus> {
        Vec::new()
    }

    /// Asks each domain controller, all at once, whether it answers (the status page).
    async fn ping_each(&self) -> Vec<(String, Result<(), DirectoryError>)> {
        Vec::new()
    }
}
