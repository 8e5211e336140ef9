//! Where a stored flow stands at a moment: which of what it proved counts (not a service cooling
//! off, nor one enrolled or replaced since the flow began), whether the account is privileged
//! or closed, and so whether its stars are enough. Read for each page and again once the flow
//! is taken for its write (an enrolment removed meanwhile no longer counts).

use std::sync::Arc;

use super::outcome::ResetView;
use super::progress::Stars;
use super::state::ResetState;
use crate::clock::Timestamp;
use crate::config::ResetSettings;
use crate::directory::{Privileged, Standing};
use crate::enrolment::{CoolingOff, Service, ServiceKind, password_set_at};
use crate::storage::{ResetFlowRecord, Storage, StorageError};

pub(super) struct Assessor {
    pub(super) store: Arc<dyn Storage>,
    pub(super) services: Vec<Service>,
    pub(super) reset_stars: u8,
    pub(super) settings: ResetSettings,
    pub(super) privileged: Privileged,
    /// How long a new or replaced service does not count toward a reset, in seconds.
    pub(super) cooldown: i64,
}

fn kinds(list: &str) -> Vec<ServiceKind> {
    list.split(',').filter_map(|s| s.parse().ok()).collect()
}

impl Assessor {
    /// The flow `rec`, in `state`, as it stands at `now`.
    pub(super) async fn view_of(
        &self,
        rec: ResetFlowRecord,
        state: ResetState,
        now: Timestamp,
    ) -> Result<ResetView, StorageError> {
        let verified = kinds(&rec.verified);
        // Read once the user has proved something (before, what they enrolled is not shown, and
        // reading it only for known names would take longer for them).
        let records = match (&rec.user_id, verified.is_empty()) {
            (Some(u), false) => self.store.enrolments(u).await?,
            _ => Vec::new(),
        };
        let enrolled: Vec<ServiceKind> = records.iter().filter_map(|e| e.service.parse().ok()).collect();
        // Cooling-off: a service enrolled or replaced a short while ago does not count (a password
        // thief who enrolled their own phone cannot use it at once), nor, for as long again, one
        // that was still cooling off when the password was changed (see `CoolingOff`).
        let cooling_off = CoolingOff { seconds: self.cooldown };
        let password_set = password_set_at(rec.pwd_last_set.as_deref());
        let cooling: Vec<ServiceKind> = records
            .iter()
            .filter(|r| cooling_off.until(r, password_set, now).is_some())
            .filter_map(|r| r.service.parse().ok())
            .collect();
        // Nor, in this flow, one enrolled or replaced after it began (what it proved may have
        // been the one replaced).
        let changed_since: Vec<ServiceKind> = records
            .iter()
            .filter(|r| r.enrolled_at > rec.created_at)
            .filter_map(|r| r.service.parse().ok())
            .filter(|k| !cooling.contains(k))
            .collect();
        let not_counting: Vec<ServiceKind> = cooling.iter().chain(&changed_since).copied().collect();
        // Privileged and closed accounts are looked at only once the user has proved something.
        let standing = match (&rec.user_id, verified.is_empty()) {
            (Some(u), false) => self.privileged.standing(u, now).await,
            _ => Standing { privileged: false, closed: false },
        };
        let stars = Stars {
            services: &self.services,
            reset_stars: self.reset_stars,
            protected: self.settings.protected,
            protected_stars: self.settings.protected_stars,
        };
        let p = stars.progress(rec.user_id.is_some(), &verified, &enrolled, &not_counting, standing.privileged);
        Ok(ResetView {
            id: rec.id,
            state,
            collected: p.collected,
            needed: p.needed,
            enough: p.enough && !standing.closed,
            verified: verified.clone(),
            next: p.next,
            not_enough_enrolled: p.not_enough_enrolled,
            cooling: p.cooling.into_iter().filter(|k| !changed_since.contains(k)).collect(),
            changed_since: changed_since.into_iter().filter(|k| verified.contains(k)).collect(),
            protected: p.refused_privileged,
            closed: standing.closed,
            user_id: rec.user_id,
            typed_name: rec.typed_name,
            sms_challenge: rec.sms_challenge,
            password_set_then: rec.pwd_last_set,
            written_maybe_at: rec.written_maybe_at,
        })
    }

    /// Whether the flow, taken for its write, still has the stars for it: read again after the
    /// take, so that an enrolment removed (or a service replaced, or the account closed) while
    /// the password page was being answered stops the write.
    /// `password_set`: the account's `pwdLastSet` as read now, for a flow that began without it.
    pub(super) async fn still_enough(
        &self,
        id: &str,
        password_set: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let Some(mut rec) = self.store.reset_flow(id).await? else { return Ok(false) };
        rec.pwd_last_set = rec.pwd_last_set.or(password_set.map(str::to_string));
        Ok(self.view_of(rec, ResetState::Writing, now).await?.enough)
    }
}
