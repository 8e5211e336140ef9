//! Keeping the password sets that start a cooling-off again (see [`super::CoolingOff`]). AD
//! tells only the last `pwdLastSet`, so the owner's change while a thief's service cooled off
//! would be hidden by the next set (a service desk's reset a day later), and the thief's service
//! would count at once. Every round reads the accounts with a service still cooling off whose
//! password was set since (one search), and keeps a set that starts one again with the
//! enrolment. Each write is conditional, so the round is safe on every instance at once;
//! `run_once(now)` is what the loop and tests call.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{CoolingOff, password_set_at};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Timestamp;
use crate::directory::{Directory, PasswordSet};
use crate::i18n::Lang;
use crate::storage::{EnrolmentRecord, Storage, StorageError};

pub struct RestartWatch {
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    auditor: Auditor,
    cooling: CoolingOff,
}

impl RestartWatch {
    /// `cooldown`: the cooling-off, in seconds.
    pub fn new(store: Arc<dyn Storage>, directory: Arc<dyn Directory>, auditor: Auditor, cooldown: i64) -> Self {
        Self { store, directory, auditor, cooling: CoolingOff { seconds: cooldown } }
    }

    /// One round at `now`: how many sets were kept. A round reads AD only when a service is
    /// still in its own cooling-off, and then once: the accounts whose password was set since
    /// the oldest such service was enrolled (a set before that starts none of them again), or
    /// must be changed at the next logon.
    pub async fn run_once(&self, now: Timestamp) -> Result<u64, StorageError> {
        if self.cooling.seconds <= 0 {
            return Ok(0);
        }
        // A set up to now starts again only what was enrolled within the cooling-off before it.
        // (One before that which AD still tells is read from AD whenever it counts; kept, it
        // would only matter once a later set hid it, and a round can no longer see it then.)
        let mut by_user: BTreeMap<String, Vec<EnrolmentRecord>> = BTreeMap::new();
        for r in self.store.all_enrolments().await? {
            if r.enrolled_at > now - self.cooling.seconds {
                by_user.entry(r.user_id.clone()).or_default().push(r);
            }
        }
        let Some(oldest) = by_user.values().flatten().map(|r| r.enrolled_at).min() else { return Ok(0) };
        let users = match self.directory.password_sets_since(oldest).await {
            Ok(users) => users,
            Err(e) => {
                tracing::warn!(error = %e, "password sets that start a cooling-off again: AD not read");
                return Ok(0);
            }
        };
        let mut kept = 0;
        for PasswordSet { user, changed_at } in users {
            let Some(records) = by_user.get(&user.id) else { continue };
            for r in records {
                let Some(set) = self.restart_seen(r, user.password_set.as_deref(), changed_at, now) else { continue };
                match self.store.record_restart(&user.id, &r.service, r.enrolled_at, set).await {
                    Ok(false) => {}
                    Ok(true) => {
                        kept += 1;
                        let event = AuditEvent::new(EventKind::Enrol, Outcome::Success)
                            .username(&user.account_name)
                            .user_id(&user.id)
                            .detail(
                                Detail::new("cooling_restarted")
                                    .service(&r.service)
                                    .arg("set", crate::clock::format_utc(set))
                                    .arg("until", crate::clock::format_utc(set + self.cooling.seconds)),
                            );
                        self.auditor
                            .record_made(
                                &RequestMeta::job("cooling-off restarts", "cooling-off-restarts", Lang::En),
                                event,
                            )
                            .await;
                    }
                    // The next round tries again; the others go on.
                    Err(e) => tracing::warn!(error = %e, "a password set that starts a cooling-off again not kept"),
                }
            }
        }
        Ok(kept)
    }

    /// The set to keep for `record`, if AD's `pwd_last_set` tells one that starts it again and
    /// is not kept yet. "0" (must change at the next logon: a service desk's reset, say) tells
    /// no time: it is taken as made when the entry last changed (`changed_at`, at or after the
    /// set), or now when AD does not say. A later change of the entry moves it on: that errs
    /// toward cooling off.
    fn restart_seen(
        &self,
        record: &EnrolmentRecord,
        pwd_last_set: Option<&str>,
        changed_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let set = match pwd_last_set {
            Some("0") => changed_at.unwrap_or(now).min(now),
            other => password_set_at(other)?,
        };
        let new = record.restarted_at.is_none_or(|k| k < set);
        (new && self.cooling.starts_again(record, set)).then_some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::directory::fake::FakeDirectory;
    use crate::storage::{EnrolMode, EnrolWrite, SmsEnrolmentRecord};

    const HOUR: i64 = 3600;

    /// Anna, her password set a month ago, and a number enrolled for her at `t0` (now): a thief's
    /// or her own new phone.
    struct World {
        store: Arc<dyn Storage>,
        directory: Arc<FakeDirectory>,
        anna: crate::directory::DirectoryUser,
        number: SmsEnrolmentRecord,
        t0: Timestamp,
        watch: RestartWatch,
        _dir: tempfile::TempDir,
    }

    async fn anna_with_a_new_number() -> World {
        let (store, _dir) = crate::testing::store().await;
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
        let directory = Arc::new(FakeDirectory::default());
        let anna = directory.add_user("anna", "Gammalt-lösen-1");
        let t0 = clock.now();
        directory.set_elsewhere_at(&anna.dn, "Gammalt-lösen-1", t0 - 30 * 24 * HOUR);
        let number = SmsEnrolmentRecord {
            user_id: anna.id.clone(),
            number_encrypted: "x".into(),
            number_hash: "new".into(),
            number_masked: "m".into(),
            enrolled_at: t0,
        };
        assert_eq!(store.enrol_sms(&number, EnrolMode::Add, None).await.unwrap(), EnrolWrite::Done);
        let auditor = Auditor::new(store.clone(), clock);
        let watch = RestartWatch::new(store.clone(), directory.clone(), auditor, 24 * HOUR);
        World { store, directory, anna, number, t0, watch, _dir }
    }

    /// The attack from a review: a thief enrols their phone at T0; the owner changes the
    /// password three hours later (the phone cools off again, until T0 + 27 h); a day later the
    /// service desk resets the password with "must change at the next logon" (AD no longer tells
    /// the owner's change), then the user sets one. Kept, the owner's change still holds.
    #[tokio::test]
    async fn a_set_that_started_a_cooling_off_again_holds_after_later_sets() {
        let World { store, directory, anna, number: thiefs, t0, watch, _dir } = anna_with_a_new_number().await;
        assert_eq!(watch.run_once(t0 + HOUR).await.unwrap(), 0, "the password set before it starts nothing");

        directory.set_elsewhere_at(&anna.dn, "Ägarens-lösen-2", t0 + 3 * HOUR);
        assert_eq!(watch.run_once(t0 + 3 * HOUR + 120).await.unwrap(), 1);
        assert_eq!(watch.run_once(t0 + 3 * HOUR + 240).await.unwrap(), 0, "kept once");
        let audit = store.recent_audit(10).await.unwrap();
        assert!(audit.iter().any(|a| a.detail.as_deref().unwrap_or("").starts_with("@cooling_restarted?")));

        // A day on: the desk's reset ("must change at the next logon"), then the user's.
        let cooling = CoolingOff { seconds: 24 * HOUR };
        let now = t0 + 25 * HOUR;
        directory.set_elsewhere_at(&anna.dn, "Skrivbordets-lösen-3", now);
        assert_eq!(watch.run_once(now + 120).await.unwrap(), 0, "a set after its time starts nothing");
        let record = store.enrolments(&anna.id).await.unwrap().remove(0);
        assert_eq!(record.restarted_at, Some(t0 + 3 * HOUR));
        for set in [None, Some(now)] {
            assert_eq!(cooling.until(&record, set, now + 60), Some(t0 + 27 * HOUR), "{set:?}");
        }
        // Without what was kept, AD's last set alone lets the thief's phone count.
        let forgotten = EnrolmentRecord { restarted_at: None, ..record.clone() };
        assert_eq!(cooling.until(&forgotten, Some(now), now + 60), None);
        // A replacement is a new enrolment: nothing kept holds for it.
        let new = SmsEnrolmentRecord { enrolled_at: now + HOUR, ..thiefs };
        assert_eq!(store.enrol_sms(&new, EnrolMode::Replace, None).await.unwrap(), EnrolWrite::Done);
        assert_eq!(store.enrolments(&anna.id).await.unwrap()[0].restarted_at, None);
    }

    /// A service desk's reset with "must change at the next logon" tells AD no time: while a
    /// service cools off, it is kept as made when the account's entry changed (once: it is not
    /// moved on by every round while the flag stays). A round that finds AD down keeps nothing
    /// and fails nothing.
    #[tokio::test]
    async fn a_reset_that_tells_no_time_is_kept_as_the_entry_changed() {
        let World { store, directory, anna, t0, watch, _dir, .. } = anna_with_a_new_number().await;
        directory.set_down(true);
        assert_eq!(watch.run_once(t0 + HOUR).await.unwrap(), 0);
        directory.set_down(false);
        directory.set_must_change_at(&anna.dn, t0 + 2 * HOUR);
        assert_eq!(watch.run_once(t0 + 2 * HOUR + 100).await.unwrap(), 1);
        assert_eq!(watch.run_once(t0 + 2 * HOUR + 220).await.unwrap(), 0, "once");
        let record = store.enrolments(&anna.id).await.unwrap().remove(0);
        assert_eq!(record.restarted_at, Some(t0 + 2 * HOUR), "as made when the entry changed");
        let cooling = CoolingOff { seconds: 24 * HOUR };
        assert_eq!(cooling.until(&record, None, t0 + 25 * HOUR), Some(t0 + 26 * HOUR));
    }

    /// The reset a service desk's lift was for ("must change at the next logon", within the hour
    /// after the lift) does not start the lifted service's cooling-off again, however late a round
    /// first sees it.
    #[tokio::test]
    async fn the_reset_a_lift_was_for_starts_nothing_again() {
        let World { store, directory, anna, t0, watch, _dir, .. } = anna_with_a_new_number().await;
        let lifted = store.lift_cooldown(&anna.id, "sms", t0 + HOUR, (t0 - 1, Timestamp::MIN), t0 + HOUR).await;
        assert_eq!(lifted.unwrap(), 1);
        directory.set_must_change_at(&anna.dn, t0 + HOUR + 600);
        assert_eq!(watch.run_once(t0 + 3 * HOUR).await.unwrap(), 0);
        let record = store.enrolments(&anna.id).await.unwrap().remove(0);
        assert_eq!(CoolingOff { seconds: 24 * HOUR }.until(&record, None, t0 + 3 * HOUR), None, "still lifted");
    }

    #[test]
    fn a_kept_set_holds_until_a_lift_after_it() {
        let cooling = CoolingOff { seconds: 24 * HOUR };
        let t0 = 1_800_000_000;
        let kept = EnrolmentRecord {
            user_id: "u".into(),
            service: "sms".into(),
            enrolled_at: t0,
            last_used_at: None,
            cooldown_lifted_at: None,
            restarted_at: Some(t0 + 3 * HOUR),
        };
        assert_eq!(cooling.until(&kept, None, t0 + 25 * HOUR), Some(t0 + 27 * HOUR));
        let lifted = EnrolmentRecord { cooldown_lifted_at: Some(t0 + 5 * HOUR), ..kept.clone() };
        assert_eq!(cooling.until(&lifted, None, t0 + 25 * HOUR), None, "the desk lifted it after the change");
        let lifted_before = EnrolmentRecord { cooldown_lifted_at: Some(t0 + HOUR), ..kept };
        assert_eq!(cooling.until(&lifted_before, None, t0 + 25 * HOUR), Some(t0 + 27 * HOUR), "not before it");
    }
}
