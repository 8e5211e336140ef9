//! What the status page shows an administrator: each domain controller (reachable, in use or
//! skipped), the password policies as read, whether resets enforce history, whether BankID, the
//! SMS gateway and the mail server answer, the queues, and the version. Read-only: every reading
//! is a question that changes nothing (a BankID collect of an order that does not exist, an HTTP
//! GET of the gateway, an SMTP NOOP).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::MailSettings;
use crate::directory::{CertProblem, Directory, DirectoryError, PasswordPolicy};
use crate::identity::bankid::{BankIdError, BankIdFlows};
use crate::identity::sms::{GatewayError, SmsFlows};
use crate::mail::{MailError, Mailer};
use crate::storage::Storage;

/// How long each reading may take before it counts as no answer.
const PROBE_SECONDS: u64 = 5;

/// One thing asked: it answered, or why not.
pub type Reach = Result<(), NoAnswer>;

/// Why a part did not answer, as the page says it (in the administrator's language). What the
/// part or the library said is logged under the reading's reference, never shown: such texts
/// are English, and may quote addresses and server banners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// No connection could be made.
    Unreachable,
    /// No answer within [`PROBE_SECONDS`] (or the part's own time limit).
    Timeout,
    /// Its TLS certificate is not trusted, or our CA file cannot be used.
    Untrusted,
    /// Its certificate is for another name than the one in the URL.
    WrongName,
    /// Its certificate has expired, or is not valid yet.
    NotValidNow,
    /// It refused our credentials (the service account, the client certificate).
    Refused,
    /// Anything else: the log says what.
    Failed,
}

impl NoAnswer {
    /// A short, stable name (the catalogue's key under `admin.system.why`).
    pub fn key(self) -> &'static str {
        match self {
            NoAnswer::Unreachable => "admin.system.why.unreachable",
            NoAnswer::Timeout => "admin.system.why.timeout",
            NoAnswer::Untrusted => "admin.system.why.untrusted",
            NoAnswer::WrongName => "admin.system.why.wrong_name",
            NoAnswer::NotValidNow => "admin.system.why.not_valid_now",
            NoAnswer::Refused => "admin.system.why.refused",
            NoAnswer::Failed => "admin.system.why.failed",
        }
    }
}

/// What kind of [`NoAnswer`] an error of one of the parts is.
pub trait Classify: std::fmt::Display {
    fn no_answer(&self) -> NoAnswer;
}

impl Classify for DirectoryError {
    fn no_answer(&self) -> NoAnswer {
        match self {
            DirectoryError::Unreachable { .. } => NoAnswer::Unreachable,
            DirectoryError::Timeout { .. } => NoAnswer::Timeout,
            DirectoryError::UntrustedCertificate { problem, .. } => match problem {
                CertProblem::Untrusted => NoAnswer::Untrusted,
                CertProblem::WrongName => NoAnswer::WrongName,
                CertProblem::NotValidNow => NoAnswer::NotValidNow,
            },
            DirectoryError::CaFile { .. } => NoAnswer::Untrusted,
            DirectoryError::ServiceAccountRefused { .. } => NoAnswer::Refused,
            DirectoryError::Protocol(_)
            | DirectoryError::Busy { .. }
            | DirectoryError::Dropped { .. }
            | DirectoryError::Unconfirmed { .. } => NoAnswer::Failed,
        }
    }
}

impl Classify for BankIdError {
    fn no_answer(&self) -> NoAnswer {
        match self {
            BankIdError::Transport(_) => NoAnswer::Unreachable,
            BankIdError::RequestTimeout => NoAnswer::Timeout,
            BankIdError::Unauthorized => NoAnswer::Refused,
            _ => NoAnswer::Failed,
        }
    }
}

impl Classify for GatewayError {
    fn no_answer(&self) -> NoAnswer {
        match self {
            GatewayError::Transport(_) => NoAnswer::Unreachable,
            GatewayError::Timeout => NoAnswer::Timeout,
            GatewayError::Refused { status: 401 | 403 } => NoAnswer::Refused,
            _ => NoAnswer::Failed,
        }
    }
}

impl Classify for MailError {
    fn no_answer(&self) -> NoAnswer {
        let MailError::Smtp(e) = self else { return NoAnswer::Failed };
        if e.is_timeout() {
            NoAnswer::Timeout
        } else if e.is_tls() {
            NoAnswer::Untrusted
        } else if e.status().is_some_and(|code| matches!(code.to_string().as_str(), "530" | "535")) {
            NoAnswer::Refused
        } else if e.is_response() || e.is_transient() || e.is_permanent() {
            NoAnswer::Failed
        } else {
            NoAnswer::Unreachable
        }
    }
}

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
    /// The request id of the page view that made this reading: what did not answer is logged
    /// under it.
    pub reference: String,
    pub dcs: Vec<DcReading>,
    pub domain_policy: Result<PasswordPolicy, NoAnswer>,
    pub psos: Result<Vec<PasswordPolicy>, NoAnswer>,
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

/// `part`'s answer within [`PROBE_SECONDS`]; an error is logged under `reference`.
async fn timed<T, E: Classify>(
    part: &str,
    reference: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, NoAnswer> {
    match tokio::time::timeout(Duration::from_secs(PROBE_SECONDS), f).await {
        Ok(result) => result.map_err(|e| logged(part, reference, &e)),
        Err(_) => {
            tracing::warn!(reference, part, "status: no answer within {PROBE_SECONDS} s");
            Err(NoAnswer::Timeout)
        }
    }
}

fn logged(part: &str, reference: &str, e: &impl Classify) -> NoAnswer {
    tracing::warn!(reference, part, error = %e, "status: no answer");
    e.no_answer()
}

impl StatusProbe {
    /// The parts as they were at most [`KEEP`] ago; a new reading logs what did not answer
    /// under `reference` (the request id of the page view that asks).
    pub async fn read(&self, reference: &str) -> SystemStatus {
        let mut last = self.last.lock().await;
        if let Some((at, status)) = last.as_ref()
            && at.elapsed() < KEEP
        {
            return status.clone();
        }
        let status = self.ask(reference).await;
        *last = Some((std::time::Instant::now(), status.clone()));
        status
    }

    async fn ask(&self, reference: &str) -> SystemStatus {
        let r = reference;
        let (pings, domain_policy, psos, history, bankid, sms, mail, outbox) = tokio::join!(
            self.directory.ping_each(),
            timed("the domain's password policy", r, self.directory.password_policy(None)),
            timed("the fine-grained password policies", r, self.directory.fine_grained_policies()),
            timed("history on resets", r, self.directory.reset_enforces_history()),
            self.bankid(r),
            self.sms(r),
            self.mail(r),
            self.store.outbox_backlog(),
        );
        let states = self.directory.domain_controllers();
        let dcs = pings
            .into_iter()
            .map(|(url, reach)| {
                let state = states.iter().find(|s| s.url == url);
                DcReading {
                    reach: reach.map_err(|e| logged(&url, reference, &e)),
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
            reference: reference.to_string(),
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

    async fn bankid(&self, reference: &str) -> Option<Reach> {
        let flows = self.bankid.as_ref()?;
        Some(timed("BankID", reference, flows.reachable()).await)
    }

    async fn sms(&self, reference: &str) -> Option<Reach> {
        let flows = self.sms.as_ref()?;
        Some(timed("the SMS gateway", reference, flows.gateway().reachable()).await)
    }

    async fn mail(&self, reference: &str) -> Option<Reach> {
        let settings = self.mail.as_ref()?;
        let mailer = match Mailer::new(self.store.clone(), self.clock.clone(), settings) {
            Ok(m) => m,
            Err(e) => return Some(Err(logged("the mail server", reference, &e))),
        };
        Some(timed("the mail server", reference, mailer.reachable()).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_is_named_and_the_rest_point_to_the_log() {
        let url = || "ldaps://dc".to_string();
        // As the pool reads what rustls refused.
        let untrusted = |e: rustls::CertificateError| {
            let e = rustls::Error::InvalidCertificate(e);
            DirectoryError::UntrustedCertificate { url: url(), reason: e.to_string(), problem: CertProblem::of(&e) }
                .no_answer()
        };
        let at = |s: u64| rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(s));
        let expired = rustls::CertificateError::ExpiredContext { time: at(2), not_after: at(1) };
        let not_yet = rustls::CertificateError::NotValidYetContext { time: at(1), not_before: at(2) };
        let renamed = rustls::CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("dc1.example.test").unwrap(),
            presented: vec!["DnsName(\"dc2.example.test\")".into()],
        };
        let cases = [
            (DirectoryError::Unreachable { url: url(), reason: "refused".into() }.no_answer(), NoAnswer::Unreachable),
            (DirectoryError::Timeout { url: url(), seconds: 5 }.no_answer(), NoAnswer::Timeout),
            (untrusted(rustls::CertificateError::UnknownIssuer), NoAnswer::Untrusted),
            (untrusted(rustls::CertificateError::BadSignature), NoAnswer::Untrusted),
            (untrusted(rustls::CertificateError::NotValidForName), NoAnswer::WrongName),
            (untrusted(rustls::CertificateError::Expired), NoAnswer::NotValidNow),
            (untrusted(rustls::CertificateError::NotValidYet), NoAnswer::NotValidNow),
            // As rustls's verifier reports them, with the times and names it compared.
            (untrusted(expired), NoAnswer::NotValidNow),
            (untrusted(not_yet), NoAnswer::NotValidNow),
            (untrusted(renamed), NoAnswer::WrongName),
            (
                DirectoryError::UntrustedCertificate {
                    url: url(),
                    reason: "x".into(),
                    problem: CertProblem::of(&rustls::Error::NoCertificatesPresented),
                }
                .no_answer(),
                NoAnswer::Untrusted,
            ),
            (
                DirectoryError::ServiceAccountRefused { bind_dn: "cn=x".into(), reason: "49".into() }.no_answer(),
                NoAnswer::Refused,
            ),
            (DirectoryError::Protocol("odd".into()).no_answer(), NoAnswer::Failed),
            (BankIdError::Unauthorized.no_answer(), NoAnswer::Refused),
            (BankIdError::Transport("dns".into()).no_answer(), NoAnswer::Unreachable),
            (BankIdError::Maintenance.no_answer(), NoAnswer::Failed),
            (GatewayError::Timeout.no_answer(), NoAnswer::Timeout),
            (GatewayError::Refused { status: 401 }.no_answer(), NoAnswer::Refused),
            (GatewayError::Server { status: 500 }.no_answer(), NoAnswer::Failed),
            (MailError::NoNoop.no_answer(), NoAnswer::Failed),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        for lang in crate::i18n::Lang::ALL {
            for no in [
                NoAnswer::Unreachable,
                NoAnswer::Timeout,
                NoAnswer::Untrusted,
                NoAnswer::WrongName,
                NoAnswer::NotValidNow,
            ]
            .into_iter()
            .chain([NoAnswer::Refused, NoAnswer::Failed])
            {
                assert!(lang.catalogue().has(no.key()), "{no:?} has a text in {lang:?}");
            }
        }
    }
}
