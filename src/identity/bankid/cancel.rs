//! Cancelling an order: at once (the page's Cancel button), or when its page was left and does
//! not come back. The page's `pagehide` beacon cannot tell going elsewhere or closing the tab from
//! a reload or Back and Forward, so one watcher per flow waits LEAVE_GRACE after the latest leave,
//! and cancels unless a collect since shows the page polling again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::flow::{BankIdFlows, COLLECT_INTERVAL, FlowError};
use crate::audit::{AuditEvent, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Timestamp;
use crate::storage::{BankIdFlowRecord, StorageError};

/// How long a left page may take to come back before its order is cancelled: long enough for the
/// page to poll twice (every 2 s) and so cause a collect.
const LEAVE_GRACE: Duration = Duration::from_secs(6);

/// Flows whose page was left: when to decide (real time) and when it was left (the clock's time).
#[derive(Default)]
pub struct Leaving(Mutex<HashMap<String, (Instant, Timestamp)>>);

impl Leaving {
    /// Records a leave; true when nobody watches the flow yet (then the caller starts a watcher).
    fn note(&self, id: &str, left_at: Timestamp) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(id.to_string(), (Instant::now() + LEAVE_GRACE, left_at)).is_none()
    }

    /// The latest leave once its grace is over (and the flow forgotten), or when to look again.
    fn due(&self, id: &str) -> Result<Option<Timestamp>, Instant> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(&(deadline, _)) if deadline > Instant::now() => Err(deadline),
            _ => Ok(map.remove(id).map(|(_, left_at)| left_at)),
        }
    }
}

impl BankIdFlows {
    /// Cancels the order (the user pressed cancel, or left the page). True when this call ended
    /// it; false when it had ended already (completed a moment before, say) or is not this
    /// browser's.
    pub async fn cancel(&self, id: &str, binding: &str, meta: &RequestMeta) -> Result<bool, FlowError> {
        let Some(rec) = self.load(id, binding).await? else {
            return Ok(false);
        };
        let ended =
            self.store.finish_bankid_flow(&rec.id, "cancelled", Some("cancelled"), None, self.clock.now()).await?;
        if ended {
            self.cancelled(&rec, "cancelled", meta).await?;
        }
        Ok(ended)
    }

    /// After a flow was cancelled here: the order too, at BankID, and the audit (`why`, a detail key).
    pub(super) async fn cancelled(
        &self,
        rec: &BankIdFlowRecord,
        why: &'static str,
        meta: &RequestMeta,
    ) -> Result<(), FlowError> {
        self.frames.forget(&rec.id);
        crate::monitoring::bankid_order("cancelled");
        if let Err(e) = self.bankid.cancel(&rec.order_ref).await {
            tracing::warn!(error = %e, "BankID cancel failed; the order expires by itself");
        }
        let event = AuditEvent::new(EventKind::BankIdCancel, Outcome::Success)
            .detail(Detail::new(why).purpose(&rec.purpose))
            .user_id_if(rec.user_id.as_deref());
        self.auditor.record(meta, event).await?;
        Ok(())
    }

    /// The page of a pending order, started in this browser, was left. Nothing happens for a
    /// finished flow or another browser's; a leave while one is awaited moves its deadline.
    pub async fn leave(self: &Arc<Self>, id: &str, binding: &str, meta: &RequestMeta) -> Result<(), StorageError> {
        let Some(rec) = self.load(id, binding).await? else { return Ok(()) };
        if rec.state != "pending" || !self.leaving.note(&rec.id, self.clock.now()) {
            return Ok(());
        }
        let (flows, id, meta) = (Arc::clone(self), rec.id.clone(), meta.clone());
        tokio::spawn(async move {
            let left_at = loop {
                match flows.leaving.due(&id) {
                    Ok(Some(left_at)) => break left_at,
                    Ok(None) => return,
                    Err(deadline) => tokio::time::sleep_until(deadline).await,
                }
            };
            // A collect in the second of leaving may be the page's last poll, still on its way;
            // one an interval later comes from a page that is back. Decided in one statement.
            let now = flows.clock.now();
            let outcome = match flows.store.cancel_unwatched_bankid_flow(&rec.id, left_at + COLLECT_INTERVAL, now).await
            {
                Ok(true) => flows.cancelled(&rec, "left", &meta).await,
                Ok(false) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, flow = %rec.id, "cancelling the order of a left BankID page failed");
            }
        });
        Ok(())
    }
}
