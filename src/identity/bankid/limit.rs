//! How many BankID orders one browser may start. Each costs an order at BankID (or the broker's
//! fee), a stored flow and its QR frames, and nothing a user does needs many: without a limit, one
//! reset flow could start orders for as long as it lived.

use super::flow::{BankIdFlows, FlowError, FlowUser};
use super::purpose::FlowPurpose;
use crate::audit::{AuditEvent, Detail, EventKind, Outcome, RequestMeta};
use crate::identity::PersonalNumber;
use crate::throttle::{Attempt, Limit, Reserve, Throttle};

/// Orders one browser may start in an hour, or one logged-in user from any number of browsers. A
/// user who lets a few QR codes run out and starts again stays far below it. Before a login the
/// browser is its CSRF cookie, which a client may drop for a new one; but each new one needs a new
/// login or reset flow, and those are limited per address.
pub const ORDERS_PER_BROWSER_PER_HOUR: u32 = 10;

/// Phone orders the service desk may send one BankID (one personal number, whichever of its
/// accounts are named) in an hour. Each makes the phone ask its owner to confirm; unlimited, an
/// agent (or whoever holds an agent's session) could send one after another until the person
/// confirms one to make it stop. A call needs one or two.
pub const PHONE_ORDERS_PER_BANKID_PER_HOUR: u32 = 5;

/// What an order is counted under: the key, how many an hour, and the audit detail of a refusal.
struct Counted<'a> {
    key: &'a str,
    max: u32,
    refusal: &'static str,
}

impl BankIdFlows {
    /// Counts an order against the browser's limit (the user's, for a logged-in user's own
    /// enrolment, replacement or verification) first, so that parallel starts cannot all slip
    /// under it. Refused (audited) with the minutes to wait.
    pub(super) async fn admit_order(
        &self,
        binding: &str,
        purpose: FlowPurpose,
        user: Option<&FlowUser<'_>>,
        meta: &RequestMeta,
    ) -> Result<Attempt, FlowError> {
        // A reset step's user is whoever the typed name matched: counting it per user would let
        // strangers use up that user's orders, and tell that the name is an account.
        let counted = match (purpose, user) {
            (FlowPurpose::Enrol | FlowPurpose::Replace | FlowPurpose::Verify, Some(u)) => {
                format!("user\0{}", u.budget_key())
            }
            _ => format!("browser\0{binding}"),
        };
        let counted = Counted { key: &counted, max: ORDERS_PER_BROWSER_PER_HOUR, refusal: "too_many_orders" };
        self.admit(counted, purpose, user, meta).await
    }

    /// Counts a service-desk phone order against the BankID it goes to, whichever agent sends it
    /// and whichever of the person's accounts it names.
    pub(super) async fn admit_phone_order(
        &self,
        personal_number: &PersonalNumber,
        user: &FlowUser<'_>,
        meta: &RequestMeta,
    ) -> Result<Attempt, FlowError> {
        let counted = format!("phone\0{}", personal_number.digits());
        let counted =
            Counted { key: &counted, max: PHONE_ORDERS_PER_BANKID_PER_HOUR, refusal: "too_many_phone_orders" };
        self.admit(counted, FlowPurpose::Caller, Some(user), meta).await
    }

    async fn admit(
        &self,
        counted: Counted<'_>,
        purpose: FlowPurpose,
        user: Option<&FlowUser<'_>>,
        meta: &RequestMeta,
    ) -> Result<Attempt, FlowError> {
        let Counted { key, max, refusal } = counted;
        // Keyed by a hash: the binding is a cookie's secret, a personal number is never kept.
        let key = self.key.lookup_hash(&format!("bankid-orders\0{key}"));
        let limit = Limit { max_failures: max, window_seconds: 3600 };
        let wait = match self.throttle().reserve("bankid-order", &key, limit).await? {
            Reserve::Granted(attempt) => return Ok(attempt),
            Reserve::Blocked { wait } => wait,
        };
        let mut event = AuditEvent::new(EventKind::BankIdOrder, Outcome::Blocked)
            .detail(Detail::new(refusal).purpose(purpose.id()));
        if let Some(u) = user {
            event = event.username(u.account_name).user_id(u.user_id);
        }
        self.auditor.record(meta, event).await?;
        Err(FlowError::TooManyOrders { minutes: (wait + 59) / 60 })
    }

    /// Gives an order back that BankID did not start (an outage must not use up the hour).
    pub(super) async fn release_order(&self, admitted: Attempt) -> Result<(), FlowError> {
        Ok(self.throttle().release(admitted).await?)
    }

    fn throttle(&self) -> Throttle {
        Throttle::new(self.store.clone(), self.clock.clone())
    }
}
