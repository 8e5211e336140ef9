//! The cooling-off: a service enrolled or replaced does not count toward a reset, nor prove
//! enough to replace or remove an older one, for a while, so that its owner can notice a service a
//! password thief added (they are told of every change) before it can be used.
//!
//! What an owner who notices does is change their password, often at their workstation, where
//! the portal does not see it. Of itself that takes nothing away from the thief, whose service
//! would count once its own cooling-off ran out. So a service that was still cooling off when the
//! account's password was set after it cools off again, for the whole time, from that moment: the
//! owner has that long to have the service desk revoke it. (Removing it with the new password
//! alone was tried and taken out: a thief who changes the password themselves could then remove
//! the owner's newest service and put their own in its place.) A lift by the service desk ends
//! the cooling-off, and holds against a password set within [`LIFT_HOLDS_FOR`] after it (the
//! reset the lift was for), not against a later one (the owner's, who noticed what a desk talked
//! round let through).
//!
//! AD tells only the last time the password was set. So a set that starts a cooling-off again
//! is kept with the enrolment when the portal sees it (`enrolment::restarts` searches every two
//! minutes): a later set (a service desk's reset, or the owner's second change) then cannot hide
//! it. A set hidden by a later one before a round saw it is lost. A password that must be
//! changed at the next logon (`pwdLastSet` 0) was set at a time AD does not tell: the watch
//! takes it as made when the account's entry last changed, and it hides nothing that was kept.

use crate::clock::Timestamp;
use crate::directory::filetime_seconds;
use crate::storage::EnrolmentRecord;

/// How long after a desk lift a password set is taken as the reset the lift was for.
pub const LIFT_HOLDS_FOR: i64 = 3600;

/// The cooling-off, `seconds` long (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoolingOff {
    pub seconds: i64,
}

/// When the account's password was last set, as AD's `pwdLastSet` tells it (None: not known, or
/// "0", must change at the next logon, which tells no time).
pub fn password_set_at(pwd_last_set: Option<&str>) -> Option<Timestamp> {
    pwd_last_set.and_then(filetime_seconds)
}

impl CoolingOff {
    /// Whether a password set at `set` starts `record`'s cooling-off again: it was set while
    /// the service was still cooling off (after it was made, and not within [`LIFT_HOLDS_FOR`]
    /// after a lift), so whoever made it may have known only the old password.
    pub fn starts_again(&self, record: &EnrolmentRecord, set: Timestamp) -> bool {
        self.seconds > 0
            && record.enrolled_at < set
            && set < record.enrolled_at + self.seconds
            && record.cooldown_lifted_at.is_none_or(|lifted| set > lifted + LIFT_HOLDS_FOR)
    }

    /// The password set that started `record`'s cooling-off again, if one did: the last one,
    /// as AD tells it now (`password_set`), or one the portal kept (a later set hides it from AD).
    pub fn restart(&self, record: &EnrolmentRecord, password_set: Option<Timestamp>) -> Option<Timestamp> {
        let starts = |set: &Timestamp| self.starts_again(record, *set);
        record.restarted_at.filter(starts).max(password_set.filter(starts))
    }

    /// Whether `record`'s cooling-off was started again (see [`Self::restart`]).
    pub fn restarted(&self, record: &EnrolmentRecord, password_set: Option<Timestamp>) -> bool {
        self.restart(record, password_set).is_some()
    }

    /// Until when `record` does not count, if it does not at `now`.
    pub fn until(
        &self,
        record: &EnrolmentRecord,
        password_set: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        if self.seconds <= 0 {
            return None;
        }
        let until = match self.restart(record, password_set) {
            Some(set) => set + self.seconds,
            None if record.cooldown_lifted_at.is_some() => return None,
            None => record.enrolled_at + self.seconds,
        };
        (now < until).then_some(until)
    }

    /// What the service desk may lift at `now`: enrolments made after the first time returned
    /// (cooling off by their enrolment time, or started again by a password set at
    /// `password_set`) and not lifted at or after the second (an older lift no longer holds
    /// against that password set).
    pub fn liftable(&self, password_set: Option<Timestamp>, now: Timestamp) -> (Timestamp, Timestamp) {
        match password_set {
            Some(set) if set + self.seconds > now => (set.min(now) - self.seconds, set - LIFT_HOLDS_FOR),
            _ => (now - self.seconds, Timestamp::MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const T0: Timestamp = 1_800_000_000;

    fn enrolled(at: Timestamp, lifted: Option<Timestamp>) -> EnrolmentRecord {
        EnrolmentRecord {
            user_id: "u".into(),
            service: "sms".into(),
            enrolled_at: at,
            last_used_at: None,
            cooldown_lifted_at: lifted,
            restarted_at: None,
        }
    }

    #[test]
    fn a_service_counts_a_day_after_it_was_enrolled_or_when_the_desk_lifts_it() {
        let c = CoolingOff { seconds: DAY };
        let r = enrolled(T0, None);
        assert_eq!(c.until(&r, None, T0 + 60), Some(T0 + DAY));
        assert_eq!(c.until(&r, None, T0 + DAY), None);
        assert_eq!(c.until(&enrolled(T0, Some(T0 + 60)), None, T0 + 120), None, "lifted");
        assert_eq!(CoolingOff { seconds: 0 }.until(&r, None, T0), None, "no cooling-off configured");
        // A password set before the enrolment changes nothing.
        assert_eq!(c.until(&r, Some(T0 - 3600), T0 + 60), Some(T0 + DAY));
        assert!(!c.restarted(&r, Some(T0 - 3600)));
    }

    #[test]
    fn a_password_change_while_a_service_cools_off_starts_it_again() {
        let c = CoolingOff { seconds: DAY };
        let thiefs = enrolled(T0, None);
        let changed = Some(T0 + 2 * 3600);
        assert!(c.restarted(&thiefs, changed));
        assert_eq!(c.until(&thiefs, changed, T0 + DAY + 60), Some(T0 + 2 * 3600 + DAY), "a day after the change");
        assert_eq!(c.until(&thiefs, changed, T0 + 2 * 3600 + DAY), None, "and then it counts");
        // A lift ends it after the change, and holds against the reset it was for (a password
        // set within the hour after it), not against a later change (the owner's, who noticed
        // what a desk talked round let through).
        assert_eq!(c.until(&enrolled(T0, Some(T0 + 3 * 3600)), changed, T0 + 4 * 3600), None);
        assert!(!c.restarted(&enrolled(T0, Some(T0 + 3600 + 60)), changed), "the reset the lift was for");
        assert_eq!(c.until(&enrolled(T0, Some(T0 + 3600 + 60)), changed, T0 + 3 * 3600), None);
        assert!(c.restarted(&enrolled(T0, Some(T0 + 600)), changed), "a change long after the lift");
        assert_eq!(c.until(&enrolled(T0, Some(T0 + 600)), changed, T0 + 3 * 3600), Some(T0 + 2 * 3600 + DAY));
        // An enrolment made after the change is not started again by it.
        assert!(!c.restarted(&enrolled(T0 + 2 * 3600 + 30, None), changed));
        // What the desk may lift: by enrolment time, or started again by the change (lifted
        // before it too).
        assert_eq!(c.liftable(None, T0 + DAY), (T0, Timestamp::MIN));
        assert_eq!(c.liftable(changed, T0 + DAY + 60), (T0 + 2 * 3600 - DAY, T0 + 3600));
        assert!(c.liftable(changed, T0 + DAY + 60).0 < thiefs.enrolled_at);
        assert_eq!(c.liftable(changed, T0 + 2 * 3600 + DAY), (T0 + 2 * 3600, Timestamp::MIN), "run out");
        // A service out of its cooling-off when the password changed stays out of it.
        let old = enrolled(T0 - 2 * DAY, None);
        assert!(!c.restarted(&old, changed));
        assert_eq!(c.until(&old, changed, T0 + 3 * 3600), None);
    }

    #[test]
    fn pwd_last_set_is_read_as_ad_writes_it() {
        assert_eq!(password_set_at(Some("0")), None, "must change at the next logon: no time");
        assert_eq!(password_set_at(None), None);
        assert_eq!(password_set_at(Some("134406432000000000")), Some(1_796_169_600));
    }
}
