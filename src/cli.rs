//! The command line: `serve`, `check-config` and `migrate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use crate::directory::{Directory, DirectoryError, LdapDirectory};

#[derive(Parser)]
#[command(name = "stjarna", version, about = "Self-service password reset and enrolment for Active Directory")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal.
    Serve {
        #[arg(long, env = "STJARNA_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file and list every problem in it.
    CheckConfig {
        #[arg(long, env = "STJARNA_CONFIG")]
        config: PathBuf,
        /// Do not try to reach the directory.
        #[arg(long)]
        offline: bool,
    },
    /// Create or update the database schema, then exit.
    Migrate {
        #[arg(long, env = "STJARNA_CONFIG")]
        config: PathBuf,
    },
    /// Run the BankID simulator (RP API v6.0, IDkollen v3 and a simulated app page) for demos and tests.
    BankidSimulator {
        /// Where to write its CA and the client certificate for the portal.
        #[arg(long, default_value = "bankid-simulator")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:9443")]
        api_listen: String,
        #[arg(long, default_value = "127.0.0.1:9444")]
        broker_listen: String,
        #[arg(long, default_value = "127.0.0.1:9080")]
        app_listen: String,
        /// An extra person in the simulated app: PERSONALNUMBER:GIVENNAME:SURNAME.
        #[arg(long = "identity")]
        identities: Vec<String>,
    },
    /// Run the mail sink: an SMTP server on loopback that keeps every message, and a page to read them.
    MailSimulator {
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp_listen: String,
        #[arg(long, default_value = "127.0.0.1:8025")]
        web_listen: String,
    },
    /// Run the SMS gateway simulator (46elks, Twilio, webhook, and a simulated phone page).
    SmsSimulator {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => serve(config).await,
            Command::CheckConfig { config, offline } => check_config(config, offline).await,
            Command::Migrate { config } => migrate(config).await,
            Command::SmsSimulator { listen } => sms_simulator(listen).await,
            Command::MailSimulator { smtp_listen, web_listen } => mail_simulator(smtp_listen, web_listen).await,
            Command::BankidSimulator { dir, api_listen, broker_listen, app_listen, identities } => {
                bankid_simulator(dir, api_listen, broker_listen, app_listen, identities).await
            }
        }
    })
}

fn load_or_report(path: &std::path::Path) -> Option<config::Settings> {
    match config::load(path) {
        Ok(s) => Some(s),
        Err(problems) => {
            eprintln!("{} has {} problem(s):", path.display(), problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            None
        }
    }
}

async fn serve(path: PathBuf) -> ExitCode {
    let Some(settings) = load_or_report(&path) else {
        return ExitCode::from(2);
    };
    let _logging = crate::telemetry::init(settings.log.format);
    let app = match crate::Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = app.port(), "Stjärna is listening");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn check_config(path: PathBuf, offline: bool) -> ExitCode {
    let Some(settings) = load_or_report(&path) else {
        return ExitCode::from(2);
    };
    if !offline {
        match check_directory(&settings).await {
            Err(e) => {
                eprintln!("{} is valid, but the directory check failed:", path.display());
                eprintln!("  - {e}");
                return ExitCode::from(3);
            }
            Ok((_, missing)) if !missing.is_empty() => {
                eprintln!("{} is valid, but the directory check failed:", path.display());
                for problem in missing {
                    eprintln!("  - {problem}");
                }
                return ExitCode::from(3);
            }
            Ok((false, _)) => println!(
                "warning: the directory does not support password history on resets (LDAP_SERVER_POLICY_HINTS): \
                 a reset may set a password used before (changes with the old password are still checked)"
            ),
            Ok((true, _)) => {}
        }
    }
    for w in config::warnings(&settings) {
        println!("warning: {w}");
    }
    println!("privileged accounts (no self-service reset with the ordinary stars): adminCount=1, and members of");
    for (source, dn) in settings.privileged_groups() {
        println!("  - {dn} ({source})");
    }
    println!("{}: no problems found{}", path.display(), if offline { "" } else { "; the directory answered" });
    ExitCode::SUCCESS
}

/// Whether the directory enforces history on resets, and what it lacks: the configured groups,
/// and a wrong password's answer to a bind as nobody.
async fn check_directory(settings: &config::Settings) -> Result<(bool, Vec<String>), DirectoryError> {
    let dir = LdapDirectory::new(&settings.directory)?;
    dir.ping().await?;
    let history = dir.reset_enforces_history().await?;
    let mut problems = missing_groups(settings, &dir).await?;
    problems.extend(nobody_answered(settings, &dir).await?);
    Ok((history, problems))
}

/// A name that is no account's is tried against a DN that is nobody's (so that it takes as long
/// as an account's wrong password): the DC must answer it as a wrong password.
async fn nobody_answered(settings: &config::Settings, dir: &LdapDirectory) -> Result<Option<String>, DirectoryError> {
    use crate::directory::{Directory, PasswordCheck};
    let dn = crate::login::nobodys_dn(&settings.directory);
    let answer = match dir.check_password(&dn, &secrecy::SecretString::from("stjarna-check-config")).await {
        Ok(PasswordCheck::Refused(_)) => return Ok(None),
        Ok(PasswordCheck::Accepted) => "it was accepted".to_string(),
        Err(DirectoryError::Protocol(answer)) => answer,
        Err(e) => return Err(e),
    };
    Ok(Some(format!(
        "a bind as {dn} (what a name that is no account's is tried against) was not answered as a wrong \
         password ({answer}): an unknown name could take less time than an account's wrong password; \
         check that directory.base_dn is in the domain"
    )))
}

/// The configured base and groups the directory does not have, each as a problem in plain words:
/// a misspelt protected group protects nobody, and nothing else would show it.
async fn missing_groups(settings: &config::Settings, dir: &LdapDirectory) -> Result<Vec<String>, DirectoryError> {
    let mut missing = Vec::new();
    let base = &settings.directory.base_dn;
    if !dir.exists(base).await? {
        missing.push(format!("directory.base_dn: {base} is not in the directory: no user would be found"));
    }
    for (source, dn) in settings.privileged_groups() {
        if !dir.exists(&dn).await? {
            let consequence = match source {
                config::GroupSource::Setting("directory.admin_group") => "nobody could use the admin pages",
                config::GroupSource::Setting(_) => "nobody would have that role",
                config::GroupSource::Protected => "its members would not be treated as privileged",
                config::GroupSource::Default => {
                    "Domain Admins would not be treated as privileged: set reset.protected_groups to its DN \
                     (its name may be in the domain's language)"
                }
            };
            missing.push(format!("{source}: {dn} is not in the directory: {consequence}"));
        }
    }
    Ok(missing)
}

async fn migrate(path: PathBuf) -> ExitCode {
    let Some(settings) = load_or_report(&path) else {
        return ExitCode::from(2);
    };
    let password = match settings.database.password() {
        Ok(p) => p,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    match crate::storage::open(&settings.database.url, 1, password.as_ref()).await {
        Ok(_) => {
            println!("the database at {} is up to date", settings.database.display_url());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bankid_simulator(
    dir: PathBuf,
    api_listen: String,
    broker_listen: String,
    app_listen: String,
    identities: Vec<String>,
) -> ExitCode {
    use crate::simulators::bankid::{BankIdSimulator, Identity, Options};
    let _logging = crate::telemetry::init(crate::config::LogFormat::Text);
    let mut opts = Options::new(dir);
    opts.api_listen = api_listen;
    opts.broker_listen = broker_listen;
    opts.app_listen = app_listen;
    for spec in identities {
        match spec.split(':').collect::<Vec<_>>().as_slice() {
            [pn, given, surname] if pn.len() == 12 => opts.identities.push(Identity::new(pn, given, surname)),
            _ => {
                eprintln!("error: --identity {spec}: write it as PERSONALNUMBER:GIVENNAME:SURNAME (12 digits)");
                return ExitCode::from(2);
            }
        }
    }
    let sim = match BankIdSimulator::start(opts).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("BankID simulator");
    println!("  RP API v6.0 (mutual TLS): {}", sim.api_url);
    println!("  IDkollen v3 (Basic {}:{}): {}", sim.broker.account_id, sim.broker.secret_key, sim.broker_url);
    println!("  simulated app:            {}", sim.app_url);
    println!("  CA: {}", sim.certs.ca_pem.display());
    println!(
        "  client certificate: {} (PEM), {} (PKCS#12, password {})",
        sim.certs.client_pem.display(),
        sim.certs.client_p12.display(),
        crate::simulators::tls::CLIENT_P12_PASSWORD
    );
    sim.run_until_stopped().await;
    ExitCode::SUCCESS
}

async fn sms_simulator(listen: String) -> ExitCode {
    use crate::simulators::sms::SmsSimulator;
    let _logging = crate::telemetry::init(crate::config::LogFormat::Text);
    let sim = match SmsSimulator::start_default(&listen).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let c = &sim.state.credentials;
    println!("SMS gateway simulator");
    println!("  46elks:  POST {}/a1/sms (Basic {}:{})", sim.url, c.elks_username, c.elks_password);
    println!(
        "  Twilio:  POST {}/2010-04-01/Accounts/{}/Messages.json (token {})",
        sim.url, c.twilio_sid, c.twilio_token
    );
    println!("  webhook: POST {}/webhook (Bearer {})", sim.url, c.webhook_token);
    println!("  simulated phone: {}/phone", sim.url);
    sim.run_until_stopped().await;
    ExitCode::SUCCESS
}

async fn mail_simulator(smtp_listen: String, web_listen: String) -> ExitCode {
    let _logging = crate::telemetry::init(crate::config::LogFormat::Text);
    let sim = match crate::simulators::mail::MailSimulator::start(&smtp_listen, &web_listen).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: cannot listen on {smtp_listen} or {web_listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Mail simulator");
    println!("  SMTP (no TLS, loopback only): {}", sim.smtp);
    println!("  mailbox: {}", sim.web_url);
    sim.run_until_stopped().await;
    ExitCode::SUCCESS
}
