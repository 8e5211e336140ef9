//! The password policies as read from AD (the domain's, and each fine-grained PSO's), kept a
//! while: what a policy says changes seldom, and every login and change asks for one.

use std::collections::HashMap;

use ldap3::{Ldap, Scope};

use super::dcs::Dc;
use super::entries::{PSO_ATTR, first};
use super::policy::{DOMAIN_ATTRS, PSO_ATTRS};
use super::{DirectoryError, PasswordPolicy};

/// What policies say, as read lately: the domain's under "", each PSO under its DN.
pub struct PolicyCache {
    kept: std::sync::Mutex<HashMap<String, (std::time::Instant, PasswordPolicy)>>,
    ttl: std::time::Duration,
}

impl PolicyCache {
    /// Keeps each policy for `ttl` (zero: not at all).
    pub fn new(ttl: std::time::Duration) -> Self {
        Self { kept: Default::default(), ttl }
    }

    pub(super) fn get(&self, key: &str) -> Option<PasswordPolicy> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, p)| p.clone())
    }

    fn keep(&self, key: &str, policy: &PasswordPolicy) {
        if !self.ttl.is_zero() {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            kept.insert(key.to_string(), (std::time::Instant::now(), policy.clone()));
        }
    }

    /// The policy in force for the user (their PSO when readable), or the domain's: one search
    /// for the PSO that applies, then [`Self::read_named`].
    pub(super) async fn read_for(
        &self,
        dc: &Dc,
        ldap: &mut Ldap,
        user_dn: Option<&str>,
    ) -> Result<PasswordPolicy, DirectoryError> {
        let pso = match user_dn {
            Some(dn) => {
                let user = dc.link.search(ldap, (dn, Scope::Base, "(objectClass=*)"), &[PSO_ATTR], None).await?;
                user.first().and_then(|e| first(e, PSO_ATTR))
            }
            None => None,
        };
        self.read_named(dc, ldap, pso.as_deref()).await
    }

    /// What the PSO `pso_dn` says when it can be read, otherwise (or with no PSO) the domain's
    /// policy; either kept for `policy_cache_seconds`, and so is a PSO that cannot be read (so that
    /// an account under one, often an admin's, costs no more searches than any other).
    pub(super) async fn read_named(
        &self,
        dc: &Dc,
        ldap: &mut Ldap,
        pso_dn: Option<&str>,
    ) -> Result<PasswordPolicy, DirectoryError> {
        let mut unreadable = false;
        if let Some(pso_dn) = pso_dn {
            if let Some(policy) = self.get(pso_dn) {
                return Ok(policy);
            }
            // Unreadable (no entry, no attributes, or "no such object" for what the service
            // account may not see): the most cautious rules below.
            let pso = dc.link.search_visible(ldap, (pso_dn, Scope::Base, "(objectClass=*)"), PSO_ATTRS).await?;
            match pso.first() {
                Some(entry) if entry.attrs.contains_key("msDS-MinimumPasswordLength") => {
                    let policy = PasswordPolicy::from_pso(pso_dn, &entry.attrs);
                    self.keep(pso_dn, &policy);
                    return Ok(policy);
                }
                _ => {
                    tracing::warn!(
                        pso = %pso_dn,
                        "a fine-grained password policy applies but the service account cannot read it; \
                         using the domain's password rules and the most cautious lockout threshold, 1 \
                         (grant read access to the Password Settings Container)"
                    );
                    unreadable = true;
                }
            }
        }
        let domain = match self.get("") {
            Some(policy) => policy,
            None => {
                let root =
                    dc.link.search(ldap, ("", Scope::Base, "(objectClass=*)"), &["defaultNamingContext"], None).await?;
                let domain_dn = root
                    .first()
                    .and_then(|e| first(e, "defaultNamingContext"))
                    .ok_or_else(|| DirectoryError::Protocol("the root DSE names no defaultNamingContext".into()))?;
                let domain =
                    dc.link.search(ldap, (&domain_dn, Scope::Base, "(objectClass=*)"), DOMAIN_ATTRS, None).await?;
                let attrs = domain.first().map(|e| e.attrs.clone()).unwrap_or_else(HashMap::new);
                let policy = PasswordPolicy::from_domain(&attrs);
                self.keep("", &policy);
                policy
            }
        };
        match pso_dn {
            Some(pso_dn) if unreadable => {
                let cautious = domain.with_unknown_lockout();
                self.keep(pso_dn, &cautious);
                Ok(cautious)
            }
            _ => Ok(domain),
        }
    }
}
