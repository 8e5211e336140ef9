//! Texts that go out after the answer: a reset flow's code is queued, so that a real send and a
//! decoy (nothing to send) answer alike, however slow the gateway. The worker sends with the
//! usual retries and audits the outcome. The queue is in memory: a code lost with a restart is
//! asked for again (the page offers a new one).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{PhoneNumber, SmsGateway, with_retries};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};

/// One text to send.
pub struct Queued {
    pub to: PhoneNumber,
    pub text: String,
    pub user_id: String,
    pub what: String,
    pub meta: RequestMeta,
}

#[derive(Clone)]
pub struct SmsQueue {
    tx: mpsc::Sender<Queued>,
}

impl SmsQueue {
    /// Starts the worker (on the current runtime) and returns the queue.
    pub fn start(gateway: Arc<dyn SmsGateway>, auditor: Auditor, capacity: usize) -> SmsQueue {
        let (tx, mut rx) = mpsc::channel::<Queued>(capacity);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                deliver(gateway.as_ref(), &auditor, job).await;
            }
        });
        SmsQueue { tx }
    }

    /// Queues a text; false when the queue is full (the caller treats it as a gateway failure).
    pub fn push(&self, job: Queued) -> bool {
        self.tx.try_send(job).is_ok()
    }
}

async fn deliver(gateway: &dyn SmsGateway, auditor: &Auditor, job: Queued) {
    let (outcome, detail) = match with_retries(gateway, &job.to, &job.text).await {
        Ok(_) => (Outcome::Success, Detail::new("code_sent").purpose(&job.what).arg("number", job.to.masked())),
        Err(e) => {
            tracing::warn!(error = %e, to = %job.to, "queued SMS not sent");
            (Outcome::Failure, Detail::new("gateway_failed").purpose(&job.what).arg("number", job.to.masked()))
        }
    };
    let event = AuditEvent::new(EventKind::SmsSend, outcome).user_id(&job.user_id).detail(detail);
    if let Err(e) = auditor.record(&job.meta, event).await {
        tracing::error!(error = %e, "auditing a queued SMS failed");
    }
}
