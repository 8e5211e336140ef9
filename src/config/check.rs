//! Semantic checks of a parsed configuration: each problem is one plain sentence.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::Settings;

/// One thing wrong with the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: &str, message: String) -> Self {
        Self { key: key.to_string(), message }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.key, self.message) }
    }
}

/// Every semantic problem in `s`; empty when the configuration is usable.
pub fn validate(s: &Settings) -> Vec<ConfigProblem> {
    let mut p = Vec::new();
    let mut bad = |key: &str, msg: String| p.push(ConfigProblem::new(key, msg));

    if s.server.listen.parse::<SocketAddr>().is_err() {
        bad("server.listen", format!("\"{}\" is not an address and port such as 127.0.0.1:8080", s.server.listen));
    }
    match url::Url::parse(&s.server.public_url) {
        Ok(u) if u.scheme() == "https" => {}
        // Browsers keep Secure cookies over plain http only for loopback: anywhere else nobody
        // could stay logged in.
        Ok(u) if u.scheme() == "http" && u.host().is_some_and(is_loopback_host) => {}
        Ok(u) if u.scheme() == "http" => bad(
            "server.public_url",
            format!(
                "\"{}\" is plain http on an address browsers do not treat as secure: the session cookie is Secure, \
                 so nobody could stay logged in. Serve the portal over https (behind a TLS-terminating proxy)",
                s.server.public_url
            ),
        ),
        _ => bad(
            "server.public_url",
            format!("\"{}\" must start with https:// (or http:// on loopback, for a local demo)", s.server.public_url),
        ),
    }
    for proxy in &s.server.trusted_proxies {
        if proxy.parse::<IpAddr>().is_err() {
            bad("server.trusted_proxies", format!("\"{proxy}\" is not an IP address"));
        }
    }

    // The admin pages trust the roles read when the password was last given for this long: a
    // member removed from the admin group keeps the rights until then.
    if !(1..=60).contains(&s.admin.reauth_minutes) {
        bad(
            "admin.reauth_minutes",
            format!(
                "{} is out of range: between 1 and 60 (a member removed from an admin group keeps the rights \
                 until the password is asked for again)",
                s.admin.reauth_minutes
            ),
        );
    }

    let postgres = s.database.url.starts_with("postgres://") || s.database.url.starts_with("postgresql://");
    if !s.database.url.starts_with("sqlite:") && !postgres {
        bad(
            "database.url",
            format!("\"{}\" is not supported; use sqlite://PATH or postgres://USER@HOST/DB", s.database.display_url()),
        );
    }
    // Several instances share one PostgreSQL: what they must agree on cannot be made up per start.
    if postgres && s.session.secret.is_none() && s.session.secret_file.is_none() {
        bad(
            "session.secret",
            "is required with PostgreSQL (every instance must make and accept the same CSRF tokens); \
             set the same secret (or secret_file) on every instance"
                .into(),
        );
    }
    if postgres && s.security.data_key.is_none() && s.security.data_key_file.is_none() {
        bad(
            "security.data_key",
            "is required with PostgreSQL (every instance must read the personal numbers and phone numbers \
             the others stored)"
                .into(),
        );
    }
    if let Err(e) = s.database.password() {
        bad(&e.key, e.message);
    } else if s.database.password_file.is_some() && !postgres {
        bad("database.password_file", "is only for PostgreSQL; SQLite has no password".into());
    }
    if let Err(e) = crate::clock::LocalTime::new(&s.portal.time_zone) {
        bad("portal.time_zone", e.to_string());
    }
    let e = &s.expiry;
    if e.enabled && (e.days_before.is_empty() || e.days_before.iter().any(|d| *d == 0 || *d > 365)) {
        bad("expiry.days_before", "list the days before expiry to remind, each from 1 to 365 (e.g. [14, 7, 1])".into());
    }
    if e.enabled && e.check_minutes == 0 {
        bad("expiry.check_minutes", "must be at least 1".into());
    }
    if e.enabled && e.sms && !s.services.sms.as_ref().is_some_and(|b| b.enabled) {
        bad("expiry.sms", "needs the mobile code service (services.sms.enabled and [sms])".into());
    }
    if let Some(listen) = &s.metrics.listen {
        match listen.parse::<SocketAddr>() {
            Err(_) => bad("metrics.listen", format!("\"{listen}\" is not an address and port such as 127.0.0.1:9464")),
            // Port 0 picks a free port for each, as tests do.
            Ok(addr) if addr.port() != 0 && *listen == s.server.listen => {
                bad("metrics.listen", "must differ from server.listen: metrics never go on the public port".into())
            }
            Ok(_) => {}
        }
    }
    if let Some(Err(e)) = s.audit.syslog_target() {
        bad("audit.syslog", e);
    }
    if let Some(path) = &s.audit.json_file
        && let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        bad("audit.json_file", format!("{} cannot be written: {e}", path.display()));
    }
    if s.database.max_connections == 0 {
        bad("database.max_connections", "must be at least 1".into());
    }

    let d = &s.directory;
    let key = if d.urls.is_empty() { "directory.url" } else { "directory.urls" };
    match (&d.url, d.urls.is_empty()) {
        (None, true) => bad("directory.urls", "name at least one domain controller (or give directory.url)".into()),
        (Some(_), false) => bad("directory.url", "give either url or urls, not both".into()),
        _ => {}
    }
    for url in d.urls() {
        match (url.split_once("://").map(|(scheme, _)| scheme), d.starttls) {
            (Some("ldaps"), false) => {}
            (Some("ldap"), true) => {}
            (Some("ldaps"), true) => bad("directory.starttls", "must be false with an ldaps:// URL".into()),
            (Some("ldap"), false) => bad(
                key,
                format!(
                    "\"{url}\": ldap:// without starttls would send passwords in clear text; use ldaps:// or set starttls = true"
                ),
            ),
            _ => bad(key, format!("\"{url}\" is not an ldaps:// or ldap:// URL")),
        }
    }
    if d.failover_seconds == 0 {
        bad("directory.failover_seconds", "must be at least 1".into());
    }
    if let Some(ca) = &d.ca_file
        && let Err(e) = std::fs::read(ca)
    {
        bad("directory.ca_file", format!("{} cannot be read: {e}", ca.display()));
    }
    if let Err(e) = d.bind_password() {
        bad(&e.key, e.message);
    }
    for (key, dn) in [("directory.bind_dn", &d.bind_dn), ("directory.base_dn", &d.base_dn)] {
        if !looks_like_dn(dn) {
            bad(key, format!("\"{dn}\" is not a distinguished name such as DC=example,DC=se"));
        }
    }
    for (key, group) in [
        ("directory.admin_group", &d.admin_group),
        ("directory.helpdesk_group", &d.helpdesk_group),
        ("directory.reporting_group", &d.reporting_group),
    ] {
        if let Some(group) = group.as_ref().filter(|g| !looks_like_dn(g)) {
            bad(key, format!("\"{group}\" is not a distinguished name"));
        }
    }
    if !(d.user_filter.starts_with('(') && d.user_filter.ends_with(')')) {
        bad("directory.user_filter", "must be an LDAP filter in parentheses".into());
    }
    if d.netbios_domain.is_empty() || d.netbios_domain.contains(['\\', '/', ' ']) {
        bad("directory.netbios_domain", "must be the short domain name, such as EXAMPLE".into());
    }
    if d.connect_timeout_seconds == 0 || d.operation_timeout_seconds == 0 {
        bad("directory", "timeouts must be at least 1 second".into());
    }
    if !(1..=256).contains(&d.pool_size) {
        bad("directory.pool_size", format!("must be between 1 and 256, not {}", d.pool_size));
    }

    if s.session.idle_timeout_minutes == 0 {
        bad("session.idle_timeout_minutes", "must be at least 1".into());
    }
    if s.session.absolute_lifetime_minutes < s.session.idle_timeout_minutes {
        bad("session.absolute_lifetime_minutes", "must not be shorter than the idle timeout".into());
    }
    match s.session.secret() {
        Ok(Some(secret)) if secrecy::ExposeSecret::expose_secret(&secret).len() < 32 => {
            bad("session.secret", "must be at least 32 characters long".into())
        }
        Ok(_) => {}
        Err(e) => bad(&e.key, e.message),
    }

    if s.login.max_failures_per_user == 0 || s.login.max_failures_per_ip == 0 {
        bad("login", "max_failures_per_user and max_failures_per_ip must be at least 1".into());
    }
    if s.login.window_minutes == 0 {
        bad("login.window_minutes", "must be at least 1".into());
    }
    for (key, ms) in
        [("login.min_response_ms", s.login.min_response_ms), ("reset.min_response_ms", s.reset.min_response_ms)]
    {
        if ms > 5000 {
            bad(
                key,
                format!(
                    "is {ms}: at most 5000 (every answer waits at least this long, a login's up to eight times it)"
                ),
            );
        }
    }

    let services = crate::enrolment::catalogue_from(&s.services);
    for problem in crate::enrolment::check_rules(&services, s.enrolment.enrolment_stars, s.enrolment.reset_stars) {
        bad(problem.key(), problem.to_string());
    }
    if s.reset.protected == crate::config::ProtectedMode::Stars {
        let (needed, reset, all) = (
            s.reset.protected_stars,
            s.enrolment.reset_stars,
            services.iter().map(|svc| u32::from(svc.stars)).sum::<u32>(),
        );
        if needed <= reset {
            bad(
                "reset.protected_stars",
                format!(
                    "is {needed}, not above enrolment.reset_stars ({reset}): with protected = \"stars\" privileged \
                     accounts would reset with the stars everyone needs"
                ),
            );
        } else if u32::from(needed) > all {
            bad(
                "reset.protected_stars",
                format!("is {needed}, more than the enabled services give together ({all}): no reset could reach it"),
            );
        }
    }

    check_bankid(s, &mut bad);
    check_sms(s, &mut bad);
    check_mail_and_reset(s, &mut bad);

    if !matches!(s.portal.default_language.as_str(), "sv" | "en") {
        bad("portal.default_language", "must be \"sv\" or \"en\"".into());
    }
    p
}

fn looks_like_dn(dn: &str) -> bool {
    dn.split(',').all(|rdn| rdn.split_once('=').is_some_and(|(a, v)| !a.trim().is_empty() && !v.is_empty()))
}

fn check_bankid(s: &Settings, bad: &mut impl FnMut(&str, String)) {
    let enabled =
        s.services.bankid.as_ref().is_some_and(|b| b.enabled) || s.services.sms.as_ref().is_some_and(|b| b.enabled);
    match s.security.data_key() {
        Ok(Some(key)) => {
            if crate::identity::DataKey::from_base64(secrecy::ExposeSecret::expose_secret(&key)).is_err() {
                bad("security.data_key", "must be 32 random bytes in base64 (head -c 32 /dev/urandom | base64)".into());
            }
        }
        Ok(None) if enabled => bad(
            "security.data_key",
            "is needed to encrypt personal numbers and phone numbers (head -c 32 /dev/urandom | base64)".into(),
        ),
        Ok(None) => {}
        Err(e) => bad(&e.key, e.message),
    }
    let Some(b) = &s.bankid else {
        if s.services.bankid.as_ref().is_some_and(|b| b.enabled) {
            bad(
                "bankid",
                "is missing: services.bankid is enabled, so the [bankid] connection must be configured".into(),
            );
        }
        return;
    };
    if !b.url.starts_with("https://") {
        bad("bankid.url", format!("\"{}\" must be an https:// URL", b.url));
    }
    let readable = |key: &str, path: &Option<std::path::PathBuf>, bad: &mut dyn FnMut(&str, String)| {
        if let Some(p) = path
            && let Err(e) = std::fs::read(p)
        {
            bad(key, format!("{} cannot be read: {e}", p.display()));
        }
    };
    readable("bankid.ca_file", &b.ca_file, bad);
    readable("bankid.client_certificate_file", &b.client_certificate_file, bad);
    readable("bankid.client_key_file", &b.client_key_file, bad);
    if let Err(e) = b.certificate_password() {
        bad(&e.key, e.message);
    }
    match b.backend {
        crate::config::BankIdBackend::Rp => {
            if b.ca_file.is_none() {
                bad("bankid.ca_file", "is needed with the rp backend: BankID's root CA is pinned".into());
            }
            if b.client_certificate_file.is_none() {
                bad("bankid.client_certificate_file", "is needed with the rp backend (mutual TLS)".into());
            }
        }
        crate::config::BankIdBackend::Idkollen => {
            if b.account_id.as_deref().is_none_or(str::is_empty) {
                bad("bankid.account_id", "is needed with the idkollen backend".into());
            }
            match b.secret_key() {
                Ok(Some(_)) => {}
                Ok(None) => bad("bankid.secret_key", "is needed with the idkollen backend".into()),
                Err(e) => bad(&e.key, e.message),
            }
            if b.same_device_ip == crate::config::SameDeviceIp::Refuse {
                bad(
                    "bankid.same_device_ip",
                    "cannot be \"refuse\" with the idkollen backend: the broker does not give the app's \
                     address, so every BankID opened on the same device would be refused (use \"log\" or \"off\")"
                        .into(),
                );
            }
        }
    }
    if let Some(attr) = &b.personal_number_attribute
        && (attr.is_empty() || !attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        bad("bankid.personal_number_attribute", format!("\"{attr}\" is not an LDAP attribute name"));
    }
    if b.timeout_seconds == 0 {
        bad("bankid.timeout_seconds", "must be at least 1".into());
    }
}

fn check_sms(s: &Settings, bad: &mut impl FnMut(&str, String)) {
    let enabled = s.services.sms.as_ref().is_some_and(|b| b.enabled);
    let Some(sms) = &s.sms else {
        if enabled {
            bad("sms", "is missing: services.sms is enabled, so the [sms] gateway must be configured".into());
        }
        return;
    };
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|p| sms.url.starts_with(p));
    if !sms.url.starts_with("https://") && !local {
        bad("sms.url", format!("\"{}\" must be an https:// URL (plain http only on loopback)", sms.url));
    }
    let password = match sms.password() {
        Ok(p) => p,
        Err(e) => {
            bad(&e.key, e.message);
            None
        }
    };
    match sms.gateway {
        crate::config::SmsGatewayKind::Elks46 | crate::config::SmsGatewayKind::Twilio => {
            if sms.username.as_deref().is_none_or(str::is_empty) {
                bad("sms.username", "is needed for this gateway (46elks API username or Twilio Account SID)".into());
            }
            if password.is_none() {
                bad("sms.password", "is needed for this gateway (46elks API password or Twilio auth token)".into());
            }
        }
        crate::config::SmsGatewayKind::Webhook => {}
    }
    if !sms.cost_per_text.is_finite() || sms.cost_per_text < 0.0 {
        bad("sms.cost_per_text", format!("{} must be zero or more (what one text costs)", sms.cost_per_text));
    }
    let name_ok = sms.from.len() <= 11 && sms.from.chars().all(|c| c.is_ascii_alphanumeric()) && !sms.from.is_empty();
    let number_ok =
        sms.from.starts_with('+') && sms.from[1..].chars().all(|c| c.is_ascii_digit()) && sms.from.len() > 4;
    if !name_ok && !number_ok {
        bad(
            "sms.from",
            format!(
                "\"{}\" must be a number such as +46701234567 or a name of at most 11 letters and digits",
                sms.from
            ),
        );
    }
    if sms.default_country.parse::<phonenumber::country::Id>().is_err() {
        bad("sms.default_country", format!("\"{}\" is not a country code such as SE", sms.default_country));
    }
    if let Some(c) = sms.countries.iter().find(|c| c.parse::<phonenumber::country::Id>().is_err()) {
        bad("sms.countries", format!("\"{c}\" is not a country code such as SE"));
    } else if sms.countries.is_empty() {
        bad("sms.countries", "at least one country is needed".into());
    } else if !sms.countries.contains(&sms.default_country) {
        bad("sms.countries", format!("the default country \"{}\" must be among them", sms.default_country));
    }
    if sms.code_lifetime_seconds < 30 || sms.max_attempts < 1 || sms.resend_cooldown_seconds < 0 {
        bad("sms", "code_lifetime_seconds must be at least 30 and max_attempts at least 1".into());
    }
    let l = &sms.limits;
    if [l.per_user_per_hour, l.per_ip_per_hour, l.per_number_per_hour, l.per_prefix_per_hour].contains(&0) {
        bad("sms.limits", "every limit must be at least 1".into());
    }
    if sms.timeout_seconds == 0 {
        bad("sms.timeout_seconds", "must be at least 1".into());
    }
}

fn check_mail_and_reset(s: &Settings, bad: &mut impl FnMut(&str, String)) {
    if let Some(m) = &s.mail {
        let loopback = matches!(m.host.as_str(), "127.0.0.1" | "localhost" | "::1");
        if m.security == crate::config::MailSecurity::None && !loopback {
            bad(
                "mail.security",
                "\"none\" is only allowed for a mail server on 127.0.0.1; use \"starttls\" or \"tls\"".into(),
            );
        }
        if m.from.parse::<lettre::message::Mailbox>().is_err() {
            bad("mail.from", format!("\"{}\" is not a mail address such as Stjärna <noreply@example.se>", m.from));
        }
        if let Err(e) = m.password() {
            bad(&e.key, e.message);
        }
        if m.port == 0 {
            bad("mail.port", "must be a port number".into());
        }
    }
    let r = &s.reset;
    if r.flow_minutes == 0 || r.max_failures < 1 || r.resets_per_day == 0 {
        bad("reset", "flow_minutes, max_failures and resets_per_day must each be at least 1".into());
    }
    if let Some(url) = &s.password.pwned_range_url {
        let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
        if !(url.starts_with("https://") || local) || !url.ends_with('/') {
            bad(
                "password.pwned_range_url",
                format!("\"{url}\" must be an https:// URL ending in /range/ (plain http only on loopback)"),
            );
        }
    }
    if s.password.min_length > 256 {
        bad("password.min_length", "cannot be above 256 (AD's limit)".into());
    }
}

/// 127.0.0.0/8, ::1 and localhost: the addresses browsers treat as secure over plain http.
fn is_loopback_host(host: url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}
