//! Building and running the web application.

use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use secrecy::ExposeSecret;
use tracing_actix_web::TracingLogger;

use crate::audit::Auditor;
use crate::clock::{Clock, OsRandom, Random, SystemClock};
use crate::config::{BankIdBackend, Settings, SmsGatewayKind};
use crate::directory::{Directory, DirectoryError, LdapDirectory};
use crate::enrolment::{ChangeNotifier, EnrolmentService};
use crate::enrolment::{StarRule, catalogue_from};
use crate::i18n::Lang;
use crate::identity::ChangeNotices;
use crate::identity::DataKey;
use crate::identity::bankid::{BankId, BankIdFlows, IdkollenClient, Policy, RpClient};
use crate::identity::sms::{Elks46, Metered, SmsFlows, SmsGateway, SmsLimits, Twilio, Webhook};
use crate::login::{LoginService, Throttle};
use crate::mail::{Mailer, Outbox};
use crate::reset::ResetService;
use crate::session::Sessions;
use crate::storage::{self, Storage, StorageError};
use crate::throttle::Limit;
use crate::web::{self, AppState, StaticAssets};

/// Why the portal could not start. Each reads as one sentence.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    BankId(#[from] crate::identity::bankid::SetupError),
}

/// What tests may replace: time, randomness and the directory.
pub struct Dependencies {
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub directory: Option<Arc<dyn Directory>>,
}

impl Default for Dependencies {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), random: Arc::new(OsRandom), directory: None }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// The Prometheus endpoint on its own listener, and its port (`metrics.listen`).
    metrics: Option<(u16, Server)>,
    state: actix_web::web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, Dependencies::default()).await
    }

    pub async fn build_with(settings: Settings, deps: Dependencies) -> Result<Self, StartupError> {
        let password = settings.database.password().map_err(|p| StartupError::Config(p.to_string()))?;
        let store = storage::open(&settings.database.url, settings.database.max_connections, password.as_ref()).await?;
        let directory: Arc<dyn Directory> = match deps.directory {
            Some(d) => d,
            None => Arc::new(LdapDirectory::new(&settings.directory)?),
        };
        match directory.ping().await {
            Ok(()) => tracing::info!(urls = ?settings.directory.urls(), "directory reachable"),
            Err(e) => tracing::warn!("{e}; the portal starts anyway and tells users the directory is unavailable"),
        }
        let state = actix_web::web::Data::new(build_state(settings, store, directory, deps.clock, deps.random)?);

        let listener = TcpListener::bind(&state.settings.server.listen)
            .map_err(|source| StartupError::Listen { address: state.settings.server.listen.clone(), source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen { address: state.settings.server.listen.clone(), source })?
            .port();
        let tls = state.settings.uses_tls();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(web::csrf_cookie_middleware))
                .wrap(web::security_headers(tls))
                .wrap(TracingLogger::<web::RequestLog>::new())
                .app_data(data.clone())
                .app_data(actix_web::web::FormConfig::default().limit(16 * 1024))
                .configure(web::routes)
        })
        .listen(listener)
        .map_err(|source| StartupError::Listen { address: format!("port {port}"), source })?
        .run();
        let metrics = match state.settings.metrics.listen.as_deref() {
            Some(address) => {
                Some(metrics_server(address, state.store.clone(), state.directory.clone(), state.clock.clone())?)
            }
            None => None,
        };
        Ok(Self { port, server, metrics, state })
    }

    /// The port of the Prometheus endpoint, when one is configured.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The application's storage (tests read and write through it, as the application does).
    pub fn store(&self) -> Arc<dyn crate::storage::Storage> {
        self.state.store.clone()
    }

    /// The janitor this application runs every few minutes (tests run rounds themselves).
    pub fn janitor(&self) -> crate::janitor::Janitor {
        let s = &self.state.settings;
        crate::janitor::Janitor::new(
            self.state.store.clone(),
            s.session.idle_timeout_minutes,
            s.session.absolute_lifetime_minutes,
            s.database.retention_days,
            s.admin.audit_retention_days,
        )
    }

    /// The password-expiry reminders this application sends (`expiry.enabled`); tests run rounds
    /// themselves with their own clock.
    pub fn expiry_reminders(&self) -> Option<crate::expiry::ExpiryReminders> {
        let st = &self.state;
        let s = &st.settings;
        if !s.expiry.enabled {
            return None;
        }
        let texts = match (s.expiry.sms, &st.sms, data_key(s)) {
            (true, Some(sms), Ok(key)) => Some(crate::expiry::Texts { gateway: sms.gateway(), key }),
            _ => None,
        };
        let mut days: Vec<i64> = s.expiry.days_before.iter().map(|d| *d as i64).collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        Some(crate::expiry::ExpiryReminders {
            directory: st.directory.clone(),
            store: st.store.clone(),
            outbox: st.outbox.clone(),
            auditor: st.auditor.clone(),
            texts,
            days,
            portal: s.portal.name.clone(),
            change_url: format!("{}/change", s.server.public_url.trim_end_matches('/')),
            lang: st.default_lang,
            time: st.time.clone(),
        })
    }

    /// Serves until the process is stopped; purges expired sessions and counters meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mailer = match &self.state.settings.mail {
            Some(m) => match Mailer::new(self.state.store.clone(), self.state.clock.clone(), m) {
                Ok(mailer) => Some(tokio::spawn(mailer.run(Duration::from_secs(2)))),
                Err(e) => {
                    tracing::error!("{e}; notification mail stays in the outbox");
                    None
                }
            },
            None => {
                tracing::warn!("no [mail] section: notification mail stays in the outbox");
                None
            }
        };
        let job = self.janitor();
        let clock = self.state.clock.clone();
        let janitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                match job.run_once(clock.now()).await {
                    Ok(swept) => tracing::debug!(?swept, "janitor round"),
                    Err(e) => tracing::warn!(error = %e, "the janitor's round failed; it runs again later"),
                }
            }
        });
        let expiry = self.expiry_reminders().map(|job| {
            let clock = self.state.clock.clone();
            let every = Duration::from_secs(self.state.settings.expiry.check_minutes.max(1) * 60);
            tokio::spawn(async move {
                // The first round one interval after the start, then every interval.
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    match job.run_once(clock.now()).await {
                        Ok(Some(done)) => tracing::info!(mails = done.mails, texts = done.texts, "expiry reminders"),
                        Ok(None) => tracing::debug!("expiry reminders: another instance runs them"),
                        Err(e) => tracing::warn!(error = %e, "the expiry reminders' round failed; it runs again later"),
                    }
                }
            })
        });
        let metrics = self.metrics.map(|(_, server)| tokio::spawn(server));
        let result = self.server.await;
        if let Some(m) = metrics {
            m.abort();
        }
        janitor.abort();
        if let Some(e) = expiry {
            e.abort();
        }
        if let Some(m) = mailer {
            m.abort();
        }
        result
    }
}

/// `GET /metrics` on a listener of its own (one worker: a scrape every few seconds). The outbox's
/// backlog and the directory's pools are read at each scrape.
fn metrics_server(
    address: &str,
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
) -> Result<(u16, Server), StartupError> {
    let handle = crate::monitoring::handle().map_err(StartupError::Config)?;
    let listen_error = |source| StartupError::Listen { address: address.to_string(), source };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let port = listener.local_addr().map_err(listen_error)?.port();
    let server = HttpServer::new(move || {
        let (handle, store, directory, clock) = (handle.clone(), store.clone(), directory.clone(), clock.clone());
        App::new().route(
            "/metrics",
            actix_web::web::get().to(move || {
                let (handle, store, directory, clock) =
                    (handle.clone(), store.clone(), directory.clone(), clock.clone());
                async move {
                    for dc in directory.domain_controllers() {
                        let pools = dc.pools;
                        crate::monitoring::directory_pool(&dc.url, "service", pools.service_open, pools.service_idle);
                        crate::monitoring::directory_pool(&dc.url, "user", pools.user_open, pools.user_idle);
                        crate::monitoring::directory_dc(&dc.url, dc.in_use, dc.down_for_seconds.is_some());
                    }
                    match store.outbox_backlog().await {
                        Ok((queued, oldest)) => crate::monitoring::outbox(queued, oldest.map(|t| clock.now() - t)),
                        Err(e) => tracing::warn!(error = %e, "metrics: the outbox cannot be read"),
                    }
                    handle.run_upkeep();
                    actix_web::HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .map_err(listen_error)?
    .run();
    tracing::info!(%address, "metrics at /metrics");
    Ok((port, server))
}

fn build_state(
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
    let auditor = Auditor::new(store.clone(), clock.clone()).forwarding(forward);
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
    let enrolments = EnrolmentService::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        auditor.clone(),
        settings.enrolment.stepup_minutes as i64 * 60,
        settings.enrolment.cooldown_hours as i64 * 3600,
    )
    .with_notifier(notifier);
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
        &settings.password,
        settings.reset.clone(),
    )
    .with_protected_groups(protected_groups(&settings))
    .with_cooldown(settings.enrolment.cooldown_hours as i64 * 3600);
    let throttle = Throttle::new(store.clone(), clock.clone());
    let login = LoginService::new(&settings, directory.clone(), throttle, auditor.clone());
    let sessions = Sessions::new(
        store.clone(),
        clock.clone(),
        random,
        settings.session.idle_timeout_minutes,
        settings.session.absolute_lifetime_minutes,
    );
    let trusted_proxies: Vec<IpAddr> = settings.server.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect();
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
        admin,
        outbox,
        status,
        dns_domain: dns_domain(&settings.directory.base_dn),
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
        csrf: web::CsrfKey::new(csrf_key),
        assets: StaticAssets::new(),
        trusted_proxies,
        sessions,
        login,
        auditor,
        settings,
        store,
        directory,
        clock,
    })
}

/// The groups whose members are privileged: as configured, else the portal's admin and helpdesk
/// groups and Domain Admins.
fn protected_groups(settings: &Settings) -> Vec<String> {
    match &settings.reset.protected_groups {
        Some(groups) => groups.clone(),
        None => {
            let d = &settings.directory;
            let domain_admins = format!("CN=Domain Admins,CN=Users,{}", d.base_dn);
            [d.admin_group.clone(), d.helpdesk_group.clone(), Some(domain_admins)].into_iter().flatten().collect()
        }
    }
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
    let key = settings
        .security
        .data_key()
        .map_err(config)?
        .ok_or_else(|| StartupError::Config("security.data_key is needed when BankID is enabled".into()))?;
    let key = DataKey::from_base64(key.expose_secret())
        .map_err(|e| StartupError::Config(format!("security.data_key: {e}")))?;
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
    let policy = Policy { referring_domain, max_risk: b.max_risk, same_device_ip: b.same_device_ip };
    Ok(Some(flows.with_frame_cache(b.qr_cache_megabytes * 1_000_000).with_policy(policy)))
}

fn data_key(settings: &Settings) -> Result<DataKey, StartupError> {
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
    let gateway: Arc<dyn SmsGateway> = match s.gateway {
        SmsGatewayKind::Elks46 => {
            Arc::new(Metered::new(Elks46::new(&s.url, &username, secret()?, &s.from, timeout), name, cost))
        }
        SmsGatewayKind::Twilio => {
            Arc::new(Metered::new(Twilio::new(&s.url, &username, secret()?, &s.from, timeout), name, cost))
        }
        SmsGatewayKind::Webhook => {
            Arc::new(Metered::new(Webhook::new(&s.url, password.clone(), &s.from, timeout), name, cost))
        }
    };
    let hour = |n: u32| Limit { max_failures: n, window_seconds: 3600 };
    let limits = SmsLimits {
        code_lifetime: s.code_lifetime_seconds,
        max_attempts: s.max_attempts,
        resend_cooldown: s.resend_cooldown_seconds,
        per_user: hour(s.limits.per_user_per_hour),
        per_ip: hour(s.limits.per_ip_per_hour),
        per_number: hour(s.limits.per_number_per_hour),
        per_prefix: hour(s.limits.per_prefix_per_hour),
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
