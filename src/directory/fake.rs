//! An in-memory directory for unit tests of the services: users with passwords, the domain's
//! policy, and writes that can be made to go unanswered. It answers as [`super::LdapDirectory`]
//! does against AD where the services depend on it; everything else it answers plainly.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{
    BindRefusal, ChangeResult, Directory, DirectoryError, DirectoryUser, PasswordCheck, PasswordExpiry, PasswordPolicy,
    PasswordSet, PasswordWriteError, PolicyRef, Username,
};

/// What the fake does with a password write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Made and answered.
    Answered,
    /// Made, but the answer never comes (as when AD applies a change and the connection drops).
    MadeUnanswered,
    /// Never made: no DC could be reached.
    Unreachable,
}

pub struct FakeDirectory {
    users: Mutex<Vec<(DirectoryUser, String)>>,
    policy: PasswordPolicy,
    writes: Mutex<Writes>,
    /// Look-ups by id fail as if no DC answered.
    down: AtomicBool,
    /// The password policy cannot be read.
    policy_unreadable: AtomicBool,
    lookups: AtomicUsize,
    pings: AtomicUsize,
    /// How long each bind takes (a DC under load) as an account and as a DN that is nobody's, and
    /// the DNs bound as.
    bind_delay: Mutex<(std::time::Duration, std::time::Duration)>,
    binds: Mutex<Vec<String>>,
    /// A bind as a DN that is nobody's is answered with a referral (as a DC may answer a DN
    /// outside its domain), not as a wrong password.
    refers_strangers: AtomicBool,
    /// Attributes read one at a time (`adminCount`, say): (DN, name, value).
    attributes: Mutex<Vec<(String, String, String)>>,
    /// When entries changed, as far as tests say (`whenChanged`): (DN, time).
    changed: Mutex<Vec<(String, i64)>>,
}

impl Default for FakeDirectory {
    /// A domain that locks after 5 failures in 30 minutes and asks for 10 characters.
    fn default() -> Self {
        let policy = PasswordPolicy {
            min_length: 10,
            complexity: true,
            history_length: 0,
            lockout_threshold: 5,
            lockout_duration_minutes: 30,
            lockout_window_minutes: 30,
            max_age_days: 0,
            min_age_days: 0,
            source_pso: None,
        };
        Self {
            users: Mutex::new(Vec::new()),
            policy,
            writes: Mutex::new(Writes::Answered),
            down: AtomicBool::new(false),
            policy_unreadable: AtomicBool::new(false),
            lookups: AtomicUsize::new(0),
            pings: AtomicUsize::new(0),
            bind_delay: Mutex::new((std::time::Duration::ZERO, std::time::Duration::ZERO)),
            binds: Mutex::new(Vec::new()),
            refers_strangers: AtomicBool::new(false),
            attributes: Mutex::new(Vec::new()),
            changed: Mutex::new(Vec::new()),
        }
    }
}

impl FakeDirectory {
    /// Adds an enabled user `name` with `password`; returns them.
    pub fn add_user(&self, name: &str, password: &str) -> DirectoryUser {
        let mut users = self.users.lock().unwrap();
        let user = DirectoryUser {
            dn: format!("CN={name},CN=Users,DC=example,DC=test"),
            id: format!("00000000-0000-4000-8000-{:012}", users.len() + 1),
            account_name: name.to_string(),
            principal_name: Some(format!("{name}@example.test")),
            display_name: Some(format!("User {name}")),
            mail: Some(format!("{name}@example.test")),
            mobile: None,
            disabled: false,
            locked: false,
            system: false,
            policy: PolicyRef::Domain,
            password_set: Some(super::filetime_of(now()).to_string()),
            expires_at: None,
        };
        users.push((user.clone(), password.to_string()));
        user
    }

    /// Sets the attribute `name` of `dn`, as [`Directory::attribute`] reads it.
    pub fn set_attribute(&self, dn: &str, name: &str, value: &str) {
        self.attributes.lock().unwrap().push((dn.to_string(), name.to_string(), value.to_string()));
    }

    /// The password policy cannot be read from now on (or can again), as when the service
    /// account may not read a PSO.
    pub fn set_policy_unreadable(&self, unreadable: bool) {
        self.policy_unreadable.store(unreadable, Ordering::SeqCst);
    }

    fn policy(&self) -> Result<PasswordPolicy, DirectoryError> {
        match self.policy_unreadable.load(Ordering::SeqCst) {
            true => Err(DirectoryError::Protocol("insufficient access rights".into())),
            false => Ok(self.policy.clone()),
        }
    }

    /// No DC answers a look-up by id from now on (or again answers).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many look-ups by id were asked.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Every bind takes this long from now on (a DC under load): as an account, and as a DN that
    /// is nobody's (AD does less for it: no password to check, no count to write).
    pub fn set_bind_delays(&self, account: std::time::Duration, nobody: std::time::Duration) {
        *self.bind_delay.lock().unwrap() = (account, nobody);
    }

    /// Binds as a DN that is nobody's are answered with a referral from now on.
    pub fn set_refers_strangers(&self, refers: bool) {
        self.refers_strangers.store(refers, Ordering::SeqCst);
    }

    /// The DNs bound as, in order.
    pub fn binds(&self) -> Vec<String> {
        self.binds.lock().unwrap().clone()
    }

    /// How many times the directory was pinged.
    pub fn pings(&self) -> usize {
        self.pings.load(Ordering::SeqCst)
    }

    pub fn set_writes(&self, writes: Writes) {
        *self.writes.lock().unwrap() = writes;
    }

    /// The password is set outside the portal (at the keyboard, by the service desk).
    pub fn set_elsewhere(&self, dn: &str, password: &str) {
        self.set_elsewhere_at(dn, password, now() + 1);
    }

    /// The same, with AD's clock at `unix` seconds.
    pub fn set_elsewhere_at(&self, dn: &str, password: &str, unix: i64) {
        let mut users = self.users.lock().unwrap();
        if let Some((user, current)) = users.iter_mut().find(|(u, _)| u.dn == dn) {
            *current = password.to_string();
            user.password_set = Some(super::filetime_of(unix).to_string());
        }
    }

    /// The password must be changed at the next logon (`pwdLastSet` 0, as after a service desk's
    /// reset), set at `unix`: AD tells no time for it, only when the entry changed.
    pub fn set_must_change_at(&self, dn: &str, unix: i64) {
        let mut users = self.users.lock().unwrap();
        if let Some((user, _)) = users.iter_mut().find(|(u, _)| u.dn == dn) {
            user.password_set = Some("0".into());
        }
        self.changed.lock().unwrap().push((dn.to_string(), unix));
    }

    /// An administrator disables the account.
    pub fn disable(&self, dn: &str) {
        self.users.lock().unwrap().iter_mut().filter(|(u, _)| u.dn == dn).for_each(|(u, _)| u.disabled = true);
    }

    /// Whether `password` is the user's password now.
    pub fn has_password(&self, dn: &str, password: &str) -> bool {
        self.users.lock().unwrap().iter().any(|(u, p)| u.dn == dn && p == password)
    }

    fn find(&self, pick: impl Fn(&DirectoryUser) -> bool) -> Option<DirectoryUser> {
        self.users.lock().unwrap().iter().map(|(u, _)| u).find(|u| pick(u)).cloned()
    }

    /// Sets the password of `dn` to `new` when `current` (if given) is right; the write's answer.
    fn write(&self, dn: &str, current: Option<&str>, new: &str) -> Result<bool, DirectoryError> {
        if *self.writes.lock().unwrap() == Writes::Unreachable {
            return Err(unreachable());
        }
        let mut users = self.users.lock().unwrap();
        let Some((user, password)) = users.iter_mut().find(|(u, _)| u.dn == dn) else {
            return Err(DirectoryError::Protocol("no such object".into()));
        };
        if current.is_some_and(|c| c != password) {
            return Ok(false);
        }
        *password = new.to_string();
        // Never the value it had, even within the same second.
        let before = user.password_set.as_deref().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        user.password_set = Some(super::filetime_of(now()).max(before + 1).to_string());
        match *self.writes.lock().unwrap() {
            Writes::Answered | Writes::Unreachable => Ok(true),
            Writes::MadeUnanswered => Err(DirectoryError::Unconfirmed {
                url: "ldaps://fake".into(),
                reason: "the connection dropped after sending".into(),
            }),
        }
    }
}

#[async_trait]
impl Directory for FakeDirectory {
    async fn find_user(&self, name: &Username) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok(match name {
            Username::Account(a) => self.find(|u| u.account_name.eq_ignore_ascii_case(a.as_str())),
            Username::Principal(p) => {
                self.find(|u| u.principal_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(p.as_str())))
            }
        })
    }

    async fn find_user_by_id(&self, id: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(DirectoryError::Unreachable { url: "ldaps://fake".into(), reason: "down".into() });
        }
        Ok(self.find(|u| u.id == id))
    }

    async fn search_users(&self, text: &str, limit: usize) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let users = self.users.lock().unwrap();
        Ok(users.iter().map(|(u, _)| u).filter(|u| u.account_name.contains(text)).take(limit).cloned().collect())
    }

    async fn all_users(&self) -> Result<Vec<DirectoryUser>, DirectoryError> {
        Ok(self.users.lock().unwrap().iter().map(|(u, _)| u.clone()).collect())
    }

    async fn password_sets_since(&self, since: crate::clock::Timestamp) -> Result<Vec<PasswordSet>, DirectoryError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(DirectoryError::Unreachable { url: "ldaps://fake".into(), reason: "down".into() });
        }
        let users = self.users.lock().unwrap();
        let since_then = |u: &DirectoryUser| match u.password_set.as_deref() {
            Some("0") => true,
            other => other.and_then(super::filetime_seconds).is_some_and(|set| set >= since),
        };
        let changed = self.changed.lock().unwrap();
        let changed_at = |u: &DirectoryUser| changed.iter().rev().find(|(dn, _)| *dn == u.dn).map(|(_, at)| *at);
        Ok(users
            .iter()
            .map(|(u, _)| u)
            .filter(|u| since_then(u))
            .map(|u| PasswordSet { user: u.clone(), changed_at: changed_at(u) })
            .collect())
    }

    async fn attribute(&self, dn: &str, name: &str) -> Result<Option<String>, DirectoryError> {
        let attributes = self.attributes.lock().unwrap();
        Ok(attributes.iter().rev().find(|(d, n, _)| d == dn && n == name).map(|(_, _, v)| v.clone()))
    }

    async fn check_password(&self, user_dn: &str, password: &SecretString) -> Result<PasswordCheck, DirectoryError> {
        self.binds.lock().unwrap().push(user_dn.to_string());
        let stranger = self.find(|u| u.dn == user_dn).is_none();
        let (account, nobody) = *self.bind_delay.lock().unwrap();
        tokio::time::sleep(if stranger { nobody } else { account }).await;
        if self.refers_strangers.load(Ordering::SeqCst) && stranger {
            return Err(DirectoryError::Protocol("bind answered 10 referral".into()));
        }
        let right = !password.expose_secret().is_empty() && self.has_password(user_dn, password.expose_secret());
        Ok(if right { PasswordCheck::Accepted } else { PasswordCheck::Refused(BindRefusal::InvalidCredentials) })
    }

    async fn is_member_of(&self, _user_dn: &str, _group_dn: &str) -> Result<bool, DirectoryError> {
        Ok(false)
    }

    async fn groups_of(&self, _user_dn: &str) -> Result<Vec<String>, DirectoryError> {
        Ok(Vec::new())
    }

    async fn password_policy(&self, _user_dn: Option<&str>) -> Result<PasswordPolicy, DirectoryError> {
        self.policy()
    }

    async fn policy_of(&self, _user: &DirectoryUser) -> Result<PasswordPolicy, DirectoryError> {
        self.policy()
    }

    async fn reset_password(
        &self,
        user_dn: &str,
        password: &SecretString,
        _unlock: bool,
        _must_change: bool,
    ) -> Result<(), PasswordWriteError> {
        self.write(user_dn, None, password.expose_secret())?;
        Ok(())
    }

    async fn change_password(
        &self,
        user_dn: &str,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<ChangeResult, PasswordWriteError> {
        Ok(match self.write(user_dn, Some(current.expose_secret()), new.expose_secret())? {
            true => ChangeResult::Changed,
            false => ChangeResult::CurrentRefused(BindRefusal::InvalidCredentials),
        })
    }

    async fn unlock(&self, _user_dn: &str) -> Result<(), DirectoryError> {
        match *self.writes.lock().unwrap() {
            Writes::Answered => Ok(()),
            Writes::MadeUnanswered => {
                Err(DirectoryError::Unconfirmed { url: "ldaps://fake".into(), reason: "no answer in time".into() })
            }
            Writes::Unreachable => Err(unreachable()),
        }
    }

    async fn ping(&self) -> Result<(), DirectoryError> {
        self.pings.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn password_expiries(&self) -> Result<Vec<PasswordExpiry>, DirectoryError> {
        Ok(Vec::new())
    }

    async fn fine_grained_policies(&self) -> Result<Vec<PasswordPolicy>, DirectoryError> {
        Ok(Vec::new())
    }
}

fn unreachable() -> DirectoryError {
    DirectoryError::Unreachable { url: "ldaps://fake".into(), reason: "connection refused".into() }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
