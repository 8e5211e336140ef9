//! The real directory: ldap3 over LDAPS (or StartTLS) with rustls.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use std::collections::HashSet;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, ldap_escape};
use rustls::{ClientConfig, RootCertStore};
use secrecy::{ExposeSecret, SecretString};

use super::policy::{DOMAIN_ATTRS, PSO_ATTRS};
use super::{
    BindRefusal, ChangeResult, Directory, DirectoryError, DirectoryUser, PasswordCheck, PasswordPolicy,
    PasswordRefusal, PasswordWriteError, Username,
};
use crate::config::DirectorySettings;

/// LDAP's "in chain" matching rule: AD follows nested group membership.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
const USER_ATTRS: &[&str] = &[
    "objectGUID",
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "mail",
    "mobile",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
];
const UF_ACCOUNTDISABLE: u32 = 0x2;
const UF_LOCKOUT: u32 = 0x10;

pub struct LdapDirectory {
    url: String,
    starttls: bool,
    tls: Arc<ClientConfig>,
    bind_dn: String,
    bind_password: SecretString,
    base_dn: String,
    user_filter: String,
    connect_timeout: Duration,
    op_timeout: Duration,
}

impl LdapDirectory {
    pub fn new(s: &DirectorySettings) -> Result<Self, DirectoryError> {
        let bind_password = s
            .bind_password()
            .map_err(|e| DirectoryError::ServiceAccountRefused { bind_dn: s.bind_dn.clone(), reason: e.to_string() })?;
        Ok(Self {
            url: s.url.clone(),
            starttls: s.starttls,
            tls: Arc::new(tls_config(s)?),
            bind_dn: s.bind_dn.clone(),
            bind_password,
            base_dn: s.base_dn.clone(),
            user_filter: s.user_filter.clone(),
            connect_timeout: Duration::from_secs(s.connect_timeout_seconds),
            op_timeout: Duration::from_secs(s.operation_timeout_seconds),
        })
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.starttls);
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| self.classify(e, self.connect_timeout))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn service_connection(&self) -> Result<Ldap, DirectoryError> {
        let mut ldap = self.connect().await?;
        let result = self.timed(ldap.simple_bind(&self.bind_dn, self.bind_password.expose_secret())).await?;
        if result.rc != 0 {
            return Err(DirectoryError::ServiceAccountRefused {
                bind_dn: self.bind_dn.clone(),
                reason: format!("result {} {}", result.rc, result.text),
            });
        }
        Ok(ldap)
    }

    /// Runs one LDAP operation under the operation timeout.
    async fn timed<T>(&self, op: impl Future<Output = ldap3::result::Result<T>>) -> Result<T, DirectoryError> {
        match tokio::time::timeout(self.op_timeout, op).await {
            Ok(result) => result.map_err(|e| self.classify(e, self.op_timeout)),
            Err(_) => Err(DirectoryError::Timeout { url: self.url.clone(), seconds: self.op_timeout.as_secs() }),
        }
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let (entries, result) = self
            .timed(ldap.search(base, scope, filter, attrs.to_vec()))
            .await?
            .non_error()
            .map_err(|e| self.classify(e, self.op_timeout))?;
        // 32: noSuchObject, e.g. a base that does not exist: no entries.
        if result.rc == 32 {
            return Ok(Vec::new());
        }
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    fn classify(&self, e: LdapError, timeout: Duration) -> DirectoryError {
        let url = self.url.clone();
        match e {
            LdapError::Timeout { .. } => DirectoryError::Timeout { url, seconds: timeout.as_secs() },
            LdapError::Io { source } => classify_io(url, &source),
            LdapError::Rustls { source } => DirectoryError::UntrustedCertificate { url, reason: source.to_string() },
            LdapError::LdapResult { result } => {
                DirectoryError::Protocol(format!("result {} {}", result.rc, result.text))
            }
            other => DirectoryError::Protocol(other.to_string()),
        }
    }
}

fn classify_io(url: String, e: &io::Error) -> DirectoryError {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return DirectoryError::UntrustedCertificate { url, reason: tls.to_string() };
    }
    if e.kind() == io::ErrorKind::TimedOut {
        return DirectoryError::Timeout { url, seconds: 0 };
    }
    DirectoryError::Unreachable { url, reason: e.to_string() }
}

/// rustls settings: the configured CA file, or the system's roots. Verification is never off.
fn tls_config(s: &DirectorySettings) -> Result<ClientConfig, DirectoryError> {
    let mut roots = RootCertStore::empty();
    match &s.ca_file {
        Some(path) => {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let ca_error = |reason: String| DirectoryError::CaFile { path: path.display().to_string(), reason };
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("it holds no PEM certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry.attrs.get(attr).and_then(|v| v.first()).cloned()
}

/// AD's `unicodePwd`: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn flags(entry: &SearchEntry, attr: &str) -> u32 {
    first(entry, attr).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) as u32
}

fn to_user(entry: SearchEntry) -> Option<DirectoryUser> {
    let guid = entry.bin_attrs.get("objectGUID").and_then(|v| v.first())?;
    let id = uuid::Uuid::from_slice_le(guid).ok()?.to_string();
    Some(DirectoryUser {
        id,
        account_name: first(&entry, "sAMAccountName")?,
        principal_name: first(&entry, "userPrincipalName"),
        display_name: first(&entry, "displayName"),
        mail: first(&entry, "mail"),
        mobile: first(&entry, "mobile"),
        disabled: flags(&entry, "userAccountControl") & UF_ACCOUNTDISABLE != 0,
        locked: flags(&entry, "msDS-User-Account-Control-Computed") & UF_LOCKOUT != 0,
        dn: entry.dn,
    })
}

impl LdapDirectory {
    /// The one user in scope matching `wanted`; none when several match.
    async fn find_one(&self, wanted: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        let filter = format!("(&{}{wanted})", self.user_filter);
        let mut ldap = self.service_connection().await?;
        let mut entries = self.search(&mut ldap, &self.base_dn, Scope::Subtree, &filter, USER_ATTRS).await?;
        let _ = ldap.unbind().await;
        if entries.len() > 1 {
            tracing::warn!(count = entries.len(), "several directory users match one login name; refusing all");
            return Ok(None);
        }
        Ok(entries.pop().and_then(to_user))
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
        self.find_one(&wanted).await
    }

    async fn find_user_by_id(&self, id: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        let Ok(guid) = uuid::Uuid::parse_str(id) else {
            return Ok(None);
        };
        let escaped: String = guid.to_bytes_le().iter().map(|b| format!("\\{b:02x}")).collect();
        self.find_one(&format!("(objectGUID={escaped})")).await
    }

    async fn search_users(&self, text: &str, limit: usize) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let t = ldap_escape(text.trim());
        let filter = format!("(&{}(|(sAMAccountName=*{t}*)(displayName=*{t}*)(mail=*{t}*)))", self.user_filter);
        let mut ldap = self.service_connection().await?;
        let entries = self.search(&mut ldap, &self.base_dn, Scope::Subtree, &filter, USER_ATTRS).await?;
        let _ = ldap.unbind().await;
        let mut users: Vec<DirectoryUser> = entries.into_iter().filter_map(to_user).collect();
        users.sort_by_key(|u| u.account_name.to_lowercase());
        users.truncate(limit);
        Ok(users)
    }

    async fn all_users(&self) -> Result<Vec<DirectoryUser>, DirectoryError> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let mut ldap = self.service_connection().await?;
        let adapters: Vec<Box<dyn Adapter<&str, Vec<&str>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(200))];
        let mut stream = self
            .timed(ldap.streaming_search_with(
                adapters,
                &self.base_dn,
                Scope::Subtree,
                &self.user_filter,
                USER_ATTRS.to_vec(),
            ))
            .await?;
        let mut users = Vec::new();
        while let Some(entry) = self.timed(stream.next()).await? {
            if let Some(user) = to_user(SearchEntry::construct(entry)) {
                users.push(user);
            }
        }
        let _ = stream.finish().await;
        let _ = ldap.unbind().await;
        Ok(users)
    }

    async fn attribute(&self, dn: &str, name: &str) -> Result<Option<String>, DirectoryError> {
        let mut ldap = self.service_connection().await?;
        let entries = self.search(&mut ldap, dn, Scope::Base, "(objectClass=*)", &[name]).await?;
        let _ = ldap.unbind().await;
        Ok(entries.first().and_then(|e| first(e, name)))
    }

    async fn check_password(&self, user_dn: &str, password: &SecretString) -> Result<PasswordCheck, DirectoryError> {
        // An LDAP bind with an empty password is an anonymous bind that "succeeds".
        if password.expose_secret().is_empty() {
            return Ok(PasswordCheck::Refused(BindRefusal::InvalidCredentials));
        }
        let mut ldap = self.connect().await?;
        let result = self.timed(ldap.simple_bind(user_dn, password.expose_secret())).await?;
        let _ = ldap.unbind().await;
        match result.rc {
            0 => Ok(PasswordCheck::Accepted),
            49 => Ok(PasswordCheck::Refused(BindRefusal::from_diagnostic(&result.text))),
            rc => Err(DirectoryError::Protocol(format!("bind answered {rc} {}", result.text))),
        }
    }

    async fn is_member_of(&self, user_dn: &str, group_dn: &str) -> Result<bool, DirectoryError> {
        let filter = format!("(memberOf:{IN_CHAIN}:={})", ldap_escape(group_dn));
        let mut ldap = self.service_connection().await?;
        let entries = self.search(&mut ldap, user_dn, Scope::Base, &filter, &["1.1"]).await?;
        let _ = ldap.unbind().await;
        Ok(!entries.is_empty())
    }

    async fn groups_of(&self, user_dn: &str) -> Result<Vec<String>, DirectoryError> {
        let filter = format!("(&(objectClass=group)(member:{IN_CHAIN}:={}))", ldap_escape(user_dn));
        let mut ldap = self.service_connection().await?;
        let entries = self.search(&mut ldap, &self.base_dn, Scope::Subtree, &filter, &["1.1"]).await?;
        let _ = ldap.unbind().await;
        let mut groups: Vec<String> = entries.into_iter().map(|e| e.dn).collect();
        groups.sort();
        Ok(groups)
    }

    async fn password_policy(&self, user_dn: Option<&str>) -> Result<PasswordPolicy, DirectoryError> {
        let mut ldap = self.service_connection().await?;
        if let Some(dn) = user_dn {
            let user = self.search(&mut ldap, dn, Scope::Base, "(objectClass=*)", &["msDS-ResultantPSO"]).await?;
            if let Some(pso_dn) = user.first().and_then(|e| first(e, "msDS-ResultantPSO")) {
                let pso = self.search(&mut ldap, &pso_dn, Scope::Base, "(objectClass=*)", PSO_ATTRS).await?;
                match pso.first() {
                    Some(entry) if entry.attrs.contains_key("msDS-MinimumPasswordLength") => {
                        let _ = ldap.unbind().await;
                        return Ok(PasswordPolicy::from_pso(&pso_dn, &entry.attrs));
                    }
                    _ => tracing::warn!(
                        pso = %pso_dn,
                        "a fine-grained password policy applies but the service account cannot read it; \
                         using the domain policy (grant read access to the Password Settings Container)"
                    ),
                }
            }
        }
        let root = self.search(&mut ldap, "", Scope::Base, "(objectClass=*)", &["defaultNamingContext"]).await?;
        let domain_dn = root
            .first()
            .and_then(|e| first(e, "defaultNamingContext"))
            .ok_or_else(|| DirectoryError::Protocol("the root DSE names no defaultNamingContext".into()))?;
        let domain = self.search(&mut ldap, &domain_dn, Scope::Base, "(objectClass=*)", DOMAIN_ATTRS).await?;
        let _ = ldap.unbind().await;
        let attrs = domain.first().map(|e| e.attrs.clone()).unwrap_or_else(HashMap::new);
        Ok(PasswordPolicy::from_domain(&attrs))
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
        let mut ldap = self.service_connection().await?;
        let result = self.timed(ldap.modify(user_dn, mods)).await?;
        let _ = ldap.unbind().await;
        match result.rc {
            0 => Ok(()),
            19 => Err(PasswordWriteError::Refused(PasswordRefusal::from_diagnostic(&result.text), result.text)),
            rc => Err(DirectoryError::Protocol(format!("password reset answered {rc} {}", result.text)).into()),
        }
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
        let mut ldap = self.connect().await?;
        let bind = self.timed(ldap.simple_bind(user_dn, current.expose_secret())).await?;
        if bind.rc == 49 {
            let refusal = BindRefusal::from_diagnostic(&bind.text);
            let _ = ldap.unbind().await;
            match refusal {
                BindRefusal::MustChangePassword | BindRefusal::PasswordExpired => {
                    ldap = self.service_connection().await?
                }
                other => return Ok(ChangeResult::CurrentRefused(other)),
            }
        } else if bind.rc != 0 {
            return Err(DirectoryError::Protocol(format!("bind answered {} {}", bind.rc, bind.text)).into());
        }
        let mods: Vec<Mod<Vec<u8>>> = vec![
            Mod::Delete(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(current.expose_secret())])),
            Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(new.expose_secret())])),
        ];
        let result = self.timed(ldap.modify(user_dn, mods)).await?;
        let _ = ldap.unbind().await;
        match result.rc {
            0 => Ok(ChangeResult::Changed),
            19 => Err(PasswordWriteError::Refused(PasswordRefusal::from_diagnostic(&result.text), result.text)),
            // The old value did not match (AD answers a constraint or "no such attribute" error).
            16 | 49 => Ok(ChangeResult::CurrentRefused(BindRefusal::InvalidCredentials)),
            rc => Err(DirectoryError::Protocol(format!("password change answered {rc} {}", result.text)).into()),
        }
    }

    async fn unlock(&self, user_dn: &str) -> Result<(), DirectoryError> {
        let mut ldap = self.service_connection().await?;
        let mods = vec![Mod::Replace("lockoutTime", HashSet::from(["0"]))];
        let result = self.timed(ldap.modify(user_dn, mods)).await?;
        let _ = ldap.unbind().await;
        match result.rc {
            0 => Ok(()),
            rc => Err(DirectoryError::Protocol(format!("unlock answered {rc} {}", result.text))),
        }
    }

    async fn ping(&self) -> Result<(), DirectoryError> {
        let mut ldap = self.service_connection().await?;
        let _ = ldap.unbind().await;
        Ok(())
    }
}
