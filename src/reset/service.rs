//! The reset service: the flow (see [`ResetState`]) kept server-side, with what it needs around it.
//!
//! Before the user has proved anything, nothing differs between a user who exists, one who does
//! not, and one who has not enrolled: a typed name that matches nobody still gets a flow, which
//! can never be verified. A flow answers only to the browser that started it, ends after a set
//! time, and is used once.

use std::sync::Arc;

use secrecy::SecretString;

use super::aftermath::Aftermath;
use super::assess::Assessor;
use super::outcome::{ResetOutcome, ResetStep, ResetView};
use super::policy::Rules;
use super::rules::NewPasswordRules;
use super::state::ResetState;
use super::write::Writer;
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Random, Timestamp};
use crate::config::ResetSettings;
use crate::directory::Privileged;
use crate::directory::{Directory, DirectoryError, DirectoryUser, Username};
use crate::enrolment::{Service, ServiceKind};
use crate::mail::Outbox;
use crate::session::{binding_hash, is_bound};
use crate::storage::{ResetFlowRecord, Storage, StorageError};
use crate::throttle::{Attempt, Limit, Reserve, Throttle};

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

pub struct ResetService {
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    auditor: Auditor,
    throttle: Throttle,
    /// The write at the end.
    writer: Writer,
    /// Where a flow stands.
    assessor: Assessor,
    netbios: String,
    settings: ResetSettings,
}

const BINDING: &str = "reset-flow";

impl ResetService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Storage>,
        directory: Arc<dyn Directory>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        auditor: Auditor,
        outbox: Outbox,
        services: Vec<Service>,
        reset_stars: u8,
        netbios: &str,
        rules: Arc<NewPasswordRules>,
        settings: ResetSettings,
    ) -> Self {
        let after = Aftermath {
            store: store.clone(),
            clock: clock.clone(),
            auditor: auditor.clone(),
            outbox,
            unlock_on_reset: settings.unlock_on_reset,
        };
        let throttle = Throttle::new(store.clone(), clock.clone());
        let writer = Writer {
            store: store.clone(),
            directory: directory.clone(),
            clock: clock.clone(),
            auditor: auditor.clone(),
            after,
            throttle: throttle.clone(),
            rules,
            settings: settings.clone(),
        };
        let assessor = Assessor {
            store: store.clone(),
            services,
            reset_stars,
            settings: settings.clone(),
            privileged: Privileged::new(directory.clone(), Vec::new()),
            cooldown: 0,
        };
        Self { throttle, writer, assessor, store, directory, clock, random, auditor, netbios: netbios.into(), settings }
    }

    /// Privileged accounts: members of `groups` (nested) and accounts with adminCount=1.
    pub fn with_protected_groups(mut self, groups: Vec<String>) -> Self {
        self.assessor.privileged = Privileged::new(self.directory.clone(), groups);
        self
    }

    /// A service enrolled or replaced less than `seconds` ago does not count toward a reset.
    pub fn with_cooldown(mut self, seconds: i64) -> Self {
        self.assessor.cooldown = seconds;
        self
    }

    pub fn settings(&self) -> &ResetSettings {
        &self.settings
    }

    async fn create(
        &self,
        binding: &str,
        typed: &str,
        user_id: Option<String>,
        verified: &str,
        pwd_last_set: Option<String>,
        begun: Timestamp,
    ) -> Result<String, StorageError> {
        let id = self.random.token();
        let now = self.clock.now();
        self.store
            .insert_reset_flow(&ResetFlowRecord {
                id: id.clone(),
                binding_hash: binding_hash(BINDING, binding),
                typed_name: typed.chars().take(256).collect(),
                user_id,
                verified: verified.into(),
                sms_challenge: None,
                failures: 0,
                state: if verified.is_empty() { ResetState::Identifying } else { ResetState::Verified }
                    .stored()
                    .0
                    .into(),
                created_at: begun,
                expires_at: now + self.settings.flow_minutes as i64 * 60,
                finished_at: None,
                outcome: None,
                pwd_last_set,
                written_maybe_at: None,
            })
            .await?;
        Ok(id)
    }

    /// The key a flow's mobile codes are bound and counted under: the user, or the tag of the
    /// name typed (the same for each way of typing one name; the text itself is never kept).
    pub fn code_key(&self, view: &ResetView) -> String {
        view.user_id.clone().unwrap_or_else(|| format!("name:{}", view.typed_name))
    }

    /// The tag of the name the flow was started with, whether or not it matches an account:
    /// what the budget per name typed counts under.
    pub fn typed_tag(&self, view: &ResetView) -> String {
        match view.user_id {
            Some(_) => self.auditor.tag(&view.typed_name),
            None => view.typed_name.clone(),
        }
    }

    /// What mobile codes' audit entries name: the account name typed, or the tag of a name
    /// that matches no account (as a flow keeps it).
    pub fn code_name(&self, view: &ResetView) -> String {
        view.typed_name.clone()
    }

    /// Starts a flow for a typed name. The same happens whether or not the name matches anyone.
    pub async fn start(&self, typed: &str, binding: &str, meta: &RequestMeta) -> Result<String, ResetError> {
        let name = Username::parse(typed, &self.netbios);
        let user = match &name {
            Ok(name) => self.directory.find_user(name).await?,
            Err(_) => None,
        };
        // The name as one name however it is written (`EXAMPLE\x`, `x`), so that its budgets are
        // counted alike whether or not it matches an account; one that matches none is kept as
        // its tag (it may be a password), as the login audits it.
        let said = name.as_ref().map(Username::key).unwrap_or_else(|_| typed.to_string());
        let kept = match &user {
            Some(_) => said.clone(),
            None => self.auditor.tag(&said),
        };
        let (user_id, password_set) = user.as_ref().map(|u| (u.id.clone(), u.password_set.clone())).unzip();
        let id = self.create(binding, &kept, user_id, "", password_set.flatten(), self.clock.now()).await?;
        let event = AuditEvent::new(EventKind::ResetStart, Outcome::Success);
        let event = match &user {
            Some(u) => event.about(u).detail(Detail::new("by_username")),
            // Its tag, never the text: it may be a password.
            None => event.typed(&said).detail(Detail::new("by_unknown_username")),
        };
        self.auditor.record(meta, event).await?;
        Ok(id)
    }

    /// Starts a flow for a user already identified by `service` (BankID found the account) at
    /// `proved_at`: the flow begins then, so that a service replaced between the proof and this
    /// start does not count in it.
    pub async fn start_identified(
        &self,
        user_id: &str,
        service: ServiceKind,
        proved_at: Timestamp,
        binding: &str,
        meta: &RequestMeta,
    ) -> Result<String, ResetError> {
        // BankID has been used up for this start: a directory that does not answer now leaves
        // the flow without the value to compare (the password step reads AD anyway).
        let password_set = match self.directory.find_user_by_id(user_id).await {
            Ok(user) => user.and_then(|u| u.password_set),
            Err(e) => {
                tracing::warn!(reference = %meta.request_id, error = %e, "reset start: pwdLastSet not read");
                None
            }
        };
        let begun = proved_at.min(self.clock.now());
        let id = self.create(binding, "", Some(user_id.into()), service.id(), password_set, begun).await?;
        let event = AuditEvent::new(EventKind::ResetStart, Outcome::Success)
            .user_id(user_id)
            .detail(Detail::new("by_service").service(service.id()));
        self.auditor.record(meta, event).await?;
        Ok(id)
    }

    async fn load(&self, id: &str, binding: &str) -> Result<Option<ResetFlowRecord>, StorageError> {
        let Some(rec) = self.store.reset_flow(id).await? else { return Ok(None) };
        let ours = is_bound(&rec.binding_hash, BINDING, binding);
        Ok(ours.then_some(rec))
    }

    /// Whether `id` is a flow another browser started (its address was opened elsewhere, e.g. a
    /// link mailed to oneself): the user is told to start again here instead of "not found".
    pub async fn started_elsewhere(&self, id: &str, binding: &str) -> Result<bool, StorageError> {
        Ok(self.store.reset_flow(id).await?.is_some_and(|rec| !is_bound(&rec.binding_hash, BINDING, binding)))
    }

    /// The flow, if this browser started it; an open flow past its time is ended here.
    pub async fn view(&self, id: &str, binding: &str, meta: &RequestMeta) -> Result<Option<ResetView>, StorageError> {
        let Some(rec) = self.load(id, binding).await? else { return Ok(None) };
        let stored = ResetState::from_stored(&rec.state, rec.outcome.as_deref());
        let now = self.clock.now();
        let state = stored.at(now, rec.expires_at, rec.failures, self.settings.max_failures);
        if state != stored {
            let (column, _) = state.stored();
            // Ended by time, or by failures counted elsewhere (a BankID that proved someone else).
            let why = match state {
                ResetState::Expired => Some("flow_expired"),
                ResetState::Failed => Some("flow_failed"),
                _ => None,
            };
            if let (true, Some(why)) = (self.store.end_reset_flow(&rec.id, column, now).await?, why) {
                let event = AuditEvent::new(EventKind::ResetStart, Outcome::Failure)
                    .detail(Detail::new(why))
                    .user_id_if(rec.user_id.as_deref());
                self.auditor.record(meta, event).await?;
            }
        }
        self.assessor.view_of(rec, state, now).await.map(Some)
    }

    /// Whether one more anonymous flow may start from this client's address (IPv6: its /64):
    /// None when it may (it is counted), else the minutes to wait. Covers resets by name or BankID
    /// and BankID logins.
    pub async fn admit_start(&self, meta: &RequestMeta) -> Result<Option<i64>, StorageError> {
        let limit = Limit { max_failures: self.settings.starts_per_address_per_hour, window_seconds: 3600 };
        let key = crate::throttle::address_key(&meta.source_ip);
        if let Reserve::Blocked { wait } = self.throttle.reserve("flow-start", &key, limit).await? {
            let event = AuditEvent::new(EventKind::ResetStart, Outcome::Blocked).detail(Detail::new("too_many_flows"));
            self.auditor.record(meta, event).await?;
            return Ok(Some((wait + 59) / 60));
        }
        Ok(None)
    }

    /// Claims the flow's one code send for `cooldown` seconds, before anything is sent, so that
    /// parallel presses of "send" send one text: Err(seconds to wait) when it is taken.
    pub async fn claim_code_send(&self, id: &str, cooldown: i64) -> Result<Result<Attempt, i64>, StorageError> {
        let limit = Limit { max_failures: 1, window_seconds: cooldown.max(1) };
        Ok(match self.throttle.reserve("reset-code-send", id, limit).await? {
            Reserve::Granted(attempt) => Ok(attempt),
            Reserve::Blocked { wait } => Err(wait),
        })
    }

    /// Gives the claim back when no code went (a limit, the gateway): the user may ask again.
    pub async fn release_code_send(&self, claim: Attempt) -> Result<(), StorageError> {
        self.throttle.release(claim).await
    }

    /// Whether a BankID step of the flow completed (the order itself runs in the BankID flows).
    pub async fn bankid_step_done(&self, id: &str) -> Result<bool, StorageError> {
        Ok(self.store.bankid_flow_for_context(id, "reset-step").await?.is_some())
    }

    /// Whether the user has a mobile number to send a code to.
    pub async fn has_mobile(&self, user_id: &str) -> Result<bool, StorageError> {
        Ok(self.store.sms_enrolment(user_id).await?.is_some())
    }

    pub async fn set_sms_challenge(&self, id: &str, challenge: &str) -> Result<(), StorageError> {
        self.store.set_reset_sms_challenge(id, challenge).await
    }

    /// A service was verified for the flow's user. Each service counts once.
    pub async fn verified(
        &self,
        view: &ResetView,
        service: ServiceKind,
        meta: &RequestMeta,
    ) -> Result<(), StorageError> {
        let Some(user_id) = &view.user_id else { return Ok(()) };
        if view.verified.contains(&service) || view.state.verify().is_err() {
            return Ok(());
        }
        // One statement appends the service: a verification made at the same time is kept too.
        if self.store.reset_verified(&view.id, service.id()).await? {
            let event = AuditEvent::new(EventKind::ResetVerify, Outcome::Success)
                .user_id(user_id)
                .detail(Detail::new("service_verified").service(service.id()));
            self.auditor.record(meta, event).await?;
        }
        Ok(())
    }

    /// A verification failed. Too many end the flow.
    pub async fn failed(
        &self,
        view: &ResetView,
        service: ServiceKind,
        meta: &RequestMeta,
    ) -> Result<ResetStep, StorageError> {
        let failures = self.store.reset_failure(&view.id).await?;
        let mut event = AuditEvent::new(EventKind::ResetVerify, Outcome::Failure)
            .detail(Detail::new("service_failed").service(service.id()).arg("n", failures));
        if let Some(u) = &view.user_id {
            event = event.user_id(u);
        }
        self.auditor.record(meta, event).await?;
        if failures >= self.settings.max_failures {
            let (failed, _) = ResetState::Failed.stored();
            self.store.end_reset_flow(&view.id, failed, self.clock.now()).await?;
            return Ok(ResetStep::Ended);
        }
        Ok(ResetStep::Continue)
    }

    /// The rules for the flow's user, with the user; only at the password step (see
    /// [`Writer::rules`]).
    pub async fn rules(
        &self,
        view: &ResetView,
        meta: &RequestMeta,
    ) -> Result<Option<(Rules, DirectoryUser)>, ResetError> {
        self.writer.rules(view, meta).await
    }

    /// Sets the new password (and unlocks, as configured), then tells the user by mail.
    pub async fn set_password(
        &self,
        view: &ResetView,
        password: &SecretString,
        repeated: &SecretString,
        meta: &RequestMeta,
    ) -> Result<ResetOutcome, ResetError> {
        self.writer.set_password(view, password, repeated, &self.assessor, meta).await
    }

    /// Unlocks the account without changing the password.
    pub async fn unlock(&self, view: &ResetView, meta: &RequestMeta) -> Result<ResetOutcome, ResetError> {
        self.writer.unlock(view, &self.assessor, meta).await
    }
}
