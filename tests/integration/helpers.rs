//! `spawn_app`, the test DC, and small helpers shared by the tests.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use stjarna::clock::ManualClock;
use stjarna::storage::{AuditRecord, SessionRecord};
use stjarna::{Application, Dependencies};

pub use crate::store::TestStore;

static CRYPTO: Once = Once::new();

pub fn install_crypto() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Whether tests that need a server must fail rather than skip when it is missing.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

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

/// A new, empty PostgreSQL database on the cluster ./scripts/test started; None (and a note)
/// outside CI without one, a failure in CI without one.
pub async fn postgres_database() -> Option<String> {
    let admin = match std::env::var("STJARNA_TEST_PG_URL") {
        Ok(url) => url,
        Err(_) if in_ci() => panic!("CI=true but no PostgreSQL: STJARNA_TEST_PG_URL is not set (run ./scripts/test)"),
        Err(_) => {
            eprintln!("PostgreSQL skipped: STJARNA_TEST_PG_URL unset; ./scripts/test starts a cluster");
            return None;
        }
    };
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the test PostgreSQL");
    let name = unique("stjarna_");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some(format!("{base}/{name}"))
}

/// Gives the test DC, or ends a test that cannot run outside CI.
macro_rules! require_dc {
    () => {
        match crate::helpers::test_dc() {
            Some(dc) => dc,
            None => return,
        }
    };
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

pub struct TestApp {
    /// The database the app runs on: `sqlite://…`, or `postgres://…` in the PostgreSQL pass.
    pub db_url: String,
    pub address: String,
    /// The application's janitor, for rounds at a chosen time.
    pub janitor: stjarna::janitor::Janitor,
    /// The Prometheus endpoint, when the test configured `metrics.listen`.
    pub metrics: Option<String>,
    /// The application's expiry reminders (`expiry.enabled`), for rounds at a chosen time.
    pub expiry: Option<Arc<stjarna::expiry::ExpiryReminders>>,
    /// The application's own storage (what it keeps in memory follows what tests write).
    storage: Arc<dyn stjarna::storage::Storage>,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    _dir: tempfile::TempDir,
}

/// Whether this run of the suite is the PostgreSQL pass (`STJARNA_TEST_DATABASE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("STJARNA_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

pub async fn spawn_app(dc: &TestDc) -> TestApp {
    spawn_app_with(dc, |c| c).await
}

/// Starts the portal on a free port with its own database; `edit` may change the TOML first.
pub async fn spawn_app_with(dc: &TestDc, edit: impl FnOnce(String) -> String) -> TestApp {
    spawn_app_with_clock(dc, ManualClock::starting_now(), edit).await
}

/// As `spawn_app_with`, with a clock the test shares (with a simulator, say).
pub async fn spawn_app_with_clock(dc: &TestDc, clock: ManualClock, edit: impl FnOnce(String) -> String) -> TestApp {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stjarna.db");
    let mut db_url = format!("sqlite://{}", db.display());
    let mut config = dc.config(&db);
    if on_postgres() {
        // The PostgreSQL pass: a database of its own, and the secret instances must share.
        db_url = postgres_database().await.expect("the PostgreSQL pass needs STJARNA_TEST_PG_URL");
        config = config.replace(&format!("url = \"sqlite://{}\"", db.display()), &format!("url = \"{db_url}\""));
        // The test apps are never stopped (actix keeps its workers to the end of the binary):
        // two connections each keep the whole suite within the cluster's limit.
        config = config.replace("max_connections = 4", "max_connections = 2");
    }
    let mut config = edit(config);
    if on_postgres() && !config.contains("\nsecret = \"shared-by-every-instance") {
        let secret = "secret = \"shared-by-every-instance-0123456789\"\n";
        config = match config.find("\n[session]\n") {
            Some(i) => {
                format!("{}{secret}{}", &config[..i + "\n[session]\n".len()], &config[i + "\n[session]\n".len()..])
            }
            None => config + "\n[session]\n" + secret,
        };
    }
    if let Some(url) = config.split("\n[database]\nurl = \"").nth(1).and_then(|r| r.split('"').next()) {
        db_url = url.to_string();
    }
    let settings = stjarna::config::from_toml_str(&config)
        .unwrap_or_else(|p| panic!("test config: {}", p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")));
    let deps = Dependencies { clock: Arc::new(clock.clone()), ..Dependencies::default() };
    let app = Application::build_with(settings, deps).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let janitor = app.janitor();
    let storage = app.store();
    let metrics = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}/metrics"));
    let expiry = app.expiry_reminders().map(Arc::new);
    tokio::spawn(app.run_until_stopped());
    TestApp { db_url, address, metrics, expiry, janitor, storage, client: new_client(), clock, _dir: dir }
}

pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of `<input name="csrf" value="...">` in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The text of the element with `id`, tags stripped.
pub fn text_of(html: &str, id: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("#{id}")).unwrap();
    doc.select(&sel)
        .next()
        .map(|e| e.text().collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" "))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_html(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub async fn csrf(&self) -> String {
        csrf_in(&self.get_html("/login").await)
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// GET /login for a token, then POST the credentials.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.post("/login", &[("csrf", &csrf), ("username", username), ("password", password)]).await
    }

    /// The error shown on the login page after a failed login.
    pub async fn login_error(&self, username: &str, password: &str) -> String {
        let res = self.login(username, password).await;
        self.error_after(res, "login-error").await
    }

    /// Post/redirect/get: the POST answered 303; the page it leads to.
    pub async fn follow(&self, res: reqwest::Response) -> String {
        assert_eq!(res.status(), 303, "a POST redirects to a page (post/redirect/get)");
        self.get_html(&location(&res)).await
    }

    /// Post/redirect/get: the POST answered 303; the page it leads to shows the error in `id`.
    pub async fn error_after(&self, res: reqwest::Response, id: &str) -> String {
        assert_eq!(res.status(), 303, "a refused POST redirects to a page (post/redirect/get)");
        let body = self.get_html(&location(&res)).await;
        text_of(&body, id).unwrap_or_else(|| panic!("the page shows an error in #{id}: {body}"))
    }

    pub async fn store(&self) -> TestStore {
        TestStore::open(&self.db_url, self.storage.clone()).await
    }

    /// The audit trail, newest first, its details in English (as forwarded to a SIEM).
    pub async fn audit(&self) -> Vec<AuditRecord> {
        let mut records = self.store().await.recent_audit(1000).await.unwrap();
        for r in &mut records {
            r.detail = r.detail.as_deref().map(|d| stjarna::audit::render_detail(d, stjarna::i18n::Lang::En));
        }
        records
    }

    pub async fn sessions(&self) -> Vec<SessionRecord> {
        self.store().await.fetch_all("SELECT * FROM sessions").await
    }
}

/// Replaces the body of the `[header]` section of a TOML configuration (up to the next section).
pub fn with_section(config: &str, header: &str, body: &str) -> String {
    let start = config.find(&format!("\n{header}\n")).unwrap_or_else(|| panic!("no {header} in the config")) + 1;
    let rest = &config[start + header.len() + 1..];
    let end = rest.find("\n[").map(|i| start + header.len() + 1 + i + 1).unwrap_or(config.len());
    format!("{}{header}\n{body}\n{}", &config[..start], &config[end..])
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|h| h.to_str().unwrap().to_string()).unwrap_or_default()
}
