//! A BankID simulator: the RP API v6.0 over HTTPS with mutual TLS, the IDkollen v3 broker API over
//! HTTPS, and a web page that plays the BankID app. All on loopback, with its own CA.
//!
//! `stjarna bankid-simulator` runs it for the demo; tests start it in-process and drive it through
//! the same state (and can inject faults).

mod api;
mod app;
mod order;
mod state;

pub use api::BrokerAccount;
pub use order::{ApiError, AppError, Fault, Identity, ORDER_LIFETIME, Order, START_WINDOW, Status};
pub use state::SimState;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};

use crate::clock::{Clock, OsRandom, Random, SystemClock};
use crate::simulators::tls::{CertError, SimulatorCerts};

pub struct Options {
    pub dir: PathBuf,
    pub api_listen: String,
    pub broker_listen: String,
    pub app_listen: String,
    pub identities: Vec<Identity>,
    pub broker: BrokerAccount,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

impl Options {
    /// Free ports on 127.0.0.1, the default identities, the real clock.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            api_listen: "127.0.0.1:0".into(),
            broker_listen: "127.0.0.1:0".into(),
            app_listen: "127.0.0.1:0".into(),
            identities: Identity::defaults(),
            broker: BrokerAccount { account_id: "stjarna-demo".into(), secret_key: "simulated-secret".into() },
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

pub struct BankIdSimulator {
    /// `https://127.0.0.1:PORT/rp/v6.0/` (mutual TLS).
    pub api_url: String,
    /// `https://127.0.0.1:PORT` (IDkollen v3, Basic auth).
    pub broker_url: String,
    /// `http://127.0.0.1:PORT/app` (the simulated app).
    pub app_url: String,
    pub certs: SimulatorCerts,
    pub state: Arc<SimState>,
    pub broker: BrokerAccount,
    handles: Vec<ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn bind(address: &str) -> Result<(TcpListener, u16), SimError> {
    let listen_error = |source| SimError::Listen { address: address.to_string(), source };
    let listener = TcpListener::bind(address).map_err(listen_error)?;
    let port = listener.local_addr().map_err(listen_error)?.port();
    Ok((listener, port))
}

impl BankIdSimulator {
    /// Generates certificates into `opts.dir` and starts the three servers on the current runtime.
    pub async fn start(opts: Options) -> Result<Self, SimError> {
        let certs = SimulatorCerts::generate(&opts.dir, "BankID")?;
        let state = Arc::new(SimState::new(opts.clock, opts.random, opts.identities));
        let data = web::Data::new(state.clone());
        let broker = web::Data::new(opts.broker.clone());
        let limiter = web::Data::new(std::sync::Mutex::new(Vec::<(String, std::time::Instant)>::new()));

        let (api_listener, api_port) = bind(&opts.api_listen)?;
        let d = data.clone();
        let api = HttpServer::new(move || {
            App::new().app_data(d.clone()).service(
                web::scope("/rp/v6.0")
                    .route("/auth", web::post().to(api::rp_auth))
                    .route("/phone/auth", web::post().to(api::rp_phone_auth))
                    .route("/collect", web::post().to(api::rp_collect))
                    .route("/cancel", web::post().to(api::rp_cancel)),
            )
        })
        .workers(1)
        .listen_rustls_0_23(api_listener, certs.mutual_tls()?)
        .map_err(|source| SimError::Listen { address: opts.api_listen.clone(), source })?
        .run();

        let (broker_listener, broker_port) = bind(&opts.broker_listen)?;
        let d = data.clone();
        let b = broker.clone();
        let broker_server = HttpServer::new(move || {
            App::new().app_data(d.clone()).app_data(b.clone()).app_data(limiter.clone()).service(
                web::scope("/v3/bankid-se")
                    .route("/auth", web::post().to(api::broker_auth))
                    .route("/phone/auth", web::post().to(api::broker_phone_auth))
                    .route("/auth/{id}", web::get().to(api::broker_status))
                    .route("/auth/{id}", web::delete().to(api::broker_cancel)),
            )
        })
        .workers(1)
        .listen_rustls_0_23(broker_listener, certs.server_tls()?)
        .map_err(|source| SimError::Listen { address: opts.broker_listen.clone(), source })?
        .run();

        let (app_listener, app_port) = bind(&opts.app_listen)?;
        let d = data.clone();
        let app = HttpServer::new(move || {
            App::new()
                .app_data(d.clone())
                .route("/app", web::get().to(app::home))
                .route("/app/scan", web::post().to(app::scan))
                .route("/app/autostart", web::post().to(app::autostart))
                .route("/app/phone/{order_ref}", web::post().to(app::answer_phone))
                .route("/app/order/{order_ref}", web::get().to(app::show))
                .route("/app/order/{order_ref}/approve", web::post().to(app::approve))
                .route("/app/order/{order_ref}/cancel", web::post().to(app::cancel))
        })
        .workers(1)
        .listen(app_listener)
        .map_err(|source| SimError::Listen { address: opts.app_listen.clone(), source })?
        .run();

        let handles = vec![api.handle(), broker_server.handle(), app.handle()];
        let tasks = vec![tokio::spawn(api), tokio::spawn(broker_server), tokio::spawn(app)];
        Ok(Self {
            api_url: format!("https://127.0.0.1:{api_port}/rp/v6.0/"),
            broker_url: format!("https://127.0.0.1:{broker_port}"),
            app_url: format!("http://127.0.0.1:{app_port}/app"),
            certs,
            state,
            broker: opts.broker,
            handles,
            tasks,
        })
    }

    /// Serves until the servers stop (Ctrl-C).
    pub async fn run_until_stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    pub async fn stop(&self) {
        for h in &self.handles {
            h.stop(false).await;
        }
    }
}
