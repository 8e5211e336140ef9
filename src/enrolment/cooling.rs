//! The cooling-off: a service enrolled or replaced does not count toward a reset, nor prove
//! enough to replace or remove an older one, for a while, so that its owner can notice a service a
//! password thief added (they are told of every change) before it can be used.
//!
//! What an owner who notices does is change their password, often at their workstation, where
//! the portal does not see it. Of itself that takes nothing away from the thief, whose service
//! would count once its own cooling-off ran out. So a service that was still cooling off when the
//! account's password was set after it cools off again, for the whole time, from that moment:
//! the owner has it to remove the service, which they may do with the new password alone (they
//! may have nothing else enrolled to prove with). A lift by the service desk counts only when it
//! came after the change.

use crate::clock::Timestamp;
use crate::directory::filetime_seconds;
use crate::storage::EnrolmentRecord;

/// The cooling-off, `seconds` long (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoolingOff {
    pub seconds: i64,
}

/// When the account's password was last set, as AD's `pwdLastSet` tells it (None: not known, or
/// "must change at the next logon").
pub fn password_set_at(pwd_last_set: Option<&str>) -> Option<Timestamp> {
    pwd_last_set.and_then(filetime_seconds)
}

impl CoolingOff {
    /// Whether the password was set while `record` was still cooling off (after it was made):
    /// whoever made it may have known only the old password.
    pub fn restarted(&self, record: &EnrolmentRecord, password_set: Option<Timestamp>) -> bool {
        password_set.is_some_and(|set| {
            self.seconds > 0
                && record.enrolled_at < set
                && set < record.enrolled_at + self.seconds
                && record.cooldown_lifted_at.is_none_or(|lifted| lifted < set)
        })
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
        let until = match password_set {
            Some(set) if self.restarted(record, Some(set)) => set + self.seconds,
            _ if record.cooldown_lifted_at.is_some() => return None,
            _ => record.enrolled_at + self.seconds,
        };
        (now < until).then_some(until)
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
        // A lift before the change (a desk the thief talked round) does not hold; one after does.
        assert!(c.restarted(&enrolled(T0, Some(T0 + 3600)), changed));
        assert_eq!(c.until(&enrolled(T0, Some(T0 + 3600)), changed, T0 + DAY + 60), Some(T0 + 2 * 3600 + DAY));
        assert!(!c.restarted(&enrolled(T0, Some(T0 + 3 * 3600)), changed));
        assert_eq!(c.until(&enrolled(T0, Some(T0 + 3 * 3600)), changed, T0 + 4 * 3600), None);
        // A service out of its cooling-off when the password changed stays out of it.
        let old = enrolled(T0 - 2 * DAY, None);
        assert!(!c.restarted(&old, changed));
        assert_eq!(c.until(&old, changed, T0 + 3 * 3600), None);
    }

    #[test]
    fn pwd_last_set_is_read_as_ad_writes_it() {
        assert_eq!(password_set_at(Some("0")), None, "must change at the next logon: not a time");
        assert_eq!(password_set_at(None), None);
        assert_eq!(password_set_at(Some("134406432000000000")), Some(1_796_169_600));
    }
}
