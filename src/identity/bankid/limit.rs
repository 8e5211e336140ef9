//! How many BankID orders one browser may start. Each costs an order at BankID (or the broker's
//! fee), a stored flow and its QR frames, and nothing a user does needs many: without a limit, one
//! reset flow could start orders for as long as it lived.

use super::flow::{BankIdFlows, FlowError, FlowUser};
use super::purpose::FlowPurpose;
use crate::audit::{AuditEvent, Detail, EventKind, Outcome, RequestMeta};
use crate::throttle::{Limit, Reserve, Throttle};

/// Orders one browser (its session, or its CSRF cookie before a login) may start in an hour. A
/// user who lets a few QR codes run out and starts again stays far below it. A new browser needs
/// a new login or reset flow, which are limited per address.
pub const ORDERS_PER_BROWSER_PER_HOUR: u32 = 10;

impl BankIdFlows {
    /// Counts an order against the browser's limit first, so that parallel starts cannot all
    /// slip under it. Refused (audited) with the minutes to wait.
    pub(super) async fn admit_order(
        &self,
        binding: &str,
        purpose: FlowPurpose,
        user: Option<&FlowUser<'_>>,
        meta: &RequestMeta,
    ) -> Result<(), FlowError> {
        let throttle = Throttle::new(self.store.clone(), self.clock.clone());
        // Keyed by a hash: the binding is a cookie's secret.
        let key = self.key.lookup_hash(&format!("bankid-orders\0{binding}"));
        let limit = Limit { max_failures: ORDERS_PER_BROWSER_PER_HOUR, window_seconds: 3600 };
        let Reserve::Blocked { wait } = throttle.reserve("bankid-order", &key, limit).await? else {
            return Ok(());
        };
        let mut event = AuditEvent::new(EventKind::BankIdOrder, Outcome::Blocked)
            .detail(Detail::new("too_many_orders").purpose(purpose.id()));
        if let Some(u) = user {
            event = event.username(u.account_name).user_id(u.user_id);
        }
        self.auditor.record(meta, event).await?;
        Err(FlowError::TooManyOrders { minutes: (wait + 59) / 60 })
    }
}
