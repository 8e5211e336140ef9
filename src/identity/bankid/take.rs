//! Taking what a completed order proved, once: a login or a reset start (the account it found),
//! or a step-up (the proof, for the user it was for). The take is one conditional statement
//! (`consume_bankid_flow`), which also checks that an order opened on this device came back to
//! this browser (see `same_device`).

use super::FlowPurpose;
use super::flow::BankIdFlows;
use crate::clock::Timestamp;
use crate::storage::StorageError;

/// A completed login or reset start is taken within this many seconds of completing, or never.
pub const TAKE_WITHIN: i64 = 300;

impl BankIdFlows {
    /// Takes the proof of a completed enrolment, replacement or verification once, for the user
    /// it was for: true the first time. The session records it as a step-up.
    /// Returns when BankID completed the order (the proof is as old as that, not as its pick-up).
    pub async fn take_proof(&self, id: &str, binding: &str, user_id: &str) -> Result<Option<i64>, StorageError> {
        let Some(rec) = self.load(id, binding).await? else {
            return Ok(None);
        };
        let proves =
            matches!(FlowPurpose::parse(&rec.purpose), FlowPurpose::Enrol | FlowPurpose::Replace | FlowPurpose::Verify);
        let taken =
            proves && rec.user_id.as_deref() == Some(user_id) && self.store.consume_bankid_flow(&rec.id).await?;
        Ok(taken.then(|| rec.finished_at.unwrap_or_else(|| self.clock.now())))
    }

    /// Takes a completed login (or reset start) once, within [`TAKE_WITHIN`] of its completion:
    /// the account it found, and when BankID proved it (a reset counts changes to the account's
    /// services from then, not from the take). A page left on a shared computer does not log the
    /// next person in.
    pub async fn take_login(&self, id: &str, binding: &str) -> Result<Option<(String, Timestamp)>, StorageError> {
        let Some(rec) = self.load(id, binding).await? else {
            return Ok(None);
        };
        let identifies = matches!(FlowPurpose::parse(&rec.purpose), FlowPurpose::Login | FlowPurpose::Reset);
        let Some(finished) = rec.finished_at.filter(|at| self.clock.now() - at <= TAKE_WITHIN) else {
            return Ok(None);
        };
        if !identifies || !self.store.consume_bankid_flow(&rec.id).await? {
            return Ok(None);
        }
        Ok(rec.result_user_id.map(|user| (user, finished)))
    }
}
