//! BankID on this device: opening the app with the order's autostart token, and the way back.
//!
//! An autostart link can be relayed: an attacker starts an order, asks the portal to open BankID
//! "on this device", and sends the link to a victim, whose phone then approves the attacker's
//! order. So every order that logs in, starts or proves a reset, or proves a step-up carries a
//! return URL with a nonce (given to BankID with the order, never to a browser). Once its app was
//! opened on this device, such an order counts only when one of these shows it was this device:
//!
//! - the app sent the user back to the browser that started the order (the nonce, in the browser
//!   with the order's binding), within [`RETURN_WAIT`] of completing;
//! - BankID saw the app at the address of the browser that collected the completion (a desktop
//!   app, or a phone whose app opened the return in another browser).
//!
//! ```text
//! opened here ──back in this browser, or the app at this address──▶ counts once complete
//!      └──────back in another browser──▶ "go back to the browser you began in" (nothing changes)
//! ```
//!
//! A return opened in another browser changes nothing: it may be the user's own (a phone whose
//! app opens its default browser, behind another address when that browser goes through a relay
//! or a VPN), or a relay victim's, whose page then says what to do if they did not start this.
//! The victim's app is not at the attacker's address and never comes back to the attacker's
//! browser, so the attacker's order never counts. An attacker behind the same address as the
//! victim (one NAT) is not told apart. The storage checks the return in the same statement that
//! takes the order (`consume_bankid_flow`, `bankid_flow_for_context`). A backend that does not
//! pass the return URL on (the IDkollen broker) gives no such check.

use super::flow::{BINDING, BankIdFlows};
use super::purpose::{FlowPurpose, FlowState};
use crate::audit::{AuditEvent, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Timestamp;
use crate::session::{binding_hash, is_bound};
use crate::storage::{BankIdFlowRecord, StorageError};
use crate::throttle::address_key;

const RETURN_NONCE: &str = "bankid-return";
/// How long after completing the app may send the user back here.
const RETURN_WAIT: i64 = 120;

/// Where the return URL was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back {
    /// In the browser that started the order.
    Here,
    /// In another browser: the order goes on (or not) in the browser it began in.
    OtherBrowser,
    /// No such order, or not its nonce.
    Unknown,
}

impl BankIdFlows {
    /// The return URL for a new order `id` for `purpose`, and the hash of its nonce; None when the
    /// backend does not pass one on, or the order enrols a BankID (the person whose BankID it is
    /// gains nothing by relaying it, and the enrolment is written as the app completes).
    pub(super) fn return_url(&self, id: &str, purpose: FlowPurpose) -> Option<(String, String)> {
        let base = self.policy.return_base.as_deref()?;
        let taken =
            matches!(purpose, FlowPurpose::Login | FlowPurpose::Reset | FlowPurpose::Verify | FlowPurpose::ResetStep);
        if !taken || !self.bankid.sends_return_url() {
            return None;
        }
        let nonce = self.random.token();
        Some((format!("{base}/bankid/{id}/back?n={nonce}"), binding_hash(RETURN_NONCE, &nonce)))
    }

    /// The user chose to open BankID on this device; returns the autostart token. From now on the
    /// order counts only after the app sent the user back here.
    pub async fn autostart(&self, id: &str, binding: &str) -> Result<Option<String>, StorageError> {
        let Some(rec) = self.load(id, binding).await? else {
            return Ok(None);
        };
        self.store.set_bankid_mode(&rec.id, "autostart").await?;
        Ok(Some(rec.auto_start_token))
    }

    /// The app opened the return URL of flow `id` with `nonce`, in the browser with `binding`.
    pub async fn came_back(
        &self,
        id: &str,
        nonce: &str,
        binding: &str,
        meta: &RequestMeta,
    ) -> Result<Back, StorageError> {
        let Some(rec) = self.store.bankid_flow(id).await? else {
            return Ok(Back::Unknown);
        };
        if !rec.return_nonce_hash.as_deref().is_some_and(|hash| is_bound(hash, RETURN_NONCE, nonce)) {
            return Ok(Back::Unknown);
        }
        let now = self.clock.now();
        if is_bound(&rec.binding_hash, BINDING, binding) {
            self.store.mark_bankid_returned(&rec.id, now, now - RETURN_WAIT).await?;
            return Ok(Back::Here);
        }
        // From another address it may be a relay victim's phone: the trail says so (the order is
        // not changed: it may as well be the user's own phone behind a relay or a VPN).
        if rec.start_address.as_deref().is_some_and(|a| a != address_key(&meta.source_ip)) {
            let event = AuditEvent::new(EventKind::BankIdResult, Outcome::Failure)
                .detail(Detail::new("returned_elsewhere").purpose(&rec.purpose))
                .user_id_if(rec.user_id.as_deref().or(rec.result_user_id.as_deref()));
            self.auditor.record(meta, event).await?;
        }
        Ok(Back::OtherBrowser)
    }

    /// A completed order opened on this device whose app BankID saw at the address of the browser
    /// that collected it: as good as the way back (the desktop app, or a phone's app that opens
    /// another browser).
    pub(super) async fn vouch_by_address(
        &self,
        rec: &BankIdFlowRecord,
        device_ip: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), StorageError> {
        let same = device_ip.is_some_and(|ip| address_key(ip) == address_key(&meta.source_ip));
        if awaits_return(rec) && same {
            let now = self.clock.now();
            self.store.mark_bankid_returned(&rec.id, now, now - RETURN_WAIT).await?;
        }
        Ok(())
    }
}

/// Whether a completed order still waits for the app to send the user back here.
pub(super) fn awaits_return(rec: &BankIdFlowRecord) -> bool {
    rec.mode == "autostart" && rec.return_nonce_hash.is_some() && rec.returned_at.is_none()
}

/// What the page says of a completed order that waits for the return: go on waiting, or (after
/// [`RETURN_WAIT`]) that it did not come.
pub(super) fn awaiting(rec: &BankIdFlowRecord, now: Timestamp) -> (FlowState, &'static str) {
    if now - rec.finished_at.unwrap_or(now) > RETURN_WAIT {
        (FlowState::Failed, "bankid.not_returned")
    } else {
        (FlowState::Pending, "bankid.return_pending")
    }
}
