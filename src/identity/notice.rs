//! Telling a user that what proves who they are has changed: by mail to the address in AD, and by
//! a text to the mobile number that was enrolled before the change (an attacker who added or
//! swapped a service with a stolen password usually reads the victim's mail too, but not their
//! phone). Failures are logged and audited, never passed on: the change stands.

use std::sync::Arc;

use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::directory::Directory;
use crate::enrolment::{Change, ChangeNotifier, ServiceKind};
use crate::identity::DataKey;
use crate::identity::sms::{PhoneNumber, SmsGateway, with_retries};
use crate::mail::{Notice, Outbox};
use crate::storage::Storage;

pub struct ChangeNotices {
    pub directory: Arc<dyn Directory>,
    pub store: Arc<dyn Storage>,
    pub outbox: Outbox,
    pub auditor: Auditor,
    pub key: Option<DataKey>,
    pub gateway: Option<Arc<dyn SmsGateway>>,
    pub portal: String,
    pub service_desk: String,
}

/// What the user is told of.
#[derive(Debug, Clone, Copy)]
enum Told {
    Change(Change),
    /// The service desk lifted the cooling-off of this service.
    Lifted(ServiceKind),
}

impl Told {
    fn kind(self) -> ServiceKind {
        match self {
            Told::Change(change) => change.kind(),
            Told::Lifted(kind) => kind,
        }
    }

    /// Its id in the audit trail's catalogue (`audit.change.*`) and the alert texts' (`sms.alert.*`).
    fn id(self) -> &'static str {
        match self {
            Told::Change(change) => change.id(),
            Told::Lifted(_) => "lift",
        }
    }

    fn notice(self) -> Notice {
        let id = self.kind().id();
        match self {
            Told::Change(Change::Add(_)) => Notice::Enrolled(id),
            Told::Change(Change::Replace(_)) => Notice::Replaced(id),
            Told::Change(Change::Remove(_)) => Notice::Removed(id),
            Told::Lifted(_) => Notice::Lifted(id),
        }
    }
}

impl ChangeNotices {
    /// The number that was there before the change: the one taken away, or the enrolled one when
    /// the change was to another service (none when it was to the number itself: an addition, or
    /// a lift of its cooling-off, would text the very phone that may be someone else's).
    async fn number_before(&self, user_id: &str, kind: ServiceKind, removed: Option<String>) -> Option<PhoneNumber> {
        let encrypted = match kind {
            ServiceKind::Sms => removed?,
            _ => self.store.sms_enrolment(user_id).await.ok()??.number_encrypted,
        };
        PhoneNumber::from_stored(self.key.as_ref()?, &encrypted)
    }

    async fn audit(&self, meta: &RequestMeta, user_id: &str, outcome: Outcome, detail: Detail) {
        let event = AuditEvent::new(EventKind::Mail, outcome).user_id(user_id).detail(detail);
        if let Err(e) = self.auditor.record(meta, event).await {
            tracing::error!(error = %e, "auditing an enrolment notice failed");
        }
    }

    /// Mails the user about `told`, and texts the number there was before.
    async fn tell(&self, user_id: &str, told: Told, removed_number: Option<String>, meta: &RequestMeta) {
        let what = |key: &'static str| {
            Detail::new(key).service(told.kind().id()).arg("change_key", format!("audit.change.{}", told.id()))
        };
        match self.directory.find_user_by_id(user_id).await {
            Ok(Some(user)) => {
                let (outcome, detail) = match &user.mail {
                    Some(mail) => match self.outbox.notify(mail, user.name_to_show(), told.notice(), meta).await {
                        Ok(()) => (Outcome::Success, what("notice_queued")),
                        Err(e) => {
                            tracing::error!(error = %e, "enrolment notice not queued");
                            (Outcome::Failure, what("notice_not_queued"))
                        }
                    },
                    None => (Outcome::Failure, what("no_mail_address")),
                };
                self.audit(meta, user_id, outcome, detail).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "enrolment notice: the directory did not answer"),
        }
        let number = self.number_before(user_id, told.kind(), removed_number).await;
        let (Some(gateway), Some(number)) = (&self.gateway, number) else {
            return;
        };
        let i = meta.lang.catalogue();
        let service = i.t(&format!("service.{}.name", told.kind().id())).to_string();
        let text = i.f(
            &format!("sms.alert.{}", told.id()),
            &[("portal", &self.portal), ("service", &service), ("service_desk", &self.service_desk)],
        );
        let (outcome, detail) = match with_retries(gateway.as_ref(), &number, &text).await {
            Ok(_) => (Outcome::Success, what("alert_sent").arg("number", number.masked())),
            Err(e) => {
                tracing::warn!(error = %e, "enrolment alert text not sent");
                (Outcome::Failure, what("alert_not_sent").arg("number", number.masked()))
            }
        };
        let event = AuditEvent::new(EventKind::SmsSend, outcome).user_id(user_id).detail(detail);
        if let Err(e) = self.auditor.record(meta, event).await {
            tracing::error!(error = %e, "auditing an enrolment alert failed");
        }
    }
}

#[async_trait::async_trait]
impl ChangeNotifier for ChangeNotices {
    async fn changed(&self, user_id: &str, change: Change, removed_number: Option<String>, meta: &RequestMeta) {
        self.tell(user_id, Told::Change(change), removed_number, meta).await;
    }

    async fn lifted(&self, user_id: &str, kind: ServiceKind, meta: &RequestMeta) {
        self.tell(user_id, Told::Lifted(kind), None, meta).await;
    }
}
