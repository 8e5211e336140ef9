//! Building and running the web application.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::clock::{Clock, OsRandom, Random, SystemClock};
use crate::config::Settings;
use crate::directory::{Directory, DirectoryError, LdapDirectory};
use crate::mail::Mailer;
use crate::storage::{self, Storage, StorageError};
use crate::web::{self, AppState};

mod state;

use state::{build_state, data_key};

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
                .app_data(actix_web::web::QueryConfig::default().error_handler(web::bad_query))
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

    /// The watch for password sets that start a cooling-off again, which this application runs
    /// every two minutes (tests run rounds themselves).
    pub fn restart_watch(&self) -> crate::enrolment::RestartWatch {
        let s = &self.state;
        let cooldown = s.settings.enrolment.cooldown_hours as i64 * 3600;
        crate::enrolment::RestartWatch::new(s.store.clone(), s.directory.clone(), s.auditor.clone(), cooldown)
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
        let watch = self.restart_watch();
        let clock = self.state.clock.clone();
        let restarts = tokio::spawn(async move {
            // The first round one interval after the start (tests run their own rounds).
            let every = Duration::from_secs(120);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                match watch.run_once(clock.now()).await {
                    Ok(0) => {}
                    Ok(kept) => tracing::info!(kept, "password sets that start a cooling-off again"),
                    Err(e) => tracing::warn!(error = %e, "the cooling-off restarts' round failed; it runs again later"),
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
        restarts.abort();
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
