//! `spawn_app`, and small helpers shared by the tests (the test DC is in `dc.rs`).

use std::sync::{Arc, Once};
use std::time::Duration;

use stjarna::clock::ManualClock;
use stjarna::storage::{AuditRecord, SessionRecord};
use stjarna::{Application, Dependencies};

pub use crate::dc::{TestDc, TestUser, test_dc, test_dc_pair, unique};
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

pub struct TestApp {
    /// The database the app runs on: `sqlite://…`, or `postgres://…` in the PostgreSQL pass.
    pub db_url: String,
    pub address: String,
    /// The application's janitor, for rounds at a chosen time.
    pub janitor: stjarna::janitor::Janitor,
    /// The application's watch for password sets that start a cooling-off again.
    pub restarts: Arc<stjarna::enrolment::RestartWatch>,
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
/// A new user of the test DC, logged in to a new portal.
pub async fn logged_in(dc: &TestDc, prefix: &str) -> (TestUser, TestApp) {
    let user = dc.create_user(prefix).await;
    let app = spawn_app(dc).await;
    app.login(&user.name, &user.password).await;
    (user, app)
}

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
    let restarts = Arc::new(app.restart_watch());
    let storage = app.store();
    let metrics = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}/metrics"));
    let expiry = app.expiry_reminders().map(Arc::new);
    tokio::spawn(app.run_until_stopped());
    TestApp { db_url, address, metrics, expiry, janitor, restarts, storage, client: new_client(), clock, _dir: dir }
}

pub fn new_client() -> reqwest::Client {
    client_builder().cookie_store(true).build().unwrap()
}

/// A test's HTTP client, without redirects. It drops a connection that has been idle for 2 s:
/// the portal and the simulators (actix-web) close theirs after 5 s, and a request sent on a kept
/// connection just as the server closes it fails with "connection closed before message
/// completed" (it did, once, under CI's load, after a test had waited for a mail retry).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_idle_timeout(Duration::from_secs(2))
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

    /// Where a redirect leads and what the page says there: its path, a space, and its notice
    /// (signed for this browser, so a link made elsewhere would say nothing).
    pub async fn told(&self, res: &reqwest::Response) -> String {
        let to = location(res);
        let html = self.get_html(&to).await;
        let said = ["home-notice", "login-notice", "login-error"].iter().find_map(|id| text_of(&html, id));
        format!("{} {}", to.split('?').next().unwrap_or_default(), said.unwrap_or_default())
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
            r.detail = Some(stjarna::audit::describe(r, stjarna::i18n::Lang::En.catalogue())).filter(|d| !d.is_empty());
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
