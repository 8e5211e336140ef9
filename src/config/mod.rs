//! Configuration: one TOML file plus `STJARNA__SECTION__KEY` environment overrides.
//!
//! Loading never stops at the first problem: [`load`] returns every problem it can find, in plain
//! words, so that `stjarna check-config` can list them all at once.

mod check;
mod features;
mod operations;
mod warnings;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

pub use check::{ConfigProblem, validate};
pub use features::*;
pub use operations::*;
use secrecy::SecretString;
pub use warnings::warnings;

/// The whole configuration, as read from the file and the environment.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub directory: DirectorySettings,
    #[serde(default)]
    pub session: SessionSettings,
    #[serde(default)]
    pub login: LoginSettings,
    pub enrolment: EnrolmentSettings,
    #[serde(default)]
    pub services: ServicesSettings,
    #[serde(default)]
    pub portal: PortalSettings,
    #[serde(default)]
    pub security: SecuritySettings,
    pub bankid: Option<BankIdSettings>,
    pub sms: Option<SmsSettings>,
    pub mail: Option<MailSettings>,
    #[serde(default)]
    pub reset: ResetSettings,
    #[serde(default)]
    pub password: PasswordSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub expiry: ExpirySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminSettings {
    /// Admin pages ask for the password again when it was given longer ago than this.
    pub reauth_minutes: u64,
    /// Audit entries older than this are deleted.
    pub audit_retention_days: u64,
    /// An enrolment reminder goes to a user at most once in this many days.
    pub reminder_interval_days: u64,
    /// At most this many reminders per run.
    pub reminders_per_run: usize,
    /// The portal's address, for links in mail.
    pub portal_url: Option<String>,
    /// Accounts (sAMAccountName) left out of the dashboard's counts, the not-enrolled report and
    /// enrolment reminders, besides disabled and built-in accounts and the portal's own service
    /// account: other service accounts, shared mailboxes.
    pub exclude_accounts: Vec<String>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            reauth_minutes: 15,
            audit_retention_days: 365,
            reminder_interval_days: 7,
            reminders_per_run: 500,
            portal_url: None,
            exclude_accounts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address and port to listen on, e.g. `127.0.0.1:8080`. Port 0 picks a free port.
    pub listen: String,
    /// The address users type, e.g. `https://losenord.example.se`. Decides Secure cookies and HSTS.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For` is believed, as IP addresses.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://data/stjarna.db` (created when missing).
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Finished reset flows, code challenges, BankID orders and sent mail are deleted this many
    /// days after they began (the audit log keeps what happened).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// PostgreSQL only: a file holding the database user's password, so that `url` need not.
    pub password_file: Option<PathBuf>,
}

impl DatabaseSettings {
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }

    /// The password from `password_file`, if one is given.
    pub fn password(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret("database.password", &None, &self.password_file)
    }

    /// The URL as it may be shown or logged: a password in it (user info or a `password` /
    /// `sslpassword` parameter) is replaced by `***`; one that cannot be read is not shown if it
    /// may hold one.
    pub fn display_url(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.url) else {
            return if self.url.contains('@') || self.url.to_lowercase().contains("password") {
                "(a URL that cannot be read, not shown: it may hold a password)".into()
            } else {
                self.url.clone()
            };
        };
        let secret = |k: &str| k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
        let mut changed = false;
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            changed = true;
        }
        let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if pairs.iter().any(|(k, _)| secret(k)) {
            let mut query = url.query_pairs_mut();
            query.clear();
            for (k, v) in &pairs {
                query.append_pair(k, if secret(k) { "***" } else { v });
            }
            drop(query);
            changed = true;
        }
        if changed { url.to_string() } else { self.url.clone() }
    }

    /// Whether the database is on this machine (as a PostgreSQL URL names its host).
    pub fn is_loopback(&self) -> bool {
        let url = url::Url::parse(&self.url).ok();
        url.as_ref().and_then(|u| u.host_str()).is_some_and(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"))
    }

    /// Whether the URL asks for the server's certificate to be checked (`sslmode=verify-full/-ca`).
    pub fn verifies_server(&self) -> bool {
        url::Url::parse(&self.url)
            .is_ok_and(|u| u.query_pairs().any(|(k, v)| k == "sslmode" && (v == "verify-full" || v == "verify-ca")))
    }
}

fn default_max_connections() -> u32 {
    8
}

fn default_retention_days() -> u32 {
    7
}

#[derive(Debug, Clone, Deserialize)]
pub struct DirectorySettings {
    /// `ldaps://dc1.example.se` or, with `starttls = true`, `ldap://dc1.example.se`: one domain
    /// controller. Or give several in `urls`.
    #[serde(default)]
    pub url: Option<String>,
    /// Domain controllers of the domain, tried in this order: one that refuses connections or
    /// does not answer in time is skipped for `failover_seconds`.
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default = "default_failover")]
    pub failover_seconds: u64,
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA that issued the domain controllers' certificates.
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    /// The service account's password; or give `bind_password_file` to read it from a file.
    pub bind_password: Option<SecretString>,
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched for.
    pub base_dn: String,
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// The NetBIOS domain name accepted in `DOMAIN\user`.
    pub netbios_domain: String,
    /// Members of this group (directly or through nested groups) are portal administrators.
    pub admin_group: Option<String>,
    /// Members may verify callers and view users (the service desk).
    pub helpdesk_group: Option<String>,
    /// Members may read reports.
    pub reporting_group: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_seconds: u64,
    /// Connections kept open to the directory, per pool (service account; users' own binds).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// A pooled connection idle longer than this is closed rather than reused (AD's
    /// MaxConnIdleTime is 900 s).
    #[serde(default = "default_pool_idle")]
    pub pool_idle_seconds: u64,
    /// What the domain's policy and each fine-grained policy say is read again after this long
    /// (which PSO applies to a user is read every time). 0 reads everything every time.
    #[serde(default = "default_policy_cache")]
    pub policy_cache_seconds: u64,
}

impl DirectorySettings {
    /// The domain controllers, in the order they are tried (`urls`, or the one `url`).
    pub fn urls(&self) -> Vec<String> {
        if self.urls.is_empty() { self.url.iter().cloned().collect() } else { self.urls.clone() }
    }
}

fn default_failover() -> u64 {
    60
}
fn default_user_filter() -> String {
    "(&(objectCategory=person)(objectClass=user))".into()
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_operation_timeout() -> u64 {
    10
}
fn default_pool_size() -> usize {
    8
}
fn default_pool_idle() -> u64 {
    300
}
fn default_policy_cache() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionSettings {
    pub idle_timeout_minutes: u64,
    pub absolute_lifetime_minutes: u64,
    /// Key for CSRF tokens; shared by every instance behind a load balancer. Or `secret_file`.
    /// Without either, each start makes a random key.
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { idle_timeout_minutes: 30, absolute_lifetime_minutes: 8 * 60, secret: None, secret_file: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginSettings {
    /// Failed logins per username within the window before the portal stops trying.
    pub max_failures_per_user: u32,
    /// Failed logins per source address within the window.
    pub max_failures_per_ip: u32,
    pub window_minutes: u64,
    /// Stop this many attempts before the domain's own lockout threshold.
    pub lockout_margin: u32,
    /// Every login answer takes at least this long, so timing does not reveal which users exist; and
    /// every "wrong password" as long as a recent wrong password of an account took (`login::pace`).
    pub min_response_ms: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            max_failures_per_user: 5,
            max_failures_per_ip: 30,
            window_minutes: 15,
            lockout_margin: 2,
            min_response_ms: 400,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnrolmentSettings {
    /// Stars needed to complete enrolment (fill the star row).
    pub enrolment_stars: u8,
    /// Stars needed to reset a password. At most `enrolment_stars`.
    pub reset_stars: u8,
    /// A service enrolled or replaced less than this many hours ago does not count toward a
    /// reset (0: it counts at once).
    #[serde(default = "default_cooldown_hours")]
    pub cooldown_hours: u32,
    /// Adding, replacing or removing a service needs a proof (a verification with an enrolled
    /// service, or the password for a first one) at most this many minutes old.
    #[serde(default = "default_stepup_minutes")]
    pub stepup_minutes: u32,
}

fn default_cooldown_hours() -> u32 {
    24
}

fn default_stepup_minutes() -> u32 {
    10
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServicesSettings {
    pub bankid: Option<ServiceSettings>,
    pub sms: Option<ServiceSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub stars: u8,
    #[serde(default)]
    pub required: bool,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PortalSettings {
    /// The portal's name, shown in the header and in messages.
    pub name: String,
    /// Who to contact when self-service is not enough (shown on error pages).
    pub service_desk: String,
    /// `sv` or `en`: used when the browser states no preference we speak.
    pub default_language: String,
    /// The IANA time zone times are shown in, on pages and in mail (the audit export stays UTC).
    pub time_zone: String,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            name: "Stjärna".into(),
            service_desk: String::new(),
            default_language: "sv".into(),
            time_zone: "Europe/Stockholm".into(),
        }
    }
}

impl Settings {
    pub fn uses_tls(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }
}

impl DirectorySettings {
    /// The domain's own DN: the `DC=` parts of `base_dn`, which may name an OU below it.
    pub fn domain_dn(&self) -> String {
        let dc = |rdn: &&str| rdn.trim().split_once('=').is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("DC"));
        self.base_dn.split(',').filter(dc).map(str::trim).collect::<Vec<_>>().join(",")
    }

    pub fn bind_password(&self) -> Result<SecretString, ConfigProblem> {
        resolve_secret("directory.bind_password", &self.bind_password, &self.bind_password_file)?.ok_or_else(|| {
            ConfigProblem::new("directory.bind_password", "is missing: give bind_password or bind_password_file".into())
        })
    }
}

impl SessionSettings {
    pub fn secret(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret("session.secret", &self.secret, &self.secret_file)
    }
}

/// A secret given inline (`key`) or read from a file (`key_file`), never both.
pub(super) fn resolve_secret(
    key: &str,
    inline: &Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigProblem> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigProblem::new(key, format!("is given both inline and as {key}_file; keep one"))),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(SecretString::from(s.trim_end_matches(['\r', '\n']).to_string()))),
            Ok(_) => Err(ConfigProblem::new(key, format!("the file {} is empty", path.display()))),
            Err(e) => Err(ConfigProblem::new(key, format!("the file {} cannot be read: {e}", path.display()))),
        },
        (None, None) => Ok(None),
    }
}

/// Reads the file and the environment; returns the settings, or every problem found.
pub fn load(path: &Path) -> Result<Settings, Vec<ConfigProblem>> {
    load_with_env(path, Env::prefixed("STJARNA__").split("__"))
}

/// Reads settings from TOML text alone (no environment); for tests and tools.
pub fn from_toml_str(text: &str) -> Result<Settings, Vec<ConfigProblem>> {
    parse(Figment::from(Toml::string(text)))
}

fn load_with_env(path: &Path, env: Env) -> Result<Settings, Vec<ConfigProblem>> {
    if !path.is_file() {
        return Err(vec![ConfigProblem::new(
            "",
            format!("the configuration file {} does not exist or is not a file", path.display()),
        )]);
    }
    parse(Figment::from(Toml::file_exact(path)).merge(env))
}

fn parse(figment: Figment) -> Result<Settings, Vec<ConfigProblem>> {
    let value: figment::value::Value = figment.extract().map_err(figment_problems)?;
    let mut unknown = Vec::new();
    let parsed: Result<Settings, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&value, &mut |p: serde_ignored::Path| {
            unknown.push(p.to_string())
        }));
    let mut problems: Vec<ConfigProblem> = unknown
        .into_iter()
        .map(|key| ConfigProblem::new(&key, "is not a setting Stjärna knows (misspelt?)".into()))
        .collect();
    match parsed {
        Ok(settings) => {
            problems.extend(validate(&settings));
            if problems.is_empty() { Ok(settings) } else { Err(problems) }
        }
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            problems.push(ConfigProblem::new(&key, e.into_inner().kind.to_string()));
            Err(problems)
        }
    }
}

fn figment_problems(e: figment::Error) -> Vec<ConfigProblem> {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let mut kind = e.kind.to_string();
            if let Some(meta) = &e.metadata {
                kind = format!("{kind} (in {})", meta.name);
            }
            ConfigProblem::new(&key, kind)
        })
        .collect()
}

#[cfg(test)]
mod tests;
