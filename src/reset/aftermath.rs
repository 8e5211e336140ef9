//! What follows a password write or an unlock that AD made, or may have made: the flow ends
//! (or reopens), the user's sessions end, the audit entry, the mail. AD has changed when these
//! run, so none of them turns the answer into an error: a step that fails is logged with the
//! request's reference and the steps after it still run (an error page would invite the user to
//! reset again, and the sessions must end whatever else fails).

use std::sync::Arc;

use super::outcome::ResetView;
use super::state::Finish;
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::directory::DirectoryUser;
use crate::mail::{Notice, Outbox};
use crate::storage::{Storage, StorageError};

pub(super) struct Aftermath {
    pub(super) store: Arc<dyn Storage>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) auditor: Auditor,
    pub(super) outbox: Outbox,
    /// A reset unlocks the account too (`reset.unlock_on_reset`): the audit entry says so.
    pub(super) unlock_on_reset: bool,
}

impl Aftermath {
    /// A password AD did not confirm may have been set: as after a reset, the user's sessions
    /// end, and a mail tells them it may have been changed. The day's count stays; the flow goes
    /// back to the password step, so that the user can set a password again if the new one does
    /// not work. Each step runs whatever became of the others (failures are logged).
    pub(super) async fn reset_unconfirmed(&self, view: &ResetView, user: &DirectoryUser, meta: &RequestMeta) {
        let unconfirmed = Unconfirmed { kind: EventKind::PasswordReset, key: "reset_unconfirmed" };
        self.unconfirmed(unconfirmed, view, user, Notice::PasswordMaybeChanged, meta).await;
        if let Err(e) = self.store.release_reset_flow(&view.id, Some(self.clock.now())).await {
            unconfirmed.logged("reopening the password step", e, user, meta);
        }
    }

    /// Ends every portal session of the user; how many. A failure is logged and audited as its own
    /// entry (the sessions then end at their next check against AD, within a minute, once the
    /// password was set).
    async fn end_sessions(&self, user: &DirectoryUser, meta: &RequestMeta) -> u64 {
        match self.store.delete_user_sessions(&user.id, None).await {
            Ok(ended) => ended,
            Err(e) => {
                tracing::error!(reference = %meta.request_id, user_id = %user.id, error = %e, "the user's sessions not ended");
                let event = AuditEvent::new(EventKind::SessionExpired, Outcome::Failure)
                    .about(user)
                    .detail(Detail::new("sessions_not_ended"));
                if let Err(e) = self.auditor.record(meta, event).await {
                    tracing::error!(reference = %meta.request_id, error = %e, "nor audited");
                }
                0
            }
        }
    }

    /// The password was set (or the account unlocked): ends the flow (once), ends the user's
    /// sessions, audits, and queues the mail.
    pub(super) async fn done(&self, view: &ResetView, user: &DirectoryUser, how: Finish, meta: &RequestMeta) {
        let Ok(done) = view.state.claim().and_then(|writing| writing.finish(how)) else { return };
        let (state, outcome) = done.stored();
        let outcome = outcome.unwrap_or_default();
        let notice = if how == Finish::Reset { Notice::PasswordReset } else { Notice::Unlocked };
        let logged = |step: &str, e: StorageError| {
            let reference = &meta.request_id;
            tracing::error!(%reference, user_id = %user.id, step, error = %e, "reset done in AD; a step after failed");
        };
        if let Err(e) = self.store.finish_reset_flow(&view.id, state, Some(outcome), self.clock.now()).await {
            logged("ending the flow", e);
        }
        // The credentials changed (or the account was unlocked by someone proving to be its
        // owner): every portal session of the user ends, an attacker's among them.
        let ended = self.end_sessions(user, meta).await;
        let kind = if outcome == "reset" { EventKind::PasswordReset } else { EventKind::Unlock };
        let key = if outcome == "reset" && self.unlock_on_reset { "reset_unlocked" } else { "reset_done" };
        let detail = Detail::new(key).arg("services_key", services_key(view)).arg("ended", ended);
        let event = AuditEvent::new(kind, Outcome::Success).about(user).detail(detail);
        if let Err(e) = self.auditor.record(meta, event).await {
            logged("its audit entry", e);
        }
        let what = format!("audit.finish.{outcome}");
        let mail_event = match &user.mail {
            Some(mail) => match self.outbox.notify(mail, user.name_to_show(), notice, meta).await {
                Ok(()) => Some((Outcome::Success, Detail::new("finish_notice"))),
                Err(e) => {
                    logged("queueing the mail", e);
                    None
                }
            },
            None => Some((Outcome::Failure, Detail::new("finish_no_mail"))),
        };
        let Some((told, detail)) = mail_event else { return };
        let event = AuditEvent::new(EventKind::Mail, told).user_id(&user.id).detail(detail.arg("what_key", what));
        if let Err(e) = self.auditor.record(meta, event).await {
            logged("the mail's audit entry", e);
        }
    }

    /// An unlock AD did not confirm may have been made: as after an unlock, the user's sessions
    /// end and the owner is told. The flow and the day's count were given back (unlocking again
    /// does no harm).
    pub(super) async fn unlock_unconfirmed(&self, view: &ResetView, user: &DirectoryUser, meta: &RequestMeta) {
        let unconfirmed = Unconfirmed { kind: EventKind::Unlock, key: "unlock_unconfirmed" };
        self.unconfirmed(unconfirmed, view, user, Notice::Unlocked, meta).await;
    }

    /// What follows a write AD may have made: the user's sessions end, the audit entry, the mail.
    async fn unconfirmed(
        &self,
        what: Unconfirmed,
        view: &ResetView,
        user: &DirectoryUser,
        notice: Notice,
        meta: &RequestMeta,
    ) {
        let ended = self.end_sessions(user, meta).await;
        let detail = Detail::new(what.key).arg("services_key", services_key(view)).arg("ended", ended);
        let event = AuditEvent::new(what.kind, Outcome::Failure).about(user).detail(detail);
        if let Err(e) = self.auditor.record(meta, event).await {
            what.logged("its audit entry", e, user, meta);
        }
        if let Some(mail) = &user.mail
            && let Err(e) = self.outbox.notify(mail, user.name_to_show(), notice, meta).await
        {
            what.logged("queueing the mail", e, user, meta);
        }
    }
}

/// A write AD did not confirm: what its audit entry says.
#[derive(Clone, Copy)]
struct Unconfirmed {
    kind: EventKind,
    key: &'static str,
}

impl Unconfirmed {
    fn logged(self, step: &str, e: StorageError, user: &DirectoryUser, meta: &RequestMeta) {
        let reference = &meta.request_id;
        tracing::error!(%reference, user_id = %user.id, step, error = %e, what = self.key, "a step after the write failed");
    }
}

/// The services that verified the flow, as the audit trail names them.
fn services_key(view: &ResetView) -> String {
    let keys: Vec<String> = view.verified.iter().map(|k| format!("service.{}.name", k.id())).collect();
    keys.join(",")
}
