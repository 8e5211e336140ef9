//! Choices that are valid but weak: what `check-config` warns about (the portal starts).

use super::Settings;
use super::check::ConfigProblem;

/// Choices that are valid but weak against the portal's attackers (a stolen password, a stolen or
/// swapped phone, a relayed QR code). `check-config` prints them as warnings; the portal starts.
pub fn warnings(s: &Settings) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let mut warn = |key: &str, message: &str| out.push(ConfigProblem::new(key, message.to_string()));
    let data_key = s.security.data_key.is_some() || s.security.data_key_file.is_some();
    if s.session.secret.is_none() && s.session.secret_file.is_none() && !data_key {
        warn(
            "session.secret",
            "not set (nor security.data_key): a random key is made at each start, so sessions end and \
             the tags that stand for names typed in the audit trail and the limits change when the portal \
             restarts",
        );
    }
    if enabled(&s.services.bankid).is_some() && s.bankid.as_ref().is_some_and(|b| b.personal_number_attribute.is_none())
    {
        warn(
            "bankid.personal_number_attribute",
            "BankID is enabled but not bound to a personal number in AD: anyone who logs in with a stolen \
             password can enrol their own BankID, and the service desk can tell an agent's other accounts \
             only by what is enrolled on them. Set it to an attribute users cannot write themselves \
             (e.g. employeeNumber).",
        );
    }
    for (key, svc) in [("services.bankid.stars", &s.services.bankid), ("services.sms.stars", &s.services.sms)] {
        if enabled(svc).is_some_and(|svc| svc.stars >= s.enrolment.reset_stars) {
            warn(key, "this service alone reaches enrolment.reset_stars: one stolen factor is enough for a reset");
        }
    }
    if enabled(&s.services.bankid).is_some()
        && s.bankid.as_ref().is_some_and(|b| b.backend == crate::config::BankIdBackend::Idkollen)
    {
        warn(
            "bankid.max_risk",
            "is not enforced with the idkollen backend: the broker gives no risk indication, so orders are \
             accepted whatever BankID thought of them (the rp backend asks for it)",
        );
    }
    if s.expiry.enabled && s.mail.is_none() {
        warn("expiry.enabled", "expiry reminders are on but there is no [mail] section: the mail stays in the outbox");
    }
    if enabled(&s.services.sms).is_some() && s.sms.as_ref().is_some_and(|m| !m.only_ad_number) {
        warn(
            "sms.only_ad_number",
            "users may enrol any mobile number; with only_ad_number = true the number comes from AD \
             (make sure users cannot write that attribute: AD lets SELF write `mobile` by default)",
        );
    }
    if s.database.is_postgres() {
        let url = &s.database.url;
        if s.database.display_url() != *url {
            warn("database.url", "holds the database password; move it to database.password_file");
        }
        if !s.database.is_loopback() && !s.database.verifies_server() {
            warn(
                "database.url",
                "the connection to PostgreSQL is not verified: add ?sslmode=verify-full&sslrootcert=/path/ca.pem \
                 (without it, anyone on the path can read and change sessions and flows)",
            );
        }
    }
    if s.enrolment.cooldown_hours == 0 {
        warn("enrolment.cooldown_hours", "a service counts toward a reset as soon as it is enrolled (no cooling-off)");
    }
    out
}

fn enabled(svc: &Option<crate::config::ServiceSettings>) -> Option<&crate::config::ServiceSettings> {
    svc.as_ref().filter(|s| s.enabled)
}
