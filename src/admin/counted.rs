//! Who the counts, the not-enrolled report and the reminders are about: people with an enabled
//! account, not AD's built-in accounts, the portal's own service account or the accounts an
//! administrator excluded.

use crate::clock::Timestamp;
use crate::directory::DirectoryUser;

/// Users in the directory's scope that the counts leave out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub disabled: usize,
    /// Built-in accounts (Administrator, Guest, krbtgt).
    pub built_in: usize,
    /// The portal's service account and `admin.exclude_accounts`.
    pub excluded: usize,
}

/// Why a user in scope is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotCounted {
    /// Disabled, or past its `accountExpires`.
    Disabled,
    BuiltIn,
    Excluded,
}

/// Who the counts, the report and reminders are about: people with an enabled account.
pub(super) struct Counted {
    /// Lower-case account names, and the service account's DN.
    excluded: Vec<String>,
    service_dn: String,
}

impl Counted {
    pub(super) fn new(exclude_accounts: &[String], service_dn: &str) -> Self {
        Self {
            excluded: exclude_accounts.iter().map(|a| a.to_lowercase()).collect(),
            service_dn: service_dn.to_string(),
        }
    }

    pub(super) fn check(&self, u: &DirectoryUser, now: Timestamp) -> Option<NotCounted> {
        // Built-in first: Guest and krbtgt are disabled too, but they are AD's, not people's.
        if u.system {
            Some(NotCounted::BuiltIn)
        } else if u.closed_at(now) {
            Some(NotCounted::Disabled)
        } else if binds_as(&self.service_dn, u) || self.excluded.contains(&u.account_name.to_lowercase()) {
            Some(NotCounted::Excluded)
        } else {
            None
        }
    }
}

/// Whether `u` is the account the portal binds as. AD takes a bind name as a DN (with or without
/// spaces around its parts), a user principal name or `DOMAIN\name`.
fn binds_as(bind: &str, u: &DirectoryUser) -> bool {
    fn dn_key(dn: &str) -> String {
        let parts = dn.split(',').map(|rdn| match rdn.split_once('=') {
            Some((kind, value)) => format!("{}={}", kind.trim(), value.trim()),
            None => rdn.trim().to_string(),
        });
        parts.collect::<Vec<_>>().join(",").to_lowercase()
    }
    let bind = bind.trim();
    if let Some((_, name)) = bind.split_once('\\') {
        name.eq_ignore_ascii_case(&u.account_name)
    } else if bind.contains('=') {
        dn_key(bind) == dn_key(&u.dn)
    } else {
        u.principal_name.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(bind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_account_is_known_however_its_bind_name_is_written() {
        let u = DirectoryUser {
            dn: "CN=svc-stjarna,CN=Users,DC=example,DC=test".into(),
            id: "guid".into(),
            account_name: "svc-stjarna".into(),
            principal_name: Some("svc-stjarna@example.test".into()),
            display_name: None,
            mail: None,
            mobile: None,
            disabled: false,
            locked: false,
            system: false,
            policy: crate::directory::PolicyRef::NotRead,
            password_set: None,
            expires_at: None,
        };
        for bind in [
            "CN=svc-stjarna,CN=Users,DC=example,DC=test",
            "cn=SVC-stjarna, cn=users, dc=example, dc=test",
            "CN = svc-stjarna ,CN=Users,DC=example,DC=test",
            "svc-stjarna@EXAMPLE.test",
            "EXAMPLE\\svc-stjarna",
        ] {
            assert!(binds_as(bind, &u), "{bind}");
        }
        for bind in
            ["CN=svc-stjarna2,CN=Users,DC=example,DC=test", "other@example.test", "EXAMPLE\\other", "svc-stjarna"]
        {
            assert!(!binds_as(bind, &u), "{bind}");
        }
    }
}
