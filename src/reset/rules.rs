//! The rules a new password must meet, for one user: AD's policy (or the user's fine-grained
//! one), our local rules, and the optional breach check. Used by resets and by changes.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::policy::{LocalRules, Rule, Rules};
use super::pwned::PwnedRange;
use crate::audit::Detail;
use crate::config::PasswordSettings;
use crate::directory::{Directory, DirectoryError, DirectoryUser, PasswordPolicy};

pub struct NewPasswordRules {
    directory: Arc<dyn Directory>,
    local: LocalRules,
    /// Check our rules before AD does (off only to see AD's own refusals).
    precheck: bool,
    pwned: Option<PwnedRange>,
}

impl NewPasswordRules {
    /// Fails only when the breach check's HTTP client cannot be built (its TLS set-up).
    pub fn new(directory: Arc<dyn Directory>, password: &PasswordSettings) -> Result<Self, reqwest::Error> {
        let pwned = match password.pwned_range_url.as_deref() {
            Some(url) => Some(PwnedRange::new(url, std::time::Duration::from_secs(3))?),
            None => None,
        };
        Ok(Self {
            directory,
            local: LocalRules {
                min_length: password.min_length,
                banned_words: password.banned_words.clone(),
                check_common: password.check_common,
            },
            precheck: password.precheck,
            pwned,
        })
    }

    /// The domain's rules with ours, for a form that does not know the user yet (no personal
    /// names to refuse).
    pub async fn for_domain(&self) -> Result<Rules, DirectoryError> {
        let policy = self.directory.password_policy(None).await?;
        Ok(Rules::new(&policy, &self.local, "", ""))
    }

    /// The rules for a user's new password.
    pub async fn for_user(&self, user: &DirectoryUser) -> Result<Rules, DirectoryError> {
        let policy = self.directory.policy_of(user).await?;
        Ok(self.with_policy(user, &policy))
    }

    /// As [`Self::for_user`], with the user's policy already read (None: read it now).
    pub async fn for_user_with(
        &self,
        user: &DirectoryUser,
        policy: Option<&PasswordPolicy>,
    ) -> Result<Rules, DirectoryError> {
        match policy {
            Some(policy) => Ok(self.with_policy(user, policy)),
            None => self.for_user(user).await,
        }
    }

    /// The rules for `user` under `policy`, already read.
    fn with_policy(&self, user: &DirectoryUser, policy: &PasswordPolicy) -> Rules {
        let rules = Rules::new(policy, &self.local, &user.account_name, user.name_to_show());
        if self.pwned.is_some() { rules.with_breach_check() } else { rules }
    }

    /// The rules a new password breaks (none when it may go to AD), the breach check included.
    pub async fn broken(&self, rules: &Rules, password: &SecretString, repeated: &SecretString) -> Vec<Rule> {
        if !self.precheck {
            return if password.expose_secret() == repeated.expose_secret() { Vec::new() } else { vec![Rule::Matches] };
        }
        let mut broken: Vec<Rule> =
            rules.broken(password.expose_secret(), repeated.expose_secret()).into_iter().cloned().collect();
        if let (true, Some(pwned)) = (broken.is_empty(), &self.pwned)
            && pwned.is_breached(password.expose_secret()).await == Some(true)
        {
            broken.push(Rule::NotBreached);
        }
        broken
    }
}

/// The rules a refused password broke, for the audit trail.
pub fn rules_refused(broken: &[Rule]) -> Detail {
    let keys: Vec<String> = broken.iter().map(|r| format!("audit.rule.{}", r.id())).collect();
    Detail::new("rules_refused").arg("rules_key", keys.join(","))
}
