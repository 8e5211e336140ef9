//! The mobile-code challenge as a server-side state machine.
//!
//! pending ──right code──▶ verified          (enrol: the number is stored and enrolled)
//!    ├──── wrong code × max_attempts ──▶ failed
//!    └──── lifetime passed ──▶ expired
//!
//! One live code per challenge: a resend (after the cooldown) replaces it. A challenge answers only
//! to the user and the browser that asked for it. Every send counts against limits per user, per
//! address, per destination number and per number range, against SMS pumping.

use std::sync::Arc;

use super::{
    ChallengeState, CodeHasher, OneTimeCode, PhoneNumber, Sender, SmsGateway, SmsLimits, SmsOutcome, SmsPurpose,
    SmsStart, SmsView, with_retries,
};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Random, Timestamp};
use crate::enrolment::{Change, ServiceKind};
use crate::identity::DataKey;
use crate::identity::bankid::FlowUser;
use crate::session::{binding_hash, is_bound};
use crate::storage::{EnrolMode, EnrolWrite, SmsChallengeRecord, SmsEnrolmentRecord, Storage, StorageError};
use crate::throttle::{Reserve, Throttle};

pub struct SmsFlows {
    pub(super) store: Arc<dyn Storage>,
    gateway: Arc<dyn SmsGateway>,
    pub(super) throttle: Throttle,
    hasher: CodeHasher,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    key: DataKey,
    pub(super) auditor: Auditor,
    limits: SmsLimits,
    notifier: Option<Arc<dyn crate::identity::ChangeNotifier>>,
    /// Where anonymous (reset) sends go, to be sent after the answer.
    queue: Option<super::SmsQueue>,
}

const BINDING: &str = "sms-challenge";

impl SmsFlows {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Storage>,
        gateway: Arc<dyn SmsGateway>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        key: DataKey,
        auditor: Auditor,
        limits: SmsLimits,
    ) -> Self {
        Self {
            throttle: Throttle::new(store.clone(), clock.clone()),
            hasher: CodeHasher::new(random.clone(), 4),
            store,
            gateway,
            clock,
            random,
            key,
            auditor,
            limits,
            notifier: None,
            queue: None,
        }
    }

    /// Sends reset flows' codes after answering (see [`super::SmsQueue`]); starts the worker.
    pub fn with_queue(mut self, capacity: usize) -> Self {
        self.queue = Some(super::SmsQueue::start(self.gateway.clone(), self.auditor.clone(), capacity));
        self
    }

    /// Tell the user when a mobile number is enrolled or replaced.
    pub fn with_notifier(mut self, notifier: Arc<dyn crate::identity::ChangeNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The gateway, for texts that are not codes (an alert that the enrolment changed).
    pub fn gateway(&self) -> Arc<dyn SmsGateway> {
        self.gateway.clone()
    }

    pub fn limits(&self) -> &SmsLimits {
        &self.limits
    }

    pub(super) fn event(kind: EventKind, outcome: Outcome, user: &FlowUser<'_>, detail: Detail) -> AuditEvent {
        AuditEvent::new(kind, outcome).username(user.account_name).user_id(user.user_id).detail(detail)
    }

    /// Checks every budget of `sender`, then counts this send against all of them.
    async fn spend(
        &self,
        sender: Sender<'_>,
        user: &FlowUser<'_>,
        number: Option<&PhoneNumber>,
        meta: &RequestMeta,
    ) -> Result<Option<i64>, StorageError> {
        // A code that would not be checked (the sender's wrong codes for the day are used up) is
        // not sent either. (Anonymous sends become decoys instead: see `budget::decoy_for`.)
        if !matches!(sender, Sender::Anonymous { .. }) {
            let (scope, key, limit) = super::budget::wrong_codes_known(sender, &user.budget_key());
            if let Some(wait) = self.throttle.blocked_for(scope, &key, limit).await? {
                let detail = Detail::new("limit")
                    .arg("scope_key", format!("audit.scope.{scope}"))
                    .arg("number", number.map(|n| n.masked()).unwrap_or_default());
                self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Blocked, user, detail)).await?;
                return Ok(Some((wait + 59) / 60));
            }
        }
        let hash = number.map(|n| self.key.lookup_hash(n.e164()));
        let target = hash.as_deref().zip(number);
        let budgets = sender.budgets(&self.limits, &user.budget_key(), target, &meta.source_ip);
        // Each budget is counted before the send and decided in the same step, so a burst of
        // parallel sends can never all slip under a limit; one that is reached gives back the
        // others' counts.
        let mut counted = Vec::new();
        for (scope, key, limit) in &budgets {
            match self.throttle.reserve(scope, key, *limit).await? {
                Reserve::Granted(attempt) => counted.push(attempt),
                Reserve::Blocked { wait } => {
                    for attempt in counted {
                        self.throttle.release(attempt).await?;
                    }
                    let to = number.map(|n| n.masked()).unwrap_or_default();
                    let detail =
                        Detail::new("limit").arg("scope_key", format!("audit.scope.{scope}")).arg("number", to);
                    self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Blocked, user, detail)).await?;
                    return Ok(Some((wait + 59) / 60));
                }
            }
        }
        Ok(None)
    }

    /// Sends a code; the text has `{code}` where the code goes.
    async fn send(&self, number: &PhoneNumber, text: &str) -> Result<(OneTimeCode, String), super::GatewayError> {
        let code = OneTimeCode::generate(self.random.as_ref());
        with_retries(self.gateway.as_ref(), number, &text.replace("{code}", code.as_str())).await?;
        let hash = self.hasher.hash(&code).await;
        Ok((code, hash))
    }

    /// Sends a code to `number` for `user`, bound to this browser, counted against `sender`'s
    /// budgets. A reset's code is queued (sent after the answer).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        &self,
        purpose: SmsPurpose,
        binding: &str,
        user: FlowUser<'_>,
        number: &PhoneNumber,
        text: &str,
        meta: &RequestMeta,
        sender: Sender<'_>,
    ) -> Result<SmsStart, StorageError> {
        // A number the user picks (an enrolled one has passed here, or was enrolled before the
        // list changed: it still gets its texts).
        let picked = matches!(purpose, SmsPurpose::Enrol | SmsPurpose::Replace);
        if picked && !self.limits.countries.iter().any(|c| c == number.country()) {
            let detail = Detail::new("country_refused").arg("number", number.masked());
            self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Blocked, &user, detail)).await?;
            return Ok(SmsStart::CountryRefused);
        }
        if let Some(minutes) = self.spend(sender, &user, Some(number), meta).await? {
            return Ok(SmsStart::Limited { minutes });
        }
        if let Sender::Anonymous { .. } = sender
            && let Some(scope) = super::budget::decoy_for(&self.throttle, &self.limits, user.user_id).await?
        {
            let detail = Detail::new("limit_decoy")
                .arg("scope_key", format!("audit.scope.{scope}"))
                .arg("number", number.masked());
            self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Blocked, &user, detail)).await?;
            let hash = self.hasher.hash(&OneTimeCode::generate(self.random.as_ref())).await;
            return self.challenge(purpose, binding, &user, None, hash, false, meta).await;
        }
        if let (true, Some(queue)) = (sender.queued(), &self.queue) {
            let code = OneTimeCode::generate(self.random.as_ref());
            let hash = self.hasher.hash(&code).await;
            let job = super::Queued {
                to: number.clone(),
                text: text.replace("{code}", code.as_str()),
                user_id: user.user_id.to_string(),
                what: purpose.id().to_string(),
                meta: meta.clone(),
            };
            if !queue.push(job) {
                // Answered like any send (a decoy answers "sent" too); the user can ask again.
                tracing::error!("the SMS queue is full; the code is not sent");
                let detail = Detail::new("queue_full").purpose(purpose.id()).arg("number", number.masked());
                self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Failure, &user, detail)).await?;
                return self.challenge(purpose, binding, &user, None, hash, false, meta).await;
            }
            return self.challenge(purpose, binding, &user, Some(number), hash, true, meta).await;
        }
        let hash = match self.send(number, text).await {
            Ok((_, hash)) => hash,
            Err(e) => {
                tracing::warn!(error = %e, to = %number, "SMS not sent");
                let detail = Detail::new("gateway_failed").purpose(purpose.id()).arg("number", number.masked());
                self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Failure, &user, detail)).await?;
                return Ok(SmsStart::GatewayFailed);
            }
        };
        self.challenge(purpose, binding, &user, Some(number), hash, false, meta).await
    }

    /// Stores a pending challenge (for `number`, or a decoy without one) and audits the send
    /// (`queued`: the worker sends it, and audits the gateway's answer).
    #[allow(clippy::too_many_arguments)]
    async fn challenge(
        &self,
        purpose: SmsPurpose,
        binding: &str,
        user: &FlowUser<'_>,
        number: Option<&PhoneNumber>,
        code_hash: String,
        queued: bool,
        meta: &RequestMeta,
    ) -> Result<SmsStart, StorageError> {
        let id = self.random.token();
        let encrypted = number.map(|n| self.key.encrypt(n.e164(), self.random.as_ref()));
        self.store
            .insert_sms_challenge(&SmsChallengeRecord {
                id: id.clone(),
                purpose: if number.is_some() { purpose.id() } else { "decoy" }.into(),
                binding_hash: binding_hash(BINDING, binding),
                user_id: user.user_id.into(),
                number_encrypted: encrypted.unwrap_or_default(),
                number_hash: number.map(|n| self.key.lookup_hash(n.e164())).unwrap_or_default(),
                number_masked: number.map(|n| n.masked()).unwrap_or_default(),
                code_hash,
                attempts: 0,
                sent_at: self.clock.now(),
                state: "pending".into(),
                finished_at: None,
            })
            .await?;
        let (outcome, detail) = match number {
            Some(n) if queued => {
                (Outcome::Success, Detail::new("code_queued").purpose(purpose.id()).arg("number", n.masked()))
            }
            Some(n) => (Outcome::Success, Detail::new("code_sent").purpose(purpose.id()).arg("number", n.masked())),
            None => (Outcome::Failure, Detail::new("no_number")),
        };
        self.auditor.record(meta, Self::event(EventKind::SmsSend, outcome, user, detail)).await?;
        Ok(SmsStart::Sent { id })
    }

    /// A challenge for someone who has no number to send to (a reset for a name that matches nobody,
    /// or a user without a mobile code): it costs what a real one costs and counts against the same
    /// budgets, but sends nothing and can never be verified. The pages cannot tell it apart.
    pub async fn start_decoy(
        &self,
        binding: &str,
        user_key: &str,
        sender: Sender<'_>,
        meta: &RequestMeta,
    ) -> Result<SmsStart, StorageError> {
        let user = FlowUser { user_id: user_key, account_name: "", password_set: None };
        if let Some(minutes) = self.spend(sender, &user, None, meta).await? {
            return Ok(SmsStart::Limited { minutes });
        }
        let hash = self.hasher.hash(&OneTimeCode::generate(self.random.as_ref())).await;
        self.challenge(SmsPurpose::Verify, binding, &user, None, hash, false, meta).await
    }

    /// Sends a code to the user's enrolled number (for verification in later flows).
    pub async fn start_verify(
        &self,
        binding: &str,
        user: FlowUser<'_>,
        text: &str,
        meta: &RequestMeta,
        sender: Sender<'_>,
    ) -> Result<SmsStart, StorageError> {
        let Some(enrolled) = self.store.sms_enrolment(user.user_id).await? else { return Ok(SmsStart::NotEnrolled) };
        let number = PhoneNumber::from_stored(&self.key, &enrolled.number_encrypted);
        let Some(number) = number else {
            tracing::error!(user = user.user_id, "the enrolled number cannot be read back");
            return Ok(SmsStart::NotEnrolled);
        };
        let purpose = if sender.queued() { SmsPurpose::Reset } else { SmsPurpose::Verify };
        self.start(purpose, binding, user, &number, text, meta, sender).await
    }

    /// The challenge, if this user in this browser asked for it, for a reset flow (`for_reset`)
    /// or not, as it was made.
    pub(super) async fn load(
        &self,
        id: &str,
        binding: &str,
        user_id: &str,
        for_reset: bool,
    ) -> Result<Option<SmsChallengeRecord>, StorageError> {
        let Some(rec) = self.store.sms_challenge(id).await? else { return Ok(None) };
        let ours = is_bound(&rec.binding_hash, BINDING, binding);
        let same_kind = SmsPurpose::of_reset(&rec.purpose) == for_reset;
        Ok((ours && same_kind && rec.user_id == user_id).then_some(rec))
    }

    fn expired(&self, rec: &SmsChallengeRecord, now: Timestamp) -> bool {
        now - rec.sent_at > self.limits.code_lifetime
    }

    /// The challenge as its page shows it; `for_reset`: asked by a reset flow's page.
    pub async fn view(
        &self,
        id: &str,
        binding: &str,
        user_id: &str,
        for_reset: bool,
    ) -> Result<Option<SmsView>, StorageError> {
        let Some(rec) = self.load(id, binding, user_id, for_reset).await? else { return Ok(None) };
        let now = self.clock.now();
        let state = match ChallengeState::from_stored(&rec.state) {
            ChallengeState::Pending if self.expired(&rec, now) => ChallengeState::Expired,
            state => state,
        };
        Ok(Some(SmsView {
            id: rec.id,
            purpose: SmsPurpose::parse(&rec.purpose),
            decoy: rec.purpose == "decoy",
            masked: rec.number_masked,
            state,
            resend_in: (rec.sent_at + self.limits.resend_cooldown - now).max(0),
            finished_at: rec.finished_at,
        }))
    }

    /// `refuse`: the code is wrong whatever it is (a decoy's, or a guess over the limit);
    /// `for_reset`: checked in a reset flow.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn check_code(
        &self,
        id: &str,
        binding: &str,
        user: FlowUser<'_>,
        typed: &str,
        keep_session: Option<&str>,
        (refuse, for_reset): (bool, bool),
        meta: &RequestMeta,
    ) -> Result<Option<SmsOutcome>, StorageError> {
        let Some(rec) = self.load(id, binding, user.user_id, for_reset).await? else { return Ok(None) };
        if super::code::as_typed(typed).is_none() {
            // A slip of the keyboard, whatever the challenge: no try used, nothing checked.
            return Ok(Some(SmsOutcome::Malformed));
        }
        let now = self.clock.now();
        if rec.state != "pending" {
            return Ok(Some(match ChallengeState::from_stored(&rec.state) {
                ChallengeState::Verified => SmsOutcome::AlreadyVerified,
                ChallengeState::Refused => SmsOutcome::Conflict,
                _ => SmsOutcome::TooManyAttempts,
            }));
        }
        let audit =
            |outcome, detail: Detail| Self::event(EventKind::SmsCheck, outcome, &user, detail.purpose(&rec.purpose));
        if self.expired(&rec, now) {
            self.store.finish_sms_challenge(&rec.id, "expired", now).await?;
            self.auditor.record(meta, audit(Outcome::Failure, Detail::new("code_expired"))).await?;
            return Ok(Some(SmsOutcome::Expired));
        }
        if !self.to_enrolled_number(&rec).await? {
            self.store.finish_sms_challenge(&rec.id, "expired", now).await?;
            self.auditor.record(meta, audit(Outcome::Failure, Detail::new("number_replaced"))).await?;
            return Ok(Some(SmsOutcome::Expired));
        }
        // Claim a try before the code is checked (claim, then act): parallel guesses each need a
        // try of their own, so no more than `max_attempts` are ever checked.
        let Some(attempts) = self.store.claim_sms_attempt(&rec.id, self.limits.max_attempts).await? else {
            return Ok(Some(SmsOutcome::TooManyAttempts));
        };
        if !self.hasher.verify(typed, &rec.code_hash).await || rec.purpose == "decoy" || refuse {
            if attempts >= self.limits.max_attempts {
                self.store.finish_sms_challenge(&rec.id, "failed", now).await?;
                self.auditor.record(meta, audit(Outcome::Failure, Detail::new("too_many_wrong"))).await?;
                return Ok(Some(SmsOutcome::LastWrong));
            }
            self.auditor.record(meta, audit(Outcome::Failure, Detail::new("wrong_code").arg("n", attempts))).await?;
            return Ok(Some(SmsOutcome::Wrong { attempts_left: self.limits.max_attempts - attempts }));
        }
        if !self.store.finish_sms_challenge(&rec.id, "verified", now).await? {
            return Ok(Some(SmsOutcome::AlreadyVerified));
        }
        let purpose = SmsPurpose::parse(&rec.purpose);
        if let SmsPurpose::Enrol | SmsPurpose::Replace = purpose {
            let (mode, change) = match purpose {
                SmsPurpose::Enrol => (EnrolMode::Add, Change::Add(ServiceKind::Sms)),
                _ => (EnrolMode::Replace, Change::Replace(ServiceKind::Sms)),
            };
            let before = self.store.sms_enrolment(&rec.user_id).await?;
            let record = SmsEnrolmentRecord {
                user_id: rec.user_id.clone(),
                number_encrypted: rec.number_encrypted.clone(),
                number_hash: rec.number_hash.clone(),
                number_masked: rec.number_masked.clone(),
                enrolled_at: now,
            };
            // The storage refuses a second number (or a replacement of none): never a silent
            // overwrite. The user's other sessions end in the same transaction.
            let why = match self.store.enrol_sms(&record, mode, keep_session).await? {
                EnrolWrite::Done => None,
                EnrolWrite::Refused => Some("number_refused"),
                // Ended by the owner while this code was being checked: it changes nothing.
                EnrolWrite::SessionEnded => Some("number_session_ended"),
            };
            if let Some(why) = why {
                self.store.refuse_sms_challenge(&rec.id).await?;
                let detail = Detail::new(why)
                    .arg("change_key", format!("audit.change.{}", change.id()))
                    .arg("number", &rec.number_masked);
                self.auditor.record(meta, audit(Outcome::Failure, detail)).await?;
                return Ok(Some(SmsOutcome::Conflict));
            }
            let event = AuditEvent::new(EventKind::Enrol, Outcome::Success)
                .username(user.account_name)
                .user_id(user.user_id)
                .detail(
                    Detail::new("enrolled")
                        .service("sms")
                        .arg("change_key", format!("audit.change.{}", change.id()))
                        .arg("what", &rec.number_masked),
                );
            // Made: its entry and the notice go out whatever becomes of the other, or of the request.
            let removed = before.filter(|_| mode == EnrolMode::Replace).map(|b| b.number_encrypted);
            let tell = crate::enrolment::telling(&self.notifier, &rec.user_id, change, removed, meta);
            self.auditor.made_then(meta, event, tell).await;
        } else {
            self.store.touch_enrolment(&rec.user_id, "sms", now).await?;
        }
        self.auditor.record(meta, audit(Outcome::Success, Detail::new("verified"))).await?;
        Ok(Some(SmsOutcome::Verified))
    }

    /// Whether a verification's code went to the number enrolled now (other challenges: true). A
    /// code sent to a number replaced since proves nothing: the replaced number may be the stolen
    /// phone's.
    async fn to_enrolled_number(&self, rec: &SmsChallengeRecord) -> Result<bool, StorageError> {
        // Only a verification's (a decoy has no number, and must answer as a real challenge does).
        if rec.purpose == "decoy" || !matches!(SmsPurpose::parse(&rec.purpose), SmsPurpose::Verify | SmsPurpose::Reset)
        {
            return Ok(true);
        }
        Ok(self.store.sms_enrolment(&rec.user_id).await?.is_some_and(|e| e.number_hash == rec.number_hash))
    }

    /// Sends a new code in place of the old one, once the cooldown has passed.
    pub async fn resend(
        &self,
        id: &str,
        binding: &str,
        user: FlowUser<'_>,
        text: &str,
        meta: &RequestMeta,
    ) -> Result<Option<SmsStart>, StorageError> {
        // A reset's codes are sent again through its flow.
        let Some(rec) = self.load(id, binding, user.user_id, false).await? else { return Ok(None) };
        let now = self.clock.now();
        let wait = rec.sent_at + self.limits.resend_cooldown - now;
        if wait > 0 {
            return Ok(Some(SmsStart::Cooldown { seconds: wait }));
        }
        if rec.purpose == "decoy" {
            // Decoys belong to reset flows, which ask for a new code through the flow.
            return Ok(None);
        }
        if !self.to_enrolled_number(&rec).await? {
            // The number was replaced since: a new code goes to the one enrolled now.
            self.store.finish_sms_challenge(&rec.id, "expired", now).await?;
            return self.start_verify(binding, user, text, meta, Sender::User).await.map(Some);
        }
        let number = PhoneNumber::from_stored(&self.key, &rec.number_encrypted);
        let Some(number) = number else { return Ok(Some(SmsStart::GatewayFailed)) };
        if rec.state != "pending" || self.expired(&rec, now) {
            // A finished challenge cannot be revived: start again.
            let purpose = SmsPurpose::parse(&rec.purpose);
            return self.start(purpose, binding, user, &number, text, meta, Sender::User).await.map(Some);
        }
        if let Some(minutes) = self.spend(Sender::User, &user, Some(&number), meta).await? {
            return Ok(Some(SmsStart::Limited { minutes }));
        }
        match self.send(&number, text).await {
            Ok((_, hash)) => {
                self.store.sms_replace_code(&rec.id, &hash, now).await?;
                let detail = Detail::new("code_resent").purpose(&rec.purpose).arg("number", number.masked());
                self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Success, &user, detail)).await?;
                Ok(Some(SmsStart::Sent { id: rec.id }))
            }
            Err(e) => {
                tracing::warn!(error = %e, to = %number, "SMS not sent");
                let detail = Detail::new("gateway_failed").purpose(&rec.purpose).arg("number", number.masked());
                self.auditor.record(meta, Self::event(EventKind::SmsSend, Outcome::Failure, &user, detail)).await?;
                Ok(Some(SmsStart::GatewayFailed))
            }
        }
    }
}
