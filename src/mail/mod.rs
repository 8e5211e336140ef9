//! Notification mail: queued in an outbox table in the same step as the change it tells about, and
//! sent by a background worker over SMTP (lettre, TLS or STARTTLS) with retries. A mail that cannot
//! be sent never undoes a reset.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::audit::RequestMeta;
use crate::clock::{Clock, LocalTime};
use crate::config::{MailSecurity, MailSettings};
use crate::i18n::{Catalogue, Lang};
use crate::storage::{MailRecord, Storage, StorageError};

/// What a notice tells the user about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    PasswordReset,
    Unlocked,
    Enrolled(&'static str),
    /// The user replaced an enrolled service (a new number, another BankID).
    Replaced(&'static str),
    /// The user removed an enrolled service.
    Removed(&'static str),
    /// An administrator revoked a service (or, with "all", the whole enrolment).
    Revoked(&'static str),
    /// The service desk lifted a service's cooling-off: it counts toward a reset at once.
    Lifted(&'static str),
    /// The user has not completed enrolment yet.
    Reminder,
    /// The user changed their password (knowing the old one).
    PasswordChanged,
    /// A change or reset was sent to AD, which did not confirm it: it may have been made.
    PasswordMaybeChanged,
}

impl Notice {
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Notice::PasswordReset => ("mail.reset.subject", "mail.reset.what"),
            Notice::Unlocked => ("mail.unlock.subject", "mail.unlock.what"),
            Notice::Enrolled(_) => ("mail.enrol.subject", "mail.enrol.what"),
            Notice::Replaced(_) => ("mail.replace.subject", "mail.replace.what"),
            Notice::Removed(_) => ("mail.remove.subject", "mail.remove.what"),
            Notice::Revoked("all") => ("mail.revoke.subject", "mail.revoke.all"),
            Notice::Revoked(_) => ("mail.revoke.subject", "mail.revoke.what"),
            Notice::Lifted(_) => ("mail.lift.subject", "mail.lift.what"),
            Notice::Reminder => ("mail.reminder.subject", "mail.reminder.what"),
            Notice::PasswordChanged => ("mail.change.subject", "mail.change.what"),
            Notice::PasswordMaybeChanged => ("mail.unconfirmed.subject", "mail.unconfirmed.what"),
        }
    }
}

#[derive(Template)]
#[template(path = "mail/notice.txt", escape = "none")]
struct NoticeText<'a> {
    i: &'static Catalogue,
    name: &'a str,
    what: &'a str,
    when: &'a str,
    ip: &'a str,
    service_desk: &'a str,
    portal: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct NoticeHtml<'a> {
    i: &'static Catalogue,
    subject: &'a str,
    name: &'a str,
    what: &'a str,
    when: &'a str,
    ip: &'a str,
    service_desk: &'a str,
    portal: &'a str,
}

#[derive(Template)]
#[template(path = "mail/expiry.txt", escape = "none")]
struct ExpiryText<'a> {
    i: &'static Catalogue,
    name: &'a str,
    what: &'a str,
    url: &'a str,
    portal: &'a str,
}

#[derive(Template)]
#[template(path = "mail/expiry.html")]
struct ExpiryHtml<'a> {
    i: &'static Catalogue,
    subject: &'a str,
    name: &'a str,
    what: &'a str,
    url: &'a str,
    portal: &'a str,
}

/// A password-expiry reminder: who, which account, when the password expires, and where to
/// change it.
pub struct ExpiryNotice<'a> {
    pub to: &'a str,
    pub name: &'a str,
    pub account: &'a str,
    pub expires_at: crate::clock::Timestamp,
    pub change_url: &'a str,
    pub lang: crate::i18n::Lang,
}

/// Puts notices in the outbox.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    portal: String,
    service_desk: String,
    time: LocalTime,
}

impl Outbox {
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>, portal: &str, service_desk: &str) -> Self {
        Self { store, clock, portal: portal.into(), service_desk: service_desk.into(), time: LocalTime::utc() }
    }

    /// Times in mail in this zone (the portal's).
    pub fn in_zone(self, time: LocalTime) -> Self {
        Self { time, ..self }
    }

    /// Queues a notice to `to`, in the language the user used, with when and from where.
    pub async fn notify(&self, to: &str, name: &str, notice: Notice, meta: &RequestMeta) -> Result<(), StorageError> {
        let i = meta.lang.catalogue();
        let (subject_key, what_key) = notice.keys();
        let subject = i.f(subject_key, &[("portal", &self.portal)]);
        let service = match notice {
            Notice::Enrolled(id)
            | Notice::Replaced(id)
            | Notice::Removed(id)
            | Notice::Revoked(id)
            | Notice::Lifted(id)
                if id != "all" =>
            {
                i.t(&format!("service.{id}.name")).to_string()
            }
            _ => String::new(),
        };
        let what = i.f(what_key, &[("service", &service)]);
        let now = self.clock.now();
        let when = self.time.format(now);
        let text = NoticeText {
            i,
            name,
            what: &what,
            when: &when,
            ip: &meta.source_ip,
            service_desk: &self.service_desk,
            portal: &self.portal,
        }
        .render()
        .unwrap_or_default();
        let html = NoticeHtml {
            i,
            subject: &subject,
            name,
            what: &what,
            when: &when,
            ip: &meta.source_ip,
            service_desk: &self.service_desk,
            portal: &self.portal,
        }
        .render()
        .unwrap_or_default();
        self.queue(to, subject, text, html).await
    }
}

impl Outbox {
    /// Queues a password-expiry reminder.
    pub async fn expiry_reminder(&self, n: &ExpiryNotice<'_>) -> Result<(), StorageError> {
        let i = n.lang.catalogue();
        let when = self.time.format(n.expires_at);
        let subject = i.f("mail.expiry.subject", &[("portal", &self.portal), ("when", &when)]);
        let what = i.f("mail.expiry.what", &[("account", n.account), ("when", &when)]);
        let text = ExpiryText { i, name: n.name, what: &what, url: n.change_url, portal: &self.portal }
            .render()
            .unwrap_or_default();
        let html =
            ExpiryHtml { i, subject: &subject, name: n.name, what: &what, url: n.change_url, portal: &self.portal }
                .render()
                .unwrap_or_default();
        self.queue(n.to, subject, text, html).await
    }

    async fn queue(&self, to: &str, subject: String, text_body: String, html_body: String) -> Result<(), StorageError> {
        let now = self.clock.now();
        self.store
            .queue_mail(&MailRecord {
                id: 0,
                recipient: to.into(),
                subject,
                text_body,
                html_body,
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
                sent_at: None,
                last_error: None,
            })
            .await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the mail address {0} cannot be used")]
    Address(String),
    #[error("the SMTP transport cannot be set up: {0}")]
    Transport(String),
    #[error("the SMTP server did not answer NOOP")]
    NoNoop,
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
}

/// Sends what is in the outbox.
pub struct Mailer {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>, s: &MailSettings) -> Result<Self, MailError> {
        let from: Mailbox = s.from.parse().map_err(|_| MailError::Address(s.from.clone()))?;
        let transport_error = |e: lettre::transport::smtp::Error| MailError::Transport(e.to_string());
        let mut builder = match s.security {
            MailSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(transport_error)?,
            MailSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(transport_error)?
            }
            MailSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
        }
        .port(s.port)
        .timeout(Some(Duration::from_secs(s.timeout_seconds)));
        if let (Some(user), Ok(Some(password))) = (&s.username, s.password()) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_string()));
        }
        Ok(Self { store, clock, transport: builder.build(), from })
    }

    /// Whether the SMTP server answers (and, with TLS, shows a certificate we trust); nothing is sent.
    pub async fn reachable(&self) -> Result<(), MailError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(MailError::NoNoop),
            Err(e) => Err(MailError::Smtp(e)),
        }
    }

    /// Sends every mail that is due; failures are retried later with growing delays. The mail is
    /// claimed first (its next try moved past a lease), so that whichever worker or instance runs
    /// this, each mail goes out once; a worker that dies leaves it due again when the lease ends.
    pub async fn send_due(&self) -> Result<usize, StorageError> {
        self.run_once(self.clock.now()).await
    }

    /// One round of [`Self::send_due`] at `now` (tests drive it with their own clock).
    pub async fn run_once(&self, now: crate::clock::Timestamp) -> Result<usize, StorageError> {
        let mut sent = 0;
        for mail in self.store.claim_due_mail(now, now + MAIL_LEASE_SECONDS, 20).await? {
            match self.send(&mail).await {
                Ok(()) => {
                    self.store.mail_sent(mail.id, now).await?;
                    sent += 1;
                }
                Err(e) => {
                    let delay = 30i64 << mail.attempts.min(8);
                    tracing::warn!(mail = mail.id, attempts = mail.attempts + 1, error = %e, "mail not sent; will retry");
                    self.store.mail_failed(mail.id, &e, now + delay).await?;
                }
            }
        }
        Ok(sent)
    }

    async fn send(&self, mail: &MailRecord) -> Result<(), String> {
        let to: Mailbox = mail.recipient.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(mail.text_body.clone(), mail.html_body.clone()))
            .map_err(|e| e.to_string())?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Runs forever: sends due mail every few seconds.
    pub async fn run(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "reading the mail outbox failed");
            }
        }
    }
}

/// How long a claimed mail is left to its worker before another may take it.
const MAIL_LEASE_SECONDS: i64 = 300;

/// The language a mail is written in, for tests.
pub fn lang_of(meta: &RequestMeta) -> Lang {
    meta.lang
}
