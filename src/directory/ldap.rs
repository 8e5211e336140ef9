//! The real directory: ldap3 over LDAPS (or StartTLS) with rustls.

use std::collections::HashSet;

use async_trait::async_trait;

use ldap3::{Ldap, Mod, Scope, SearchEntry, ldap_escape};
use secrecy::{ExposeSecret, SecretString};

use super::dcs::{Dc, DcStatus, Dcs, Tried, who_am_i};
use super::entries::{
    EXPIRY_ATTR, PSO_ATTR, USER_ATTRS, expiry_time, first, old_password_wrong, password_written, to_user, unicode_pwd,
};
use super::policies::PolicyCache;
use super::policy::PSO_ATTRS;
use super::pool::PoolStatus;
use super::{
    BindRefusal, ChangeResult, Directory, DirectoryError, DirectoryUser, PasswordCheck, PasswordExpiry, PasswordPolicy,
    PasswordRefusal, PasswordSet, PasswordWriteError, PolicyRef, Username,
};
use crate::config::DirectorySettings;

/// LDAP's "in chain" matching rule: AD follows nested group membership.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

pub struct LdapDirectory {
    dcs: Dcs,
    base_dn: String,
    user_filter: String,
    /// What policies say, kept for `policy_cache_seconds`, as it changes seldom and every login
    /// and change needs it. Which PSO applies to a user is asked every time.
    policies: PolicyCache,
    /// The policy-hints control the DC supports (read once from the RootDSE), if any.
    hints: tokio::sync::OnceCell<Option<&'static str>>,
}

impl LdapDirectory {
    /// Reads the settings; connects only when first used.
    pub fn new(s: &DirectorySettings) -> Result<Self, DirectoryError> {
        let bind_password = s
            .bind_password()
            .map_err(|e| DirectoryError::ServiceAccountRefused { bind_dn: s.bind_dn.clone(), reason: e.to_string() })?;
        Ok(Self {
            dcs: Dcs::new(s, bind_password)?,
            base_dn: s.base_dn.clone(),
            user_filter: s.user_filter.clone(),
            policies: PolicyCache::new(std::time::Duration::from_secs(s.policy_cache_seconds)),
            hints: tokio::sync::OnceCell::new(),
        })
    }

    /// How many connections to the first domain controller are open now.
    pub fn pool_status(&self) -> PoolStatus {
        self.dcs.status()[0].pools
    }

    /// One search with a pooled service connection, on the first DC that answers (the user's
    /// pinned DC first, when the search is about a user).
    async fn search_once(
        &self,
        user_dn: Option<&str>,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        self.dcs
            .read(user_dn, |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = dc.link.search(&mut conn, (base, scope, filter), attrs, None).await;
                    conn.settle(result)
                })
            })
            .await
    }
}

impl LdapDirectory {
    /// Whether `dn` names an entry in the directory (check-config's test of the configured groups).
    pub async fn exists(&self, dn: &str) -> Result<bool, DirectoryError> {
        self.dcs
            .read(None, |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = dc.link.exists(&mut conn, dn).await;
                    conn.settle(result)
                })
            })
            .await
    }

    /// The policy-hints control this DC lists in its RootDSE (asked once).
    async fn policy_hints(&self) -> Result<Option<&'static str>, DirectoryError> {
        let oid = self
            .hints
            .get_or_try_init(|| async {
                let root = self.search_once(None, "", Scope::Base, "(objectClass=*)", &["supportedControl"]).await?;
                let supported = root.first().and_then(|e| e.attrs.get("supportedControl").cloned()).unwrap_or_default();
                let oid = super::hints::pick(&supported);
                tracing::info!(control = oid.unwrap_or("none"), "password history on resets (policy hints)");
                Ok::<_, DirectoryError>(oid)
            })
            .await?;
        Ok(*oid)
    }
}

impl LdapDirectory {
    /// The one user in scope matching `wanted`; none when several match. Which password policy
    /// applies to them is read in the same search (AD constructs `msDS-ResultantPSO` in subtree
    /// searches too), so that a login or change needs no second search for it. `pinned_for`: a
    /// user DN whose pinned DC (the one that last wrote their password) is asked first.
    async fn find_one(&self, wanted: &str, pinned_for: Option<&str>) -> Result<Option<DirectoryUser>, DirectoryError> {
        let filter = format!("(&{}{wanted})", self.user_filter);
        let attrs: Vec<&str> = USER_ATTRS.iter().copied().chain([PSO_ATTR]).collect();
        let mut entries = self.search_once(pinned_for, &self.base_dn, Scope::Subtree, &filter, &attrs).await?;
        if entries.len() > 1 {
            tracing::warn!(count = entries.len(), "several directory users match one login name; refusing all");
            return Ok(None);
        }
        Ok(entries.pop().and_then(|entry| {
            let pso = first(&entry, PSO_ATTR);
            to_user(entry).map(|user| DirectoryUser { policy: pso.map_or(PolicyRef::Domain, PolicyRef::Pso), ..user })
        }))
    }

    /// Every user in scope, paged, on one service connection.
    async fn read_all_users(&self, dc: &Dc, ldap: &mut Ldap) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let entries = self.read_all_entries(dc, ldap, &self.user_filter, USER_ATTRS).await?;
        Ok(entries.into_iter().filter_map(to_user).collect())
    }

    /// Every entry in scope that `filter` matches, with `attrs`, paged (200 a page).
    async fn read_all_entries(
        &self,
        dc: &Dc,
        ldap: &mut Ldap,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let adapters: Vec<Box<dyn Adapter<&str, Vec<&str>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(200))];
        let mut stream = dc
            .link
            .timed(ldap.streaming_search_with(adapters, &self.base_dn, Scope::Subtree, filter, attrs.to_vec()))
            .await?;
        let mut entries = Vec::new();
        while let Some(entry) = dc.link.timed(stream.next()).await? {
            entries.push(SearchEntry::construct(entry));
        }
        let _ = stream.finish().await;
        Ok(entries)
    }

    /// One modify with a pooled service connection, with `controls` when given; its LDAP result.
    /// The user is pinned to the DC that made it.
    async fn modify_once<S: AsRef<[u8]> + Eq + std::hash::Hash + Clone + Send + Sync>(
        &self,
        dn: &str,
        mods: Vec<Mod<S>>,
        controls: Option<Vec<ldap3::controls::RawControl>>,
    ) -> Result<ldap3::LdapResult, DirectoryError> {
        let (mods, controls) = (&mods, &controls);
        self.dcs
            .write(dn, Some(|r: &ldap3::LdapResult| r.rc == 0), |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.service().await.map_err(Tried::Before)?;
                    let result = match controls {
                        Some(c) => dc.link.timed(conn.with_controls(c.clone()).modify(dn, mods.clone())).await,
                        None => dc.link.timed(conn.modify(dn, mods.clone())).await,
                    };
                    conn.settle(result).map_err(Tried::After)
                })
            })
            .await
            .map_err(|tried| match tried {
                Tried::After(e) => e.after_sending_write(),
                Tried::Before(e) => e,
            })
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn find_user(&self, name: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        let wanted = match name {
            Username::Account(a) => format!("(sAMAccountName={})", ldap_escape(a.as_str())),
            Username::Principal(p) => {
                let p = ldap_escape(p.as_str());
                format!("(|(userPrincipalName={p})(mail={p}))")
            }
        };
        self.find_one(&wanted, None).await
    }

    async fn find_user_by_id(&self, id: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.find_user_by_id_where_written(id, None).await
    }

    async fn find_user_by_id_where_written(
        &self,
        id: &str,
        dn: Option<&str>,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        let Ok(guid) = uuid::Uuid::parse_str(id) else {
            return Ok(None);
        };
        let escaped: String = guid.to_bytes_le().iter().map(|b| format!("\\{b:02x}")).collect();
        self.find_one(&format!("(objectGUID={escaped})"), dn).await
    }

    async fn search_users(&self, text: &str, limit: usize) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let t = ldap_escape(text.trim());
        let filter = format!("(&{}(|(sAMAccountName=*{t}*)(displayName=*{t}*)(mail=*{t}*)))", self.user_filter);
        let (filter, sizelimit) = (filter.as_str(), i32::try_from(limit).ok());
        let entries = self
            .dcs
            .read(None, |dc| {
                Box::pin(async move {
                    let mut ldap = dc.pools.service().await?;
                    let query = (self.base_dn.as_str(), Scope::Subtree, filter);
                    let result = dc.link.search(&mut ldap, query, USER_ATTRS, sizelimit).await;
                    ldap.settle(result)
                })
            })
            .await?;
        let mut users: Vec<DirectoryUser> = entries.into_iter().filter_map(to_user).collect();
        users.sort_by_key(|u| u.account_name.to_lowercase());
        users.truncate(limit);
        Ok(users)
    }

    async fn all_users(&self) -> Result<Vec<DirectoryUser>, DirectoryError> {
        self.dcs
            .read(None, |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = self.read_all_users(dc, &mut conn).await;
                    conn.settle(result)
                })
            })
            .await
    }

    async fn password_sets_since(&self, since: crate::clock::Timestamp) -> Result<Vec<PasswordSet>, DirectoryError> {
        // A "must change" since then changed the entry since then (`whenChanged`, kept by each DC
        // for itself: a DC that got it later only finds it later), which leaves out the accounts
        // that have had to change their password since they were made.
        let filter = format!(
            "(&{}(|(pwdLastSet>={})(&(pwdLastSet=0)(whenChanged>={}))))",
            self.user_filter,
            super::entries::filetime_of(since),
            super::entries::generalized_time(since)
        );
        let attrs: Vec<&str> = USER_ATTRS.iter().copied().chain(["whenChanged"]).collect();
        let entries = self
            .dcs
            .read(None, |dc| {
                let (filter, attrs) = (&filter, &attrs);
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = self.read_all_entries(dc, &mut conn, filter, attrs).await;
                    conn.settle(result)
                })
            })
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let changed_at = first(&entry, "whenChanged").and_then(|v| super::entries::generalized_seconds(&v));
                Some(PasswordSet { user: to_user(entry)?, changed_at })
            })
            .collect())
    }

    async fn password_expiries(&self) -> Result<Vec<PasswordExpiry>, DirectoryError> {
        let attrs: Vec<&str> = USER_ATTRS.iter().copied().chain([EXPIRY_ATTR]).collect();
        let entries = self
            .dcs
            .read(None, |dc| {
                let attrs = &attrs;
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = self.read_all_entries(dc, &mut conn, &self.user_filter, attrs).await;
                    conn.settle(result)
                })
            })
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let expires_at = first(&entry, EXPIRY_ATTR).and_then(|v| expiry_time(&v))?;
                let user = to_user(entry).filter(|u| !u.disabled)?;
                Some(PasswordExpiry { user, expires_at })
            })
            .collect())
    }

    async fn fine_grained_policies(&self) -> Result<Vec<PasswordPolicy>, DirectoryError> {
        let root = self.search_once(None, "", Scope::Base, "(objectClass=*)", &["defaultNamingContext"]).await?;
        let Some(domain) = root.first().and_then(|e| first(e, "defaultNamingContext")) else {
            return Ok(Vec::new());
        };
        let container = format!("CN=Password Settings Container,CN=System,{domain}");
        let attrs: Vec<&str> = PSO_ATTRS.iter().copied().chain(["msDS-PasswordSettingsPrecedence"]).collect();
        let filter = "(objectClass=msDS-PasswordSettings)";
        let entries = self.search_once(None, &container, Scope::OneLevel, filter, &attrs).await?;
        let mut policies: Vec<(i64, PasswordPolicy)> = entries
            .iter()
            .map(|e| {
                let precedence =
                    first(e, "msDS-PasswordSettingsPrecedence").and_then(|p| p.parse().ok()).unwrap_or(i64::MAX);
                (precedence, PasswordPolicy::from_pso(&e.dn, &e.attrs))
            })
            .collect();
        policies.sort_by_key(|(precedence, _)| *precedence);
        Ok(policies.into_iter().map(|(_, p)| p).collect())
    }

    async fn attribute(&self, dn: &str, name: &str) -> Result<Option<String>, DirectoryError> {
        let entries = self.search_once(Some(dn), dn, Scope::Base, "(objectClass=*)", &[name]).await?;
        Ok(entries.first().and_then(|e| first(e, name)))
    }

    async fn check_password(&self, user_dn: &str, password: &SecretString) -> Result<PasswordCheck, DirectoryError> {
        // An LDAP bind with an empty password is an anonymous bind that "succeeds".
        if password.expose_secret().is_empty() {
            return Ok(PasswordCheck::Refused(BindRefusal::InvalidCredentials));
        }
        // A bind that reached a DC may have counted a wrong password there: only a DC that could
        // not be connected to is passed over.
        let result = self
            .dcs
            .write(user_dn, None, |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.for_user_bind().await.map_err(Tried::Before)?;
                    let result = dc.link.timed(conn.simple_bind(user_dn, password.expose_secret())).await;
                    conn.settle(result).map_err(Tried::After)
                })
            })
            .await
            .map_err(Tried::into_inner)?;
        match result.rc {
            0 => Ok(PasswordCheck::Accepted),
            49 => Ok(PasswordCheck::Refused(BindRefusal::from_diagnostic(&result.text))),
            rc => Err(DirectoryError::Protocol(format!("bind answered {rc} {}", result.text))),
        }
    }

    async fn is_member_of(&self, user_dn: &str, group_dn: &str) -> Result<bool, DirectoryError> {
        let filter = format!("(memberOf:{IN_CHAIN}:={})", ldap_escape(group_dn));
        Ok(!self.search_once(Some(user_dn), user_dn, Scope::Base, &filter, &["1.1"]).await?.is_empty())
    }

    async fn groups_of(&self, user_dn: &str) -> Result<Vec<String>, DirectoryError> {
        let filter = format!("(&(objectClass=group)(member:{IN_CHAIN}:={}))", ldap_escape(user_dn));
        let entries = self.search_once(Some(user_dn), &self.base_dn, Scope::Subtree, &filter, &["1.1"]).await?;
        let mut groups: Vec<String> = entries.into_iter().map(|e| e.dn).collect();
        groups.sort();
        Ok(groups)
    }

    async fn password_policy(&self, user_dn: Option<&str>) -> Result<PasswordPolicy, DirectoryError> {
        if user_dn.is_none()
            && let Some(policy) = self.policies.get("")
        {
            return Ok(policy);
        }
        self.dcs
            .read(user_dn, |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = self.policies.read_for(dc, &mut conn, user_dn).await;
                    conn.settle(result)
                })
            })
            .await
    }

    async fn policy_of(&self, user: &DirectoryUser) -> Result<PasswordPolicy, DirectoryError> {
        let pso = match &user.policy {
            PolicyRef::NotRead => return self.password_policy(Some(&user.dn)).await,
            PolicyRef::Domain => None,
            PolicyRef::Pso(dn) => Some(dn.as_str()),
        };
        if let Some(policy) = self.policies.get(pso.unwrap_or("")) {
            return Ok(policy);
        }
        self.dcs
            .read(Some(&user.dn), |dc| {
                Box::pin(async move {
                    let mut conn = dc.pools.service().await?;
                    let result = self.policies.read_named(dc, &mut conn, pso).await;
                    conn.settle(result)
                })
            })
            .await
    }

    async fn reset_password(
        &self,
        user_dn: &str,
        password: &SecretString,
        unlock: bool,
        must_change: bool,
    ) -> Result<(), PasswordWriteError> {
        let encoded = unicode_pwd(password.expose_secret());
        let mut mods: Vec<Mod<Vec<u8>>> = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([encoded]))];
        if unlock {
            mods.push(Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()])));
        }
        if must_change {
            mods.push(Mod::Replace(b"pwdLastSet".to_vec(), HashSet::from([b"0".to_vec()])));
        }
        // With the policy-hints control, AD enforces history and minimum age on this reset, as on a
        // change.
        let controls = self.policy_hints().await?.map(|oid| vec![super::hints::control(oid)]);
        password_written("password reset", self.modify_once(user_dn, mods, controls).await?)
    }

    async fn reset_enforces_history(&self) -> Result<bool, DirectoryError> {
        Ok(self.policy_hints().await?.is_some())
    }

    async fn change_password(
        &self,
        user_dn: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<ChangeResult, PasswordWriteError> {
        if current.expose_secret().is_empty() {
            return Ok(ChangeResult::CurrentRefused(BindRefusal::InvalidCredentials));
        }
        // AD grants everyone the Change Password right: the old value in the modify is the proof,
        // checked by AD in the same operation, so no bind as the user is needed (one round trip
        // fewer, and it works when the password has expired or must change).
        let mods: Vec<Mod<Vec<u8>>> = vec![
            Mod::Delete(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(current.expose_secret())])),
            Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(new.expose_secret())])),
        ];
        let result = self.modify_once(user_dn, mods, None).await?;
        match result.rc {
            // The old value did not match: AD (and Samba) answer a constraint violation with
            // ERROR_INVALID_PASSWORD (0x56), older servers "no such attribute" or 49.
            19 if old_password_wrong(&result.text) => Ok(ChangeResult::CurrentRefused(BindRefusal::InvalidCredentials)),
            16 | 49 => Ok(ChangeResult::CurrentRefused(BindRefusal::InvalidCredentials)),
            // Insufficient access: "User cannot change password" is set on the account.
            50 => Err(PasswordWriteError::Refused(PasswordRefusal::Other, result.text)),
            _ => password_written("password change", result).map(|()| ChangeResult::Changed),
        }
    }

    async fn unlock(&self, user_dn: &str) -> Result<(), DirectoryError> {
        let result = self.modify_once(user_dn, vec![Mod::Replace("lockoutTime", HashSet::from(["0"]))], None).await?;
        match result.rc {
            0 => Ok(()),
            rc => Err(DirectoryError::Protocol(format!("unlock answered {rc} {}", result.text))),
        }
    }

    fn domain_controllers(&self) -> Vec<DcStatus> {
        self.dcs.status()
    }

    async fn ping(&self) -> Result<(), DirectoryError> {
        self.dcs.read(None, |dc| Box::pin(who_am_i(dc))).await
    }

    async fn ping_each(&self) -> Vec<(String, Result<(), DirectoryError>)> {
        let asks = self.dcs.each().map(|dc| async move { (dc.link.url.clone(), who_am_i(dc).await) });
        futures_util::future::join_all(asks).await
    }
}
