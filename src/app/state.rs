//! Building the application's state from the settings: the services, the identity flows and
//! what they share.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::audit::Auditor;
use crate::clock::{Clock, Random};
use crate::config::{BankIdBackend, Settings, SmsGatewayKind};
use crate::directory::Directory;
use crate::enrolment::{ChangeNotifier, Desk, EnrolmentService};
use crate::enrolment::{StarRule, catalogue_from};
use crate::i18n::Lang;
use crate::identity::ChangeNotices;
use crate::identity::DataKey;
use crate::identity::bankid::{BankId, BankIdFlows, DirectoryPersonalNumbers, IdkollenClient, Policy, RpClient};
use crate::identity::sms::{Elks46, Metered, SmsFlows, SmsGateway, SmsLimits, Twilio, Webhook};
use crate::login::{LoginService, Throttle};
use crate::mail::Outbox;
use crate::reset::ResetService;
use crate::session::Sessions;
use crate::storage::Storage;
use crate::throttle::Limit;
use crate::web::{self, AppState, StaticAssets};

use super::StartupError;

pub(super) fn build_state(
    settings: Settings,
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
) -> Result<AppState, StartupError> {
    let csrf_key = match settings.session.secret().map_err(|e| StartupError::Config(e.to_string()))? {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            tracing::warn!("session.secret is not set: using a random key; set it when running several instances");
            let mut key = vec![0u8; 32];
            random.fill(&mut key);
            key
        }
    };
    let forward = crate::audit::Forwarder::new(&settings.audit).map_err(|e| StartupError::Config(e.to_string()))?;
    // Tags of names typed key limits and flows too, so their key must outlive a restart: the
    // data key when there is one (required with BankID, mobile codes or PostgreSQL), else the
    // session secret (random until one is set: check-config warns).
    let tag_key = match settings.security.data_key().map_err(|e| StartupError::Config(e.to_string()))? {
        Some(_) => data_key(&settings)?,
        None => DataKey::derived(&csrf_key, b"stjarna-name-tags"),
    };
    let auditor =
        Auditor::new(store.clone(), clock.clone()).forwarding(forward).tagging(crate::audit::NameTags::new(tag_key));
    let time = crate::clock::LocalTime::new(&settings.portal.time_zone)
        .map_err(|e| StartupError::Config(format!("portal.time_zone: {e}")))?;
    let outbox = Outbox::new(store.clone(), clock.clone(), &settings.portal.name, &settings.portal.service_desk)
        .in_zone(time.clone());
    let sms = sms_flows(&settings, &store, &clock, &random, &auditor)?;
    let notifier: Arc<dyn ChangeNotifier> = Arc::new(ChangeNotices {
        directory: directory.clone(),
        store: store.clone(),
        outbox: outbox.clone(),
        auditor: auditor.clone(),
        key: data_key(&settings).ok(),
        gateway: sms.as_ref().map(|s| s.gateway()),
        portal: settings.portal.name.clone(),
        service_desk: settings.portal.service_desk.clone(),
    });
    let sms = sms.map(|f| Arc::new(f.with_notifier(notifier.clone())));
    let bankid = bankid_flows(&settings, &store, &clock, &random, &auditor)?
        .map(|f| Arc::new(f.with_notifier(notifier.clone())));
    let (window, cooldown) =
        (settings.enrolment.stepup_minutes as i64 * 60, settings.enrolment.cooldown_hours as i64 * 3600);
    let enrolments =
        EnrolmentService::new(store.clone(), directory.clone(), clock.clone(), auditor.clone(), window, cooldown)
            .with_notifier(notifier.clone());
    let mut desk = Desk::new(store.clone(), clock.clone(), auditor.clone(), window, cooldown)
        .with_notifier(notifier)
        .with_privileged(crate::directory::Privileged::new(
            directory.clone(),
            settings.privileged_groups().into_iter().map(|(_, dn)| dn).collect(),
        ));
    let attribute = settings.bankid.as_ref().and_then(|b| b.personal_number_attribute.as_deref());
    match (attribute, &bankid) {
        (Some(attribute), Some(flows)) => {
            let key = flows.key().clone();
            let numbers = DirectoryPersonalNumbers::new(directory.clone(), attribute, key, clock.clone());
            desk = desk.with_personal_numbers(Arc::new(numbers));
        }
        (None, Some(_)) => {}
        (_, None) => desk = desk.without_bankid(),
    }
    // One set of rules for new passwords, for resets and changes alike.
    let rules = Arc::new(
        crate::reset::NewPasswordRules::new(directory.clone(), &settings.password)
            .map_err(|e| StartupError::Config(format!("password.pwned_range_url: no HTTP client: {e}")))?,
    );
    let reset = ResetService::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        random.clone(),
        auditor.clone(),
        outbox.clone(),
        catalogue_from(&settings.services),
        settings.enrolment.reset_stars,
        &settings.directory.netbios_domain,
        rules.clone(),
        settings.reset.clone(),
    )
    .with_protected_groups(settings.privileged_groups().into_iter().map(|(_, dn)| dn).collect())
    .with_cooldown(settings.enrolment.cooldown_hours as i64 * 3600);
    let throttle = Throttle::new(store.clone(), clock.clone());
    let login = Arc::new(LoginService::new(&settings, directory.clone(), throttle, auditor.clone(), clock.clone()));
    let sessions = Sessions::new(
        store.clone(),
        clock.clone(),
        random.clone(),
        settings.session.idle_timeout_minutes,
        settings.session.absolute_lifetime_minutes,
    )
    .checked_in(
        directory.clone(),
        crate::session::RoleGroups {
            admin: settings.directory.admin_group.clone(),
            helpdesk: settings.directory.helpdesk_group.clone(),
            reporting: settings.directory.reporting_group.clone(),
        },
    );
    let change = crate::change::ChangeService::new(
        login.clone(),
        directory.clone(),
        rules,
        sessions.clone(),
        outbox.clone(),
        auditor.clone(),
    );
    let trusted_proxies: Vec<IpAddr> = settings
        .server
        .trusted_proxies
        .iter()
        .filter_map(|p| p.parse::<IpAddr>().ok())
        .map(|p| p.to_canonical())
        .collect();
    let admin = crate::admin::AdminService::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        auditor.clone(),
        outbox.clone(),
        catalogue_from(&settings.services),
        StarRule { enrolment_stars: settings.enrolment.enrolment_stars, reset_stars: settings.enrolment.reset_stars },
        &settings.admin,
        &settings.directory.bind_dn,
    );
    let status = crate::admin::status::StatusProbe {
        directory: directory.clone(),
        store: store.clone(),
        clock: clock.clone(),
        bankid: bankid.clone(),
        sms: sms.clone(),
        mail: settings.mail.clone(),
        last: Default::default(),
    };
    Ok(AppState {
        enrolments,
        desk,
        admin,
        outbox,
        status,
        dns_domain: dns_domain(&settings.directory.base_dn),
        site: reqwest::Url::parse(&settings.server.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| settings.server.public_url.clone()),
        time,
        reset,
        bankid,
        sms,
        services: catalogue_from(&settings.services),
        star_rule: StarRule {
            enrolment_stars: settings.enrolment.enrolment_stars,
            reset_stars: settings.enrolment.reset_stars,
        },
        default_lang: Lang::from_code(&settings.portal.default_language).unwrap_or(Lang::Sv),
        // Browsers treat http://localhost and 127.0.0.1 as secure, so Secure cookies work there too.
        secure_cookies: true,
        cookies: web::CookieNames::for_public_url(settings.uses_tls()),
        notes: web::NoteSeal::new(&csrf_key),
        csrf: web::CsrfKey::new(csrf_key),
        random: random.clone(),
        assets: StaticAssets::new(),
        trusted_proxies,
        sessions,
        login,
        change,
        auditor,
        health: crate::health::Health::new(store.clone(), directory.clone()),
        settings,
        store,
        directory,
        clock,
    })
}

/// The BankID flows, when BankID is offered.
fn bankid_flows(
    settings: &Settings,
    store: &Arc<dyn Storage>,
    clock: &Arc<dyn Clock>,
    random: &Arc<dyn Random>,
    auditor: &Auditor,
) -> Result<Option<BankIdFlows>, StartupError> {
    let enabled = settings.services.bankid.as_ref().is_some_and(|s| s.enabled);
    let (true, Some(b)) = (enabled, &settings.bankid) else {
        return Ok(None);
    };
    let config = |e: crate::config::ConfigProblem| StartupError::Config(e.to_string());
    let key = data_key(settings)?;
    let timeout = Duration::from_secs(b.timeout_seconds);
    let client: Arc<dyn BankId> = match b.backend {
        BankIdBackend::Rp => {
            let missing = |k: &str| StartupError::Config(format!("bankid.{k} is needed with the rp backend"));
            let ca = b.ca_file.as_deref().ok_or_else(|| missing("ca_file"))?;
            let cert = b.client_certificate_file.as_deref().ok_or_else(|| missing("client_certificate_file"))?;
            let password = b.certificate_password().map_err(config)?;
            Arc::new(RpClient::new(&b.url, ca, cert, b.client_key_file.as_deref(), password.as_ref(), timeout)?)
        }
        BankIdBackend::Idkollen => {
            let missing = |k: &str| StartupError::Config(format!("bankid.{k} is needed with the idkollen backend"));
            let account = b.account_id.as_deref().ok_or_else(|| missing("account_id"))?;
            let secret = b.secret_key().map_err(config)?.ok_or_else(|| missing("secret_key"))?;
            Arc::new(IdkollenClient::new(&b.url, account, secret, b.ca_file.as_deref(), timeout)?)
        }
    };
    let flows = BankIdFlows::new(store.clone(), client, clock.clone(), random.clone(), key, auditor.clone());
    let referring_domain = reqwest::Url::parse(&settings.server.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    let policy = Policy {
        referring_domain,
        max_risk: b.max_risk,
        same_device_ip: b.same_device_ip,
        return_base: Some(settings.server.public_url.trim_end_matches('/').to_string()),
    };
    Ok(Some(flows.with_frame_cache(b.qr_cache_megabytes * 1_000_000).with_policy(policy)))
}

pub(super) fn data_key(settings: &Settings) -> Result<DataKey, StartupError> {
    let key = settings
        .security
        .data_key()
        .map_err(|e| StartupError::Config(e.to_string()))?
        .ok_or_else(|| StartupError::Config("security.data_key is needed for BankID and mobile codes".into()))?;
    DataKey::from_base64(key.expose_secret()).map_err(|e| StartupError::Config(format!("security.data_key: {e}")))
}

/// The mobile-code flows, when mobile codes are offered.
fn sms_flows(
    settings: &Settings,
    store: &Arc<dyn Storage>,
    clock: &Arc<dyn Clock>,
    random: &Arc<dyn Random>,
    auditor: &Auditor,
) -> Result<Option<SmsFlows>, StartupError> {
    let enabled = settings.services.sms.as_ref().is_some_and(|s| s.enabled);
    let (true, Some(s)) = (enabled, &settings.sms) else { return Ok(None) };
    let key = data_key(settings)?;
    let timeout = Duration::from_secs(s.timeout_seconds);
    let password = s.password().map_err(|e| StartupError::Config(e.to_string()))?;
    let secret =
        || password.clone().ok_or_else(|| StartupError::Config("sms.password is needed for this gateway".into()));
    let username = s.username.clone().unwrap_or_default();
    let (name, cost) = (s.gateway.id(), s.cost_per_text);
    let http = crate::identity::sms::http_client(timeout)
        .map_err(|e| StartupError::Config(format!("sms: no HTTP client: {e}")))?;
    let gateway: Arc<dyn SmsGateway> = match s.gateway {
        SmsGatewayKind::Elks46 => Arc::new(Elks46::new(&s.url, &username, secret()?, &s.from, http)),
        SmsGatewayKind::Twilio => Arc::new(Twilio::new(&s.url, &username, secret()?, &s.from, http)),
        SmsGatewayKind::Webhook => Arc::new(Webhook::new(&s.url, password.clone(), &s.from, http)),
    };
    let gateway: Arc<dyn SmsGateway> = Arc::new(Metered::new(gateway, name, cost));
    let hour = |n: u32| Limit { max_failures: n, window_seconds: 3600 };
    let limits = SmsLimits {
        code_lifetime: s.code_lifetime_seconds,
        max_attempts: s.max_attempts,
        resend_cooldown: s.resend_cooldown_seconds,
        per_user: hour(s.limits.per_user_per_hour),
        per_ip: hour(s.limits.per_ip_per_hour),
        per_number: hour(s.limits.per_number_per_hour),
        per_prefix: hour(s.limits.per_prefix_per_hour),
        countries: s.countries.clone(),
    };
    let flows = SmsFlows::new(store.clone(), gateway, clock.clone(), random.clone(), key, auditor.clone(), limits);
    Ok(Some(flows.with_queue(1024)))
}

/// `DC=example,DC=se` (after any OUs) as `example.se`.
fn dns_domain(base_dn: &str) -> String {
    base_dn
        .split(',')
        .filter_map(|part| part.trim().split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("DC")).map(|(_, v)| v))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dns_domain_comes_from_the_base_dn() {
        assert_eq!(super::dns_domain("DC=example,DC=se"), "example.se");
        assert_eq!(super::dns_domain("OU=Staff, dc=corp,dc=example,dc=se"), "corp.example.se");
        assert_eq!(super::dns_domain("O=none"), "");
    }
}
