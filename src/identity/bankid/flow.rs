//! BankID orders as a server-side state machine, bound to the browser that started them.
//!
//! pending ──collect──▶ complete ──(login only)──▶ consumed
//!    │
//!    ├──▶ failed (a hint code, a mismatch, or expiry)
//!    └──▶ cancelled (the user, or an abandoned page)
//!
//! The QR secret stays here: each frame is drawn on the server. A flow can be seen and moved on only
//! by the browser that started it, and it is finished exactly once, even with several portal
//! instances polling the same order.

use std::sync::Arc;

use time::OffsetDateTime;

use super::purpose::{done_key, failure_key};
use super::rfa::{StartMode, error_key, message_key};
use super::{AuthOrder, BankId, BankIdError, Collect, CompletedUser};
use super::{FlowPurpose, FlowState, FlowView};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Random};
use crate::enrolment::{Change, ServiceKind};
use crate::identity::{DataKey, PersonalNumber};
use crate::session::{binding_hash, is_bound};
use crate::storage::{BankIdEnrolmentRecord, BankIdFlowRecord, EnrolMode, EnrolWrite, Storage, StorageError};

/// Orders live about 3 minutes at BankID; past this we stop asking.
pub(super) const LIFETIME: i64 = 200;
/// BankID asks for a collect every 2 seconds, no faster.
pub(super) const COLLECT_INTERVAL: i64 = 2;

/// A started flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("BankID: {0}")]
    BankId(BankIdError),
    /// The browser has started its orders for now; another may start in this many minutes.
    #[error("too many BankID orders from one browser")]
    TooManyOrders { minutes: i64 },
}

impl FlowError {
    /// The message for the user, when the error is BankID's.
    pub fn message_key(&self) -> Option<&'static str> {
        match self {
            FlowError::BankId(e) => Some(error_key(e)),
            FlowError::Storage(_) | FlowError::TooManyOrders { .. } => None,
        }
    }
}

pub struct BankIdFlows {
    pub(super) store: Arc<dyn Storage>,
    pub(super) bankid: Arc<dyn BankId>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) random: Arc<dyn Random>,
    pub(super) key: DataKey,
    pub(super) auditor: Auditor,
    pub(super) notifier: Option<Arc<dyn crate::identity::ChangeNotifier>>,
    pub(super) frames: super::FrameCache,
    pub(super) policy: super::Policy,
    pub(super) leaving: super::cancel::Leaving,
}

/// What an order is for.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    pub purpose: FlowPurpose,
    /// The user it is about (enrol, verify, a reset step for a known user).
    pub user: Option<FlowUser<'a>>,
    /// Only this person's BankID may complete it.
    pub required: Option<&'a PersonalNumber>,
    /// The flow it belongs to (a password reset's id).
    pub context: Option<&'a str>,
}

/// Who asked, for a flow that is about a known user.
#[derive(Debug, Clone)]
pub struct FlowUser<'a> {
    pub user_id: &'a str,
    pub account_name: &'a str,
    /// The account's `pwdLastSet` as the user's own session read it (None for anyone else).
    pub password_set: Option<&'a str>,
}

impl FlowUser<'_> {
    /// The key a logged-in user's own budgets (their texts, wrong codes and BankID orders) are
    /// counted under: per password, so that whoever had an old one cannot use them up for the
    /// owner who changed it. Everyone else's: the user.
    pub fn budget_key(&self) -> String {
        match self.password_set {
            Some(set) => format!("{}/{set}", self.user_id),
            None => self.user_id.to_string(),
        }
    }
}

pub(super) const BINDING: &str = "bankid-flow";

impl BankIdFlows {
    pub fn new(
        store: Arc<dyn Storage>,
        bankid: Arc<dyn BankId>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        key: DataKey,
        auditor: Auditor,
    ) -> Self {
        Self {
            store,
            bankid,
            clock,
            random,
            key,
            auditor,
            notifier: None,
            frames: super::FrameCache::new(1_000_000),
            policy: super::Policy::default(),
            leaving: super::cancel::Leaving::default(),
        }
    }

    pub fn with_policy(mut self, policy: super::Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Keep up to `max_bytes` of drawn QR frames.
    pub fn with_frame_cache(mut self, max_bytes: u64) -> Self {
        self.frames = super::FrameCache::new(max_bytes);
        self
    }

    /// Tell the user when a BankID is enrolled or replaced.
    pub fn with_notifier(mut self, notifier: Arc<dyn crate::identity::ChangeNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub fn key(&self) -> &DataKey {
        &self.key
    }

    pub fn today(&self) -> time::Date {
        OffsetDateTime::from_unix_timestamp(self.clock.now())
            .map(|t| t.date())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH.date())
    }

    /// Starts an order. `binding` is the browser's secret (its session or CSRF cookie).
    pub async fn start(
        &self,
        start: Start<'_>,
        binding: &str,
        visible_text: String,
        meta: &RequestMeta,
    ) -> Result<Flow, FlowError> {
        let Start { purpose, user, required, context } = start;
        let admitted = self.admit_order(binding, purpose, user.as_ref(), meta).await?;
        let id = self.random.token();
        let back = self.return_url(&id, purpose);
        let order = AuthOrder {
            return_url: back.as_ref().map(|(url, _)| url.clone()),
            end_user_ip: meta.source_ip.clone(),
            personal_number: required.map(|p| p.digits().to_string()),
            user_visible_data: visible_text,
            web: Some(super::wire::WebDevice {
                // A keyed hash of the browser binding: stable for the browser, useless as a cookie.
                device_identifier: self.key.lookup_hash(&format!("bankid-device\0{binding}")),
                referring_domain: self.policy.referring_domain.clone(),
                user_agent: meta.user_agent.chars().take(256).collect::<String>(),
            })
            .filter(|w| !w.user_agent.is_empty()),
        };
        let mut event = AuditEvent::new(EventKind::BankIdOrder, Outcome::Success);
        if let Some(u) = &user {
            event = event.username(u.account_name).user_id(u.user_id);
        }
        let order_start = match self.bankid.auth(&order).await {
            Ok(order_start) => order_start,
            Err(e) => {
                crate::monitoring::bankid_order("start_failed");
                self.release_order(admitted).await?;
                let event = AuditEvent { outcome: Outcome::Failure, ..event }
                    .detail(Detail::new("order_failed").purpose(purpose.id()).arg("reason_key", super::error_key(&e)));
                self.auditor.record(meta, event).await?;
                return Err(FlowError::BankId(e));
            }
        };
        crate::monitoring::bankid_order("started");
        let mut record =
            self.new_record(purpose, binding, user.as_ref().map(|u| u.user_id), required, order_start.order_ref);
        record.id = id;
        record.return_nonce_hash = back.map(|(_, nonce_hash)| nonce_hash);
        record.start_address = Some(crate::throttle::address_key(&meta.source_ip));
        record.auto_start_token = order_start.auto_start_token;
        record.qr_start_token = order_start.qr_start_token;
        record.qr_start_secret = order_start.qr_start_secret;
        record.context = context.map(str::to_string);
        self.store.insert_bankid_flow(&record).await?;
        let id = record.id;
        let detail = match required {
            Some(_) => Detail::new("order_required").purpose(purpose.id()),
            None => Detail::new("order").purpose(purpose.id()),
        };
        self.auditor.record(meta, event.detail(detail)).await?;
        Ok(Flow { id })
    }

    /// A pending flow for a started order (QR mode; the caller fills in what else it has).
    pub(super) fn new_record(
        &self,
        purpose: FlowPurpose,
        binding: &str,
        user_id: Option<&str>,
        required: Option<&PersonalNumber>,
        order_ref: String,
    ) -> BankIdFlowRecord {
        BankIdFlowRecord {
            id: self.random.token(),
            purpose: purpose.id().into(),
            binding_hash: binding_hash(BINDING, binding),
            user_id: user_id.map(str::to_string),
            required_pn_hash: required.map(|p| self.key.lookup_hash(p.digits())),
            order_ref,
            auto_start_token: String::new(),
            qr_start_token: String::new(),
            qr_start_secret: String::new(),
            mode: "qr".into(),
            state: "pending".into(),
            hint_code: None,
            started_at: self.clock.now(),
            last_collect_at: None,
            finished_at: None,
            result_user_id: None,
            context: None,
            return_nonce_hash: None,
            returned_at: None,
            start_address: None,
        }
    }

    /// The flow, if this browser started it.
    pub(super) async fn load(&self, id: &str, binding: &str) -> Result<Option<BankIdFlowRecord>, StorageError> {
        let Some(rec) = self.store.bankid_flow(id).await? else {
            return Ok(None);
        };
        let ours = is_bound(&rec.binding_hash, BINDING, binding);
        Ok(ours.then_some(rec))
    }

    /// What a flow is for and whom, read without collecting (so that the caller can check who
    /// asks before an order completes): None unless this browser started it.
    pub async fn about(
        &self,
        id: &str,
        binding: &str,
    ) -> Result<Option<(FlowPurpose, Option<String>, bool)>, StorageError> {
        let Some(rec) = self.load(id, binding).await? else { return Ok(None) };
        Ok(Some((FlowPurpose::parse(&rec.purpose), rec.user_id, rec.state == "pending")))
    }

    /// Where the flow stands, collecting from BankID when it is time to. `keep_session`: the id
    /// hash of the asking session, which goes on when the order completes an enrolment or a
    /// replacement (every other session of the user ends with it).
    pub async fn poll(
        &self,
        id: &str,
        binding: &str,
        keep_session: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Option<FlowView>, FlowError> {
        let Some(mut rec) = self.load(id, binding).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        // Between collects (every COLLECT_INTERVAL), a poll is one read of the flow. A collect is
        // claimed in the database first, so that however many browsers, tabs or instances poll
        // the order, BankID (or the broker) is asked at most once per interval.
        let due = rec.last_collect_at.is_none_or(|at| now - at >= COLLECT_INTERVAL);
        let expired = now - rec.started_at > LIFETIME;
        let claimed = rec.state == "pending"
            && !expired
            && due
            && self.store.claim_bankid_collect(&rec.id, now, now - COLLECT_INTERVAL).await?;
        if rec.state == "pending" && (claimed || expired) {
            if expired {
                let _ = self.bankid.cancel(&rec.order_ref).await;
                self.fail(&rec, "expiredTransaction", meta).await?;
            } else {
                match self.bankid.collect(&rec.order_ref).await {
                    Ok(Collect::Pending(hint)) => self.store.note_bankid_pending(&rec.id, &hint, now).await?,
                    Ok(Collect::Failed(hint)) => self.fail(&rec, &hint, meta).await?,
                    Ok(Collect::Complete(user)) => self.complete(&rec, user, keep_session, meta).await?,
                    Err(BankIdError::NotFound) => self.fail(&rec, "notFound", meta).await?,
                    // Passing trouble: keep the order, show RFA5, try again at the next poll.
                    Err(e) => {
                        tracing::warn!(error = %e, flow = %rec.id, "BankID collect failed");
                        self.store.note_bankid_pending(&rec.id, "rfa5", now).await?;
                    }
                }
            }
            rec = self.store.bankid_flow(id).await?.unwrap_or(rec);
        }
        if rec.state != "pending" {
            self.frames.forget(id);
        }
        Ok(Some(self.view(&rec)))
    }

    fn view(&self, rec: &BankIdFlowRecord) -> FlowView {
        let mode = if rec.mode == "autostart" { StartMode::Autostart } else { StartMode::Qr };
        let hint = rec.hint_code.as_deref().unwrap_or("outstandingTransaction");
        let (state, key) = match rec.state.as_str() {
            "pending" if hint == "rfa5" => (FlowState::Pending, "bankid.rfa5"),
            "pending" => (FlowState::Pending, message_key(true, hint, mode)),
            "complete" | "consumed" if super::same_device::awaits_return(rec) => {
                super::same_device::awaiting(rec, self.clock.now())
            }
            "complete" | "consumed" => (FlowState::Complete, done_key(FlowPurpose::parse(&rec.purpose))),
            "cancelled" => (FlowState::Cancelled, "bankid.rfa3"),
            _ => (FlowState::Failed, failure_key(hint, FlowPurpose::parse(&rec.purpose))),
        };
        let user_id = match FlowPurpose::parse(&rec.purpose) {
            FlowPurpose::Login | FlowPurpose::Reset => rec.result_user_id.clone(),
            _ => rec.user_id.clone(),
        };
        FlowView {
            id: rec.id.clone(),
            purpose: FlowPurpose::parse(&rec.purpose),
            qr: state == FlowState::Pending && mode == StartMode::Qr,
            state,
            message_key: key,
            auto_start_token: rec.auto_start_token.clone(),
            user_id,
            context: rec.context.clone(),
            finished_at: rec.finished_at,
            returning: matches!(rec.state.as_str(), "complete") && super::same_device::awaits_return(rec),
        }
    }

    async fn fail(&self, rec: &BankIdFlowRecord, hint: &str, meta: &RequestMeta) -> Result<(), StorageError> {
        if self.store.finish_bankid_flow(&rec.id, "failed", Some(hint), None, self.clock.now()).await? {
            crate::monitoring::bankid_order(hint);
            // A BankID that does not prove the reset's user counts as a failed verification there.
            if let (true, Some(reset)) = (hint == "notVerified", rec.context.as_deref()) {
                self.store.reset_failure(reset).await?;
            }
            let event = AuditEvent::new(EventKind::BankIdResult, Outcome::Failure)
                .detail(Detail::hint(&rec.purpose, hint))
                .user_id_if(rec.user_id.as_deref());
            self.auditor.record(meta, event).await?;
        }
        Ok(())
    }

    async fn complete(
        &self,
        rec: &BankIdFlowRecord,
        user: CompletedUser,
        keep_session: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), StorageError> {
        let Ok(pn) = PersonalNumber::parse(&user.personal_number, self.today()) else {
            tracing::error!(flow = %rec.id, "BankID completed with a personal number that does not parse");
            return self.fail(rec, "invalidPersonalNumber", meta).await;
        };
        let hash = self.key.lookup_hash(pn.digits());
        if rec.required_pn_hash.as_ref().is_some_and(|required| *required != hash) {
            return self.fail(rec, "mismatch", meta).await;
        }
        if let Some(why) = self.doubtful(rec, &user, meta).await? {
            return self.fail(rec, why, meta).await;
        }
        self.vouch_by_address(rec, user.device_ip.as_deref(), meta).await?;
        let now = self.clock.now();
        match FlowPurpose::parse(&rec.purpose) {
            purpose @ (FlowPurpose::Enrol | FlowPurpose::Replace) => {
                let Some(user_id) = rec.user_id.as_deref() else {
                    return self.fail(rec, "noUser", meta).await;
                };
                let (mode, change, refused) = match purpose {
                    FlowPurpose::Enrol => (EnrolMode::Add, Change::Add(ServiceKind::BankId), "alreadyEnrolled"),
                    _ => (EnrolMode::Replace, Change::Replace(ServiceKind::BankId), "nothingToReplace"),
                };
                let record = BankIdEnrolmentRecord {
                    user_id: user_id.to_string(),
                    pn_encrypted: self.key.encrypt(pn.digits(), self.random.as_ref()),
                    pn_hash: hash,
                    pn_masked: pn.masked(),
                    name: user.name.clone(),
                    enrolled_at: now,
                };
                // The flow's completion, the enrolment and the end of the user's other sessions are
                // one transaction; the storage refuses a second BankID (or a replacement of none):
                // never a silent overwrite.
                match self.store.complete_bankid_enrolment(&rec.id, &record, mode, now, keep_session).await? {
                    None => return Ok(()),
                    Some(EnrolWrite::Refused) => return self.fail(rec, refused, meta).await,
                    // Ended by the owner while this order was out: it changes nothing.
                    Some(EnrolWrite::SessionEnded) => return self.fail(rec, "sessionEnded", meta).await,
                    Some(EnrolWrite::Done) => crate::monitoring::bankid_order("complete"),
                }
                let detail = Detail::new("enrolled")
                    .service("bankid")
                    .arg("change_key", format!("audit.change.{}", change.id()))
                    .arg("what", pn.masked());
                let event = AuditEvent::new(EventKind::Enrol, Outcome::Success).user_id(user_id).detail(detail);
                let tell = crate::enrolment::telling(&self.notifier, user_id, change, None, meta);
                self.auditor.made_then(meta, event, tell).await;
            }
            FlowPurpose::Verify | FlowPurpose::Caller => {
                let Some(user_id) = rec.user_id.as_deref() else {
                    return self.fail(rec, "noUser", meta).await;
                };
                let enrolled = self.store.bankid_enrolment(user_id).await?;
                if enrolled.is_none_or(|e| e.pn_hash != hash) {
                    return self.fail(rec, "mismatch", meta).await;
                }
                // A caller's verification reads as such, not as the user's own step-up.
                self.verified(rec, user_id, None, Detail::new("verified").purpose(&rec.purpose), meta).await?;
            }
            FlowPurpose::ResetStep => {
                // Unknown user, no BankID enrolled, or another person's: all read the same.
                let proved = match rec.user_id.as_deref() {
                    Some(id) => self.store.bankid_enrolment(id).await?.filter(|e| e.pn_hash == hash).map(|_| id),
                    None => None,
                };
                let Some(user_id) = proved else {
                    return self.fail(rec, "notVerified", meta).await;
                };
                self.verified(rec, user_id, None, Detail::new("verified").purpose("reset"), meta).await?;
            }
            FlowPurpose::Login | FlowPurpose::Reset => {
                let accounts = self.store.bankid_enrolments_by_hash(&hash).await?;
                let [account] = accounts.as_slice() else {
                    let why = if accounts.is_empty() { "notEnrolled" } else { "severalAccounts" };
                    return self.fail(rec, why, meta).await;
                };
                let detail = Detail::new("identified").purpose(&rec.purpose);
                self.verified(rec, &account.user_id, Some(&account.user_id), detail, meta).await?;
            }
        }
        Ok(())
    }

    /// The order proved `user_id` (`found`: the account it identified, for a login or a reset):
    /// finished once, the service counted as used, and audited.
    async fn verified(
        &self,
        rec: &BankIdFlowRecord,
        user_id: &str,
        found: Option<&str>,
        detail: Detail,
        meta: &RequestMeta,
    ) -> Result<(), StorageError> {
        let now = self.clock.now();
        if self.store.finish_bankid_flow(&rec.id, "complete", Some("complete"), found, now).await? {
            crate::monitoring::bankid_order("complete");
            self.store.touch_enrolment(user_id, "bankid", now).await?;
            let event = AuditEvent::new(EventKind::BankIdResult, Outcome::Success).user_id(user_id).detail(detail);
            self.auditor.record(meta, event).await?;
        }
        Ok(())
    }

    /// BankID's risk indication and, on the same device, the app's address (audited either way):
    /// the reason to refuse the order, if any.
    async fn doubtful(
        &self,
        rec: &BankIdFlowRecord,
        user: &CompletedUser,
        meta: &RequestMeta,
    ) -> Result<Option<&'static str>, StorageError> {
        let (refusal, notes) = self.policy.assess(rec.mode == "autostart", user, &meta.source_ip);
        let outcome = if refusal.is_some() { Outcome::Blocked } else { Outcome::Success };
        let detail = notes.detail(&rec.purpose);
        let event = AuditEvent::new(EventKind::BankIdResult, outcome).detail(detail).user_id_if(rec.user_id.as_deref());
        self.auditor.record(meta, event).await?;
        Ok(refusal)
    }

    /// Whether BankID answers us: a collect of an order that does not exist must be refused as
    /// unknown or invalid (which also proves our client certificate or credentials are accepted).
    pub async fn reachable(&self) -> Result<(), BankIdError> {
        match self.bankid.collect("00000000-0000-4000-8000-000000000000").await {
            Ok(_) | Err(BankIdError::NotFound | BankIdError::InvalidParameters(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
