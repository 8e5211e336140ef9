//! The Samba AD DC that ./scripts/test started (or two of one domain), and what tests do to it:
//! users, groups, PSOs, locks, and the portal configuration that points at it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::helpers::{in_ci, install_crypto};

/// The Samba AD DC that ./scripts/test started.
#[derive(Clone)]
pub struct TestDc {
    pub url: String,
    pub ca: PathBuf,
    pub admin_password: String,
    pub svc_password: String,
    pub base: String,
}

pub fn test_dc() -> Option<TestDc> {
    install_crypto();
    match std::env::var("STJARNA_TEST_DC_URL") {
        Ok(url) => Some(TestDc {
            url,
            ca: std::env::var("STJARNA_TEST_DC_CA").expect("STJARNA_TEST_DC_CA").into(),
            admin_password: std::env::var("STJARNA_TEST_DC_ADMIN_PASSWORD").expect("STJARNA_TEST_DC_ADMIN_PASSWORD"),
            svc_password: std::env::var("STJARNA_TEST_DC_SVC_PASSWORD").expect("STJARNA_TEST_DC_SVC_PASSWORD"),
            base: std::env::var("STJARNA_TEST_DC_BASE").expect("STJARNA_TEST_DC_BASE"),
        }),
        Err(_) if in_ci() => {
            panic!("CI=true but no test DC: STJARNA_TEST_DC_URL is not set (run ./scripts/test)")
        }
        Err(_) => {
            eprintln!("skipped: no Samba AD DC (STJARNA_TEST_DC_URL unset); ./scripts/test starts one");
            None
        }
    }
}

/// Two DCs of one domain that ./scripts/test started for the failover test (the second joined
/// to the first, pulling its changes every second), and the first one's process.
pub struct DcPair {
    pub first: TestDc,
    pub second: TestDc,
    first_pid: PathBuf,
}

impl DcPair {
    /// Stops the first DC (SIGSTOP: it holds its connections and answers nothing, as a DC that
    /// hangs or whose host went away) until the guard is dropped.
    pub fn stop_first(&self) -> StoppedDc {
        let pid = std::fs::read_to_string(&self.first_pid).expect("the first DC's pid file").trim().to_string();
        let status = std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        assert!(status.success(), "the first DC could not be stopped");
        StoppedDc { pid }
    }
}

/// The first DC of the pair, stopped; it runs again when this is dropped (a failing test too).
pub struct StoppedDc {
    pid: String,
}

impl Drop for StoppedDc {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.pid]).status();
    }
}

pub fn test_dc_pair() -> Option<DcPair> {
    let base = test_dc()?;
    match std::env::var("STJARNA_TEST_DC_PAIR") {
        Ok(urls) => {
            let ca: PathBuf = std::env::var("STJARNA_TEST_DC_PAIR_CA").expect("STJARNA_TEST_DC_PAIR_CA").into();
            let mut urls = urls.split_whitespace().map(str::to_string);
            let dc = |url: String| TestDc { url, ca: ca.clone(), ..base.clone() };
            Some(DcPair {
                first: dc(urls.next().expect("two URLs")),
                second: dc(urls.next().expect("two URLs")),
                first_pid: std::env::var("STJARNA_TEST_DC_PAIR_FIRST_PID")
                    .expect("STJARNA_TEST_DC_PAIR_FIRST_PID")
                    .into(),
            })
        }
        Err(_) if in_ci() => panic!("CI=true but no pair of DCs: STJARNA_TEST_DC_PAIR is not set (run ./scripts/test)"),
        Err(_) => {
            eprintln!("skipped: no pair of DCs (STJARNA_TEST_DC_PAIR unset); ./scripts/test starts one");
            None
        }
    }
}

/// A user made for one test, with a unique name.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub dn: String,
    pub display_name: String,
}

pub fn unique(prefix: &str) -> String {
    let n: u32 = rand::random();
    format!("{prefix}{n:08x}")
}

fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

impl TestDc {
    pub fn tls(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
    }

    async fn connect(&self) -> Ldap {
        let settings = LdapConnSettings::new().set_config(self.tls()).set_conn_timeout(Duration::from_secs(5));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url).await.expect("connect to test DC");
        ldap3::drive!(conn);
        ldap
    }

    pub async fn admin(&self) -> Ldap {
        let mut ldap = self.connect().await;
        ldap.simple_bind("Administrator@example.test", &self.admin_password).await.unwrap().success().unwrap();
        ldap
    }

    /// Binds as `dn` directly, outside the portal. Returns the LDAP result code and text.
    pub async fn bind(&self, dn: &str, password: &str) -> (u32, String) {
        let mut ldap = self.connect().await;
        let r = ldap.simple_bind(dn, password).await.unwrap();
        let _ = ldap.unbind().await;
        (r.rc, r.text)
    }

    pub async fn create_user(&self, prefix: &str) -> TestUser {
        let parent = format!("CN=Users,{}", self.base);
        self.create_user_in(prefix, &parent).await
    }

    /// A user under `parent` (a container or OU).
    pub async fn create_user_in(&self, prefix: &str, parent: &str) -> TestUser {
        let name = unique(prefix);
        let password = format!("Pw-{}-x9!", unique(""));
        let display_name = format!("Test {name}");
        let dn = format!("CN={name},{parent}");
        let upn = format!("{name}@example.test");
        let pwd = unicode_pwd(&password);
        let mut ldap = self.admin().await;
        let attrs: Vec<(&[u8], HashSet<&[u8]>)> = vec![
            (b"objectClass", HashSet::from([&b"top"[..], b"person", b"organizationalPerson", b"user"])),
            (b"sAMAccountName", HashSet::from([name.as_bytes()])),
            (b"userPrincipalName", HashSet::from([upn.as_bytes()])),
            (b"mail", HashSet::from([upn.as_bytes()])),
            (b"displayName", HashSet::from([display_name.as_bytes()])),
            (b"unicodePwd", HashSet::from([pwd.as_slice()])),
            (b"userAccountControl", HashSet::from([&b"512"[..]])),
        ];
        ldap.add(&dn, attrs).await.unwrap().success().unwrap_or_else(|e| panic!("create {name}: {e}"));
        let _ = ldap.unbind().await;
        TestUser { name, password, dn, display_name }
    }

    /// A new organizational unit under the domain (a scope of its own for a test); its DN.
    pub async fn create_ou(&self, prefix: &str) -> String {
        let ou = format!("OU={},{}", unique(prefix), self.base);
        let mut ldap = self.admin().await;
        let attrs = vec![("objectClass", HashSet::from(["top", "organizationalUnit"]))];
        ldap.add(&ou, attrs).await.unwrap().success().unwrap_or_else(|e| panic!("create {ou}: {e}"));
        let _ = ldap.unbind().await;
        ou
    }

    /// Sets the password as an administrator would, outside the portal.
    pub async fn set_password(&self, dn: &str, password: &str) {
        let mut ldap = self.admin().await;
        let pwd = unicode_pwd(password);
        let mods = vec![Mod::Replace(&b"unicodePwd"[..], HashSet::from([pwd.as_slice()]))];
        ldap.modify(dn, mods).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
    }

    pub async fn modify(&self, dn: &str, attr: &str, value: &str) {
        let mut ldap = self.admin().await;
        ldap.modify(dn, vec![Mod::Replace(attr, HashSet::from([value]))]).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
    }

    pub async fn create_group(&self, prefix: &str) -> String {
        let cn = unique(prefix);
        let dn = format!("CN={cn},CN=Users,{}", self.base);
        let mut ldap = self.admin().await;
        let attrs =
            vec![("objectClass", HashSet::from(["top", "group"])), ("sAMAccountName", HashSet::from([cn.as_str()]))];
        ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
        dn
    }

    pub async fn add_member(&self, group_dn: &str, member_dn: &str) {
        let mut ldap = self.admin().await;
        ldap.modify(group_dn, vec![Mod::Add("member", HashSet::from([member_dn]))]).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
    }

    pub async fn remove_member(&self, group_dn: &str, member_dn: &str) {
        let mut ldap = self.admin().await;
        let change = vec![Mod::Delete("member", HashSet::from([member_dn]))];
        ldap.modify(group_dn, change).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
    }

    /// A fine-grained password policy (PSO) that applies to `applies_to`.
    pub async fn create_pso(&self, applies_to: &str, min_length: u32, lockout_threshold: u32) -> String {
        let dn = format!("CN={},CN=Password Settings Container,CN=System,{}", unique("pso"), self.base);
        let (min, threshold) = (min_length.to_string(), lockout_threshold.to_string());
        let mut ldap = self.admin().await;
        let attrs = vec![
            ("objectClass", HashSet::from(["msDS-PasswordSettings"])),
            ("msDS-PasswordSettingsPrecedence", HashSet::from(["1"])),
            ("msDS-PasswordReversibleEncryptionEnabled", HashSet::from(["FALSE"])),
            ("msDS-PasswordHistoryLength", HashSet::from(["2"])),
            ("msDS-PasswordComplexityEnabled", HashSet::from(["TRUE"])),
            ("msDS-MinimumPasswordLength", HashSet::from([min.as_str()])),
            ("msDS-MinimumPasswordAge", HashSet::from(["0"])),
            ("msDS-MaximumPasswordAge", HashSet::from(["-864000000000"])),
            ("msDS-LockoutThreshold", HashSet::from([threshold.as_str()])),
            ("msDS-LockoutObservationWindow", HashSet::from(["-18000000000"])),
            ("msDS-LockoutDuration", HashSet::from(["-36000000000"])),
            ("msDS-PSOAppliesTo", HashSet::from([applies_to])),
        ];
        ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
        dn
    }

    pub async fn attr(&self, dn: &str, attr: &str) -> Option<String> {
        let mut ldap = self.admin().await;
        let (entries, _) =
            ldap.search(dn, Scope::Base, "(objectClass=*)", vec![attr]).await.unwrap().success().unwrap();
        let _ = ldap.unbind().await;
        entries
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .and_then(|e| e.attrs.get(attr).and_then(|v| v.first().cloned()))
    }

    /// Locks the account the way AD does it: wrong passwords up to the threshold.
    pub async fn lock(&self, user: &TestUser) {
        for _ in 0..5 {
            self.bind(&user.dn, "definitely-wrong").await;
        }
        let lockout = self.attr(&user.dn, "lockoutTime").await.unwrap_or_default();
        assert!(lockout != "0" && !lockout.is_empty(), "the DC should have locked {}", user.name);
    }

    pub fn config(&self, db: &std::path::Path) -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"

[database]
url = "sqlite://{db}"
max_connections = 4

[directory]
url = "{url}"
ca_file = "{ca}"
bind_dn = "CN=svc-stjarna,CN=Users,{base}"
bind_password = "{svc}"
base_dn = "{base}"
netbios_domain = "EXAMPLE"
admin_group = "CN=Stjarna Admins,CN=Users,{base}"
connect_timeout_seconds = 3
operation_timeout_seconds = 5

[login]
min_response_ms = 150

[enrolment]
enrolment_stars = 5
reset_stars = 3
# Most tests enrol and reset within minutes; the cooling-off has tests of its own (attacks.rs).
cooldown_hours = 0

[services.bankid]
stars = 3

[services.sms]
stars = 2

[security]
data_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

# Nothing listens here: tests that use BankID replace this with the simulator.
[bankid]
backend = "idkollen"
url = "https://127.0.0.1:9"
account_id = "unused"
secret_key = "unused"

# Nothing listens here either: tests that send texts replace this with the simulator.
[sms]
gateway = "webhook"
url = "http://127.0.0.1:9/webhook"
from = "Stjarna"
"#,
            db = db.display(),
            url = self.url,
            ca = self.ca.display(),
            base = self.base,
            svc = self.svc_password,
        )
    }
}
