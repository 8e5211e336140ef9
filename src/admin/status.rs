//! What the status page shows an administrator: each domain controller (reachable, in use or
//! skipped), the password policies as read, whether resets enforce history, whether BankID, the
//! SMS gateway and the mail server answer, the queues, and the version. Read-only: every reading
//! is a question that changes nothing (a BankID collect of an order that does not exist, an HTTP
//! GET of the gateway, an SMTP NOOP).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::MailSettings;
use crate::directory::{Directory, PasswordPolicy};
use crate::identity::bankid::BankIdFlows;
use crate::identity::sms::SmsFlows;
use crate::mail::Mailer;
use crate::storage::Storage;

/// How long each reading may take before it counts as no answer.
const PROBE_SECONDS: u64 = 5;

/// One thing asked: it answered, or why not (a short reason, never shown outside the admin pages).
pub type Reach = Result<(), String>;

/// One domain controller.
#[derive(Debug, Clone)]
pub struct DcReading {
    pub url: String,
    pub reach: Reach,
    pub in_use: bool,
    /// Skipped after a failure for this many more seconds.
    pub skipped_for: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SystemStatus {
    pub version: &'static str,
    pub dcs: Vec<DcReading>,
    pub domain_policy: Result<PasswordPolicy, String>,
    pub psos: Result<Vec<PasswordPolicy>, String>,
    /// Whether AD enforces history on resets (the policy-hints control); None when unknown.
    pub history_on_resets: Option<bool>,
    /// None: not configured.
    pub bankid: Option<Reach>,
    pub sms: Option<Reach>,
    pub mail: Option<Reach>,
    pub outbox_queued: i64,
    pub outbox_oldest_seconds: Option<i64>,
}

pub struct StatusProbe {
    pub directory: Arc<dyn Directory>,
    pub store: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub bankid: Option<Arc<BankIdFlows>>,
    pub sms: Option<Arc<SmsFlows>>,
    pub mail: Option<MailSettings>,
    /// The last reading and when it was made: a page reloaded (or opened by a forged link again
    /// and again) asks nobody anything for [`KEEP`]; one reading at a time.
    pub last: tokio::sync::Mutex<Option<(std::time::Instant, SystemStatus)>>,
}

/// How long a reading is shown before the parts are asked again.
pub const KEEP: Duration = Duration::from_secs(30);

async fn timed<T, E: std::fmt::Display>(f: impl Future<Output = Result<T, E>>) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(PROBE_SECONDS), f).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {PROBE_SECONDS} s")),
    }
}

impl StatusProbe {
    /// The parts as they were at most [`KEEP`] ago.
    pub async fn read(&self) -> SystemStatus {
        let mut last = self.last.lock().await;
        if let Some((at, status)) = last.as_ref()
            && at.elapsed() < KEEP
        {
            return status.clone();
        }
        let status = self.ask().await;
        *last = Some((std::time::Instant::now(), status.clone()));
        status
    }

    async fn ask(&self) -> SystemStatus {
        let (pings, domain_policy, psos, history, bankid, sms, mail, outbox) = tokio::join!(
            self.directory.ping_each(),
            timed(self.directory.password_policy(None)),
            timed(self.directory.fine_grained_policies()),
            timed(self.directory.reset_enforces_history()),
            self.bankid(),
            self.sms(),
            self.mail(),
            self.store.outbox_backlog(),
        );
        let states = self.directory.domain_controllers();
        let dcs = pings
            .into_iter()
            .map(|(url, reach)| {
                let state = states.iter().find(|s| s.url == url);
                DcReading {
                    reach: reach.map_err(|e| e.to_string()),
                    in_use: state.is_some_and(|s| s.in_use),
                    skipped_for: state.and_then(|s| s.down_for_seconds),
                    url,
                }
            })
            .collect();
        let now = self.clock.now();
        let (outbox_queued, oldest) = outbox.unwrap_or((-1, None));
        SystemStatus {
            version: env!("CARGO_PKG_VERSION"),
            dcs,
            domain_policy,
            psos,
            history_on_resets: history.ok(),
            bankid,
            sms,
            mail,
            outbox_queued,
            outbox_oldest_seconds: oldest.map(|t| (now - t).max(0)),
        }
    }

    async fn bankid(&self) -> Option<Reach> {
        let flows = self.bankid.as_ref()?;
        Some(timed(flows.reachable()).await)
    }

    async fn sms(&self) -> Option<Reach> {
        let flows = self.sms.as_ref()?;
        Some(timed(flows.gateway().reachable()).await)
    }

    async fn mail(&self) -> Option<Reach> {
        let settings = self.mail.as_ref()?;
        let mailer = match Mailer::new(self.store.clone(), self.clock.clone(), settings) {
            Ok(m) => m,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(timed(mailer.reachable()).await)
    }
}
