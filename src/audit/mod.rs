//! The audit log: every state-changing event, who, when, from where, and how it ended.

use std::sync::Arc;

mod detail;
mod forward;
mod names;
pub use detail::{Detail, describe, render as render_detail, render_in as render_detail_in};
pub use forward::{ForwardError, Forwarder};
pub use names::NameTags;

use crate::clock::{Clock, Random};
use crate::storage::{AuditRecord, Storage, StorageError};

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub source_ip: String,
    pub user_agent: String,
    pub request_id: String,
    /// The language the user reads (for mail sent on their behalf).
    pub lang: crate::i18n::Lang,
    /// The member of staff (a user with a portal role) logged in where the request came from: an
    /// entry about someone else (a caller the service desk verifies, a user an administrator acts
    /// on) names them as who did it.
    pub actor: Option<Actor>,
}

impl RequestMeta {
    /// The audit trail's "request" of a background job: no address, no browser, its `name` where
    /// a request has the browser's, its `id` as the request id; `lang` for what it sends.
    pub fn job(name: &str, id: &str, lang: crate::i18n::Lang) -> Self {
        Self { source_ip: String::new(), user_agent: name.into(), request_id: id.into(), lang, actor: None }
    }
}

/// A logged-in user making a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub account_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Blocked,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Blocked];

    pub fn id(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Blocked => "blocked",
        }
    }
}

/// The kinds of event. Their ids are stable: reports and filters use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Login,
    Logout,
    SessionExpired,
    BankIdOrder,
    BankIdResult,
    BankIdCancel,
    Enrol,
    SmsSend,
    SmsCheck,
    ResetStart,
    ResetVerify,
    PasswordReset,
    Unlock,
    Mail,
    Revoke,
    AdminReauth,
    PasswordChange,
    AdminExport,
    ExpiryReminder,
    /// A member of staff looked a user up, or opened their page.
    AdminView,
}

impl EventKind {
    pub const ALL: [EventKind; 20] = [
        EventKind::Login,
        EventKind::Logout,
        EventKind::SessionExpired,
        EventKind::BankIdOrder,
        EventKind::BankIdResult,
        EventKind::BankIdCancel,
        EventKind::Enrol,
        EventKind::SmsSend,
        EventKind::SmsCheck,
        EventKind::ResetStart,
        EventKind::ResetVerify,
        EventKind::PasswordReset,
        EventKind::Unlock,
        EventKind::Mail,
        EventKind::Revoke,
        EventKind::AdminReauth,
        EventKind::PasswordChange,
        EventKind::AdminExport,
        EventKind::ExpiryReminder,
        EventKind::AdminView,
    ];

    pub fn id(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::Logout => "logout",
            EventKind::SessionExpired => "session-expired",
            EventKind::BankIdOrder => "bankid-order",
            EventKind::BankIdResult => "bankid-result",
            EventKind::BankIdCancel => "bankid-cancel",
            EventKind::Enrol => "enrol",
            EventKind::SmsSend => "sms-send",
            EventKind::SmsCheck => "sms-check",
            EventKind::ResetStart => "reset-start",
            EventKind::ResetVerify => "reset-verify",
            EventKind::PasswordReset => "password-reset",
            EventKind::Unlock => "unlock",
            EventKind::Mail => "mail",
            EventKind::Revoke => "revoke",
            EventKind::AdminReauth => "admin-reauth",
            EventKind::PasswordChange => "password-change",
            EventKind::AdminExport => "admin-export",
            EventKind::ExpiryReminder => "expiry-reminder",
            EventKind::AdminView => "admin-view",
        }
    }
}

/// One event to record.
#[derive(Clone)]
pub struct AuditEvent {
    pub kind: EventKind,
    pub outcome: Outcome,
    /// The account name (or, for a name that matches no account, its tag: see [`NameTags`]).
    pub username: Option<String>,
    /// A name as typed that matches no account (or is not known yet): recorded as its tag.
    pub typed: Option<String>,
    /// The directory objectGUID, once known.
    pub user_id: Option<String>,
    pub detail: Option<String>,
}

// What was typed may be a password.
debug_showing!(AuditEvent { kind, outcome, username, user_id, detail });

impl AuditEvent {
    pub fn new(kind: EventKind, outcome: Outcome) -> Self {
        Self { kind, outcome, username: None, typed: None, user_id: None, detail: None }
    }
    pub fn username(mut self, name: impl Into<String>) -> Self {
        self.username = Some(name.into());
        self
    }
    /// The name typed, for an event about no known account: the trail gets its tag.
    pub fn typed(mut self, name: &str) -> Self {
        self.typed = Some(name.to_string());
        self
    }
    pub fn user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }
    /// The entry is about this account, when there is one.
    pub fn user_id_if(mut self, id: Option<&str>) -> Self {
        if let Some(id) = id {
            self.user_id = Some(id.to_string());
        }
        self
    }
    /// The entry is about this directory user: their account name and id.
    pub fn about(self, user: &crate::directory::DirectoryUser) -> Self {
        self.username(&user.account_name).user_id(&user.id)
    }
    pub fn detail(mut self, detail: Detail) -> Self {
        self.detail = Some(detail.encode());
        self
    }
}

#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    forward: Option<Arc<Forwarder>>,
    tags: NameTags,
}

impl Auditor {
    /// An auditor whose name tags last as long as it does (a random key); the portal gives
    /// its own with [`Self::tagging`].
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        let mut key = [0u8; 32];
        crate::clock::OsRandom.fill(&mut key);
        let tags = NameTags::new(crate::identity::DataKey::derived(&key, b"stjarna-name-tags"));
        Self { store, clock, forward: None, tags }
    }

    /// Tags names that match no account with `tags`.
    pub fn tagging(self, tags: NameTags) -> Self {
        Self { tags, ..self }
    }

    /// The tag a name typed is recorded under (also the key of its limits).
    pub fn tag(&self, typed: &str) -> String {
        self.tags.tag(typed)
    }

    /// Also sends each event, once written, to `forward` (syslog, a JSON-lines file).
    pub fn forwarding(self, forward: Option<Forwarder>) -> Self {
        Self { forward: forward.map(Arc::new), ..self }
    }

    /// Writes the event about a change already made (and not to be undone): a failure to write it
    /// is logged with what the entry says, not returned, since an error page would invite doing
    /// it again.
    pub async fn record_made(&self, meta: &RequestMeta, event: AuditEvent) {
        let (kind, user_id, detail) = (event.kind, event.user_id.clone(), event.detail.clone());
        if let Err(e) = self.record(meta, event).await {
            tracing::error!(
                reference = %meta.request_id,
                error = %e,
                event = kind.id(),
                user_id = user_id.as_deref().unwrap_or(""),
                detail = %detail.as_deref().map(|d| render_detail(d, crate::i18n::Lang::En)).unwrap_or_default(),
                "a change was made; its audit entry not written"
            );
        }
    }

    /// What follows a change already made: its entry (as [`Self::record_made`]), then `then` (the
    /// notices), run on a task of their own and awaited, so that a request that goes away
    /// meanwhile (a dropped connection drops its future) cannot lose them: the change's write
    /// itself completes whatever becomes of the request (see `storage::cache`).
    pub async fn made_then(
        &self,
        meta: &RequestMeta,
        event: AuditEvent,
        then: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (auditor, owned) = (self.clone(), meta.clone());
        let task = tokio::spawn(async move {
            auditor.record_made(&owned, event).await;
            then.await;
        });
        if let Err(e) = task.await {
            tracing::error!(reference = %meta.request_id, error = %e, "what follows a change did not finish");
        }
    }

    /// Writes the event. A failure to write is an error: an event that cannot be audited must not
    /// be reported as done.
    pub async fn record(&self, meta: &RequestMeta, event: AuditEvent) -> Result<(), StorageError> {
        // Whatever a client typed, one entry stays small (a 10,000-character username is cut).
        let username =
            event.username.map(|u| truncate(&u, MAX_NAME)).or_else(|| event.typed.as_deref().map(|t| self.tag(t)));
        let user_id = event.user_id.map(|u| truncate(&u, MAX_NAME));
        let detail = event.detail.map(|d| truncate(&d, MAX_DETAIL));
        // Done by someone else than whom the entry is about: it says by whom.
        let actor = meta
            .actor
            .as_ref()
            .filter(|a| {
                user_id.as_deref() != Some(a.user_id.as_str())
                    && !username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(&a.account_name))
            })
            .map(|a| truncate(&a.account_name, MAX_NAME));
        let event = AuditEvent { username, user_id, detail, typed: None, ..event };
        tracing::info!(
            target: "audit",
            event = event.kind.id(),
            outcome = event.outcome.id(),
            username = event.username.as_deref().unwrap_or(""),
            user_id = event.user_id.as_deref().unwrap_or(""),
            source_ip = %meta.source_ip,
            request_id = %meta.request_id,
            actor = actor.as_deref().unwrap_or(""),
            detail = %event.detail.as_deref().map(|d| render_detail(d, crate::i18n::Lang::En)).unwrap_or_default(),
        );
        let record = AuditRecord {
            id: 0,
            at: self.clock.now(),
            event: event.kind.id().to_string(),
            outcome: event.outcome.id().to_string(),
            username: event.username,
            user_id: event.user_id,
            source_ip: Some(meta.source_ip.clone()).filter(|s| !s.is_empty()),
            user_agent: Some(truncate(&meta.user_agent, 512)).filter(|s| !s.is_empty()),
            request_id: Some(meta.request_id.clone()).filter(|s| !s.is_empty()),
            detail: event.detail,
            actor,
        };
        self.store.append_audit(&record).await?;
        crate::monitoring::event(event.kind.id(), event.outcome.id());
        if let Some(forward) = &self.forward {
            forward.forward(&record).await;
        }
        Ok(())
    }
}

/// The longest username or user id kept in an entry (AD's own limits are far below).
const MAX_NAME: usize = 256;
/// The longest detail kept.
const MAX_DETAIL: usize = 2000;

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod made {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn what_follows_a_change_is_not_lost_with_the_request() {
        let (store, _dir) = crate::testing::store().await;
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::starting_now());
        let auditor = Auditor::new(store.clone(), clock);
        let told = Arc::new(AtomicBool::new(false));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let then = {
            let told = told.clone();
            async move {
                let _ = wait.await;
                told.store(true, Ordering::SeqCst);
            }
        };
        let meta = crate::testing::meta();
        let event = AuditEvent::new(EventKind::Enrol, Outcome::Success).user_id("u").detail(Detail::new("enrolled"));
        // The request's future is dropped (a closed connection) while the notice is on its way.
        let request = auditor.made_then(&meta, event, then);
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(50), request).await;
        assert!(dropped.is_err(), "still telling when the request went away");
        go.send(()).unwrap();
        for _ in 0..100 {
            if told.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(told.load(Ordering::SeqCst), "the notice went out all the same");
        let entries = store.recent_audit(10).await.unwrap();
        assert_eq!(entries.len(), 1, "and the entry was written");
    }
}
