//! Configuration: one TOML file plus `STJARNA__SECTION__KEY` environment overrides.
//!
//! Loading never stops at the first problem: [`load`] returns every problem it can find, in plain
//! words, so that `stjarna check-config` can list them all at once.

mod check;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

pub use check::{ConfigProblem, validate};
use secrecy::SecretString;

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
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            reauth_minutes: 15,
            audit_retention_days: 365,
            reminder_interval_days: 7,
            reminders_per_run: 500,
            portal_url: None,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, then STARTTLS, which is required (port 587).
    Starttls,
    /// No encryption: only for a mail server on loopback.
    None,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub security: MailSecurity,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. `Stjärna <noreply@example.se>`.
    pub from: String,
    #[serde(default = "default_mail_timeout")]
    pub timeout_seconds: u64,
}

fn default_mail_timeout() -> u64 {
    10
}

impl MailSettings {
    pub fn password(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret("mail.password", &self.password, &self.password_file)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ResetSettings {
    /// A reset must be finished within this many minutes.
    pub flow_minutes: u64,
    /// Failed verifications before the flow ends.
    pub max_failures: i64,
    /// Resets and unlocks per user per day.
    pub resets_per_day: u32,
    /// Unlock the account when the password is reset.
    pub unlock_on_reset: bool,
    /// Require a new password at next logon after a reset.
    pub must_change_at_next_logon: bool,
    /// Answers before the user has proved anything take at least this long.
    pub min_response_ms: u64,
}

impl Default for ResetSettings {
    fn default() -> Self {
        Self {
            flow_minutes: 15,
            max_failures: 5,
            resets_per_day: 3,
            unlock_on_reset: true,
            must_change_at_next_logon: false,
            min_response_ms: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordSettings {
    /// A longer minimum than the domain's (the longer one applies).
    pub min_length: u32,
    /// Words no password may contain (any case).
    pub banned_words: Vec<String>,
    /// Refuse the commonly used passwords shipped with Stjärna.
    pub check_common: bool,
    /// Check new passwords against our rules before AD does. Off only to see AD's own refusals.
    pub precheck: bool,
    /// A Pwned-Passwords-compatible range API (`https://api.pwnedpasswords.com/range/`); unset: no check.
    pub pwned_range_url: Option<String>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self { min_length: 10, banned_words: Vec::new(), check_common: true, precheck: true, pwned_range_url: None }
    }
}

/// Which SMS gateway the portal sends through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsGatewayKind {
    #[serde(rename = "46elks")]
    Elks46,
    Twilio,
    Webhook,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmsSettings {
    pub gateway: SmsGatewayKind,
    /// 46elks: `https://api.46elks.com`; Twilio: `https://api.twilio.com`; webhook: the full URL.
    pub url: String,
    /// 46elks API username, or Twilio Account SID.
    pub username: Option<String>,
    /// 46elks API password, Twilio auth token, or the webhook's bearer token. Or `password_file`.
    pub password: Option<SecretString>,
    pub password_file: Option<PathBuf>,
    /// The sender: a number in E.164 or a name of at most 11 letters and digits.
    pub from: String,
    #[serde(default = "default_sms_timeout")]
    pub timeout_seconds: u64,
    /// The country assumed for numbers typed without `+` or `00` (ISO code).
    #[serde(default = "default_country")]
    pub default_country: String,
    /// Fill the number field with the `mobile` attribute from AD.
    #[serde(default = "yes")]
    pub prefill_from_ad: bool,
    /// Accept only the number in AD's `mobile` attribute.
    #[serde(default)]
    pub only_ad_number: bool,
    #[serde(default = "default_code_lifetime")]
    pub code_lifetime_seconds: i64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    #[serde(default = "default_resend_cooldown")]
    pub resend_cooldown_seconds: i64,
    #[serde(default)]
    pub limits: SmsLimitSettings,
}

/// Texts allowed per hour, against SMS pumping.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmsLimitSettings {
    pub per_user_per_hour: u32,
    pub per_ip_per_hour: u32,
    pub per_number_per_hour: u32,
    pub per_prefix_per_hour: u32,
}

impl Default for SmsLimitSettings {
    fn default() -> Self {
        Self { per_user_per_hour: 5, per_ip_per_hour: 20, per_number_per_hour: 5, per_prefix_per_hour: 50 }
    }
}

fn default_sms_timeout() -> u64 {
    10
}
fn default_country() -> String {
    "SE".into()
}
fn default_code_lifetime() -> i64 {
    300
}
fn default_max_attempts() -> i64 {
    3
}
fn default_resend_cooldown() -> i64 {
    60
}

impl SmsSettings {
    pub fn password(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret("sms.password", &self.password, &self.password_file)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecuritySettings {
    /// 32 random bytes, base64: encrypts personal data at rest and keys its look-up hashes.
    pub data_key: Option<SecretString>,
    pub data_key_file: Option<PathBuf>,
}

impl SecuritySettings {
    pub fn data_key(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret("security.data_key", &self.data_key, &self.data_key_file)
    }
}

/// Which BankID service the portal talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BankIdBackend {
    /// BankID's RP API v6.0, with the organisation's own client certificate.
    Rp,
    /// The IDkollen v3 broker.
    Idkollen,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BankIdSettings {
    pub backend: BankIdBackend,
    /// RP API base (`https://appapi2.bankid.com/rp/v6.0/`) or the broker's (`https://api.idkollen.se`).
    pub url: String,
    /// RP API: the CA that issued BankID's server certificate, pinned. Broker: optional, else system roots.
    pub ca_file: Option<PathBuf>,
    /// RP API: the client certificate, PKCS#12 (`.p12`) or PEM (certificate and key).
    pub client_certificate_file: Option<PathBuf>,
    /// PEM only, when the key is in its own file.
    pub client_key_file: Option<PathBuf>,
    pub client_certificate_password: Option<SecretString>,
    pub client_certificate_password_file: Option<PathBuf>,
    /// Broker: the account id and secret key (HTTP Basic).
    pub account_id: Option<String>,
    pub secret_key: Option<SecretString>,
    pub secret_key_file: Option<PathBuf>,
    #[serde(default = "default_bankid_timeout")]
    pub timeout_seconds: u64,
    /// AD attribute holding the user's personal number (e.g. `employeeNumber`). When set, only that
    /// person's BankID can be enrolled.
    pub personal_number_attribute: Option<String>,
    /// Demo only: where "open BankID on this device" goes, with `{token}` for the autostart token.
    pub launch_url: Option<String>,
}

fn default_bankid_timeout() -> u64 {
    10
}

impl BankIdSettings {
    pub fn certificate_password(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret(
            "bankid.client_certificate_password",
            &self.client_certificate_password,
            &self.client_certificate_password_file,
        )
    }

    pub fn secret_key(&self) -> Result<Option<SecretString>, ConfigProblem> {
        resolve_secret("bankid.secret_key", &self.secret_key, &self.secret_key_file)
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
}

fn default_max_connections() -> u32 {
    8
}

#[derive(Debug, Clone, Deserialize)]
pub struct DirectorySettings {
    /// `ldaps://dc1.example.se` or, with `starttls = true`, `ldap://dc1.example.se`.
    pub url: String,
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
    /// Every login answer takes at least this long, so timing does not reveal which users exist.
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

fn yes() -> bool {
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
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self { name: "Stjärna".into(), service_desk: String::new(), default_language: "sv".into() }
    }
}

impl Settings {
    pub fn uses_tls(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }
}

impl DirectorySettings {
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
fn resolve_secret(
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
