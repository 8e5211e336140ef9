//! Settings of the identity services, mail, reset, passwords and administration.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigProblem, resolve_secret, yes};

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
    /// Members of these groups (nested membership counts) and accounts with `adminCount=1` are
    /// privileged, and always the portal's admin, helpdesk and reporting groups. Unset: Domain Admins.
    pub protected_groups: Option<Vec<String>>,
    /// What a privileged account may do: `service-desk` (no self-service reset; the page sends
    /// them to the service desk) or `stars` (a reset needs `protected_stars`).
    pub protected: ProtectedMode,
    /// Stars a privileged account needs for a reset, with `protected = "stars"`.
    pub protected_stars: u8,
    /// Flows anyone may start (a reset by name or by BankID, a BankID login) per client address
    /// (IPv6: per /64) per hour.
    pub starts_per_address_per_hour: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtectedMode {
    ServiceDesk,
    Stars,
}

/// Where a privileged group comes from, for check-config's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    /// One of the portal's own groups (`directory.admin_group` and the like).
    Setting(&'static str),
    /// `reset.protected_groups`.
    Protected,
    /// Domain Admins, when `reset.protected_groups` is not set.
    Default,
}

impl std::fmt::Display for GroupSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupSource::Setting(key) => f.write_str(key),
            GroupSource::Protected => f.write_str("reset.protected_groups"),
            GroupSource::Default => f.write_str("reset.protected_groups (unset: Domain Admins)"),
        }
    }
}

impl super::Settings {
    /// The groups whose members are privileged: the portal's own admin, helpdesk and reporting
    /// groups always (whoever controls one of their phones must not reset their way into the
    /// audit trail or the admin pages), and the configured ones, else Domain Admins of the domain
    /// (`directory.base_dn` may be an OU below it).
    pub fn privileged_groups(&self) -> Vec<(GroupSource, String)> {
        let d = &self.directory;
        let own = [
            ("directory.admin_group", &d.admin_group),
            ("directory.helpdesk_group", &d.helpdesk_group),
            ("directory.reporting_group", &d.reporting_group),
        ];
        let mut groups: Vec<(GroupSource, String)> =
            own.into_iter().filter_map(|(key, dn)| Some((GroupSource::Setting(key), dn.clone()?))).collect();
        let configured = match &self.reset.protected_groups {
            Some(list) => list.iter().map(|dn| (GroupSource::Protected, dn.clone())).collect(),
            None => vec![(GroupSource::Default, format!("CN=Domain Admins,CN=Users,{}", d.domain_dn()))],
        };
        for (source, dn) in configured {
            if !groups.iter().any(|(_, g)| g.eq_ignore_ascii_case(&dn)) {
                groups.push((source, dn));
            }
        }
        groups
    }
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
            protected_groups: None,
            protected: ProtectedMode::ServiceDesk,
            protected_stars: 0,
            starts_per_address_per_hour: 30,
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

impl SmsGatewayKind {
    /// The name in the configuration (and in metrics).
    pub fn id(self) -> &'static str {
        match self {
            SmsGatewayKind::Elks46 => "46elks",
            SmsGatewayKind::Twilio => "twilio",
            SmsGatewayKind::Webhook => "webhook",
        }
    }
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
    /// The countries whose mobile numbers may be enrolled, and the selector offers (ISO codes);
    /// texts to any other are not sent.
    #[serde(default = "default_countries")]
    pub countries: Vec<String>,
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
    /// What one text costs (in your currency), for the `stjarna_sms_cost` metric.
    #[serde(default)]
    pub cost_per_text: f64,
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
fn default_countries() -> Vec<String> {
    crate::identity::sms::COUNTRIES.iter().map(|c| c.to_string()).collect()
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
    /// Memory for drawn QR frames, in megabytes (a frame is about 6 kB; each is drawn once per second
    /// of its order however often it is fetched).
    #[serde(default = "default_qr_cache")]
    pub qr_cache_megabytes: u64,
    /// Orders BankID rates above this risk (`low`, `moderate`, `high`) are refused.
    #[serde(default = "default_max_risk")]
    pub max_risk: crate::identity::bankid::Risk,
    /// "Open BankID on this device": what to do when the app's address is not the browser's
    /// (`off`, `log` or `refuse`).
    #[serde(default)]
    pub same_device_ip: SameDeviceIp,
}

fn default_max_risk() -> crate::identity::bankid::Risk {
    crate::identity::bankid::Risk::Moderate
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameDeviceIp {
    Off,
    #[default]
    Log,
    Refuse,
}

fn default_bankid_timeout() -> u64 {
    10
}
fn default_qr_cache() -> u64 {
    16
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
