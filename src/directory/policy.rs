//! The domain's password and lockout policy, as AD states it.

use std::collections::HashMap;

/// The password and lockout rules in force for a user (the domain's, or a fine-grained PSO's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: u32,
    /// AD's complexity rule: three of four character classes, no account name.
    pub complexity: bool,
    pub history_length: u32,
    /// Failed logons before AD locks the account; 0 means never.
    pub lockout_threshold: u32,
    pub lockout_duration_minutes: u64,
    /// How long AD remembers failed logons when counting toward the threshold.
    pub lockout_window_minutes: u64,
    /// 0 means passwords never expire.
    pub max_age_days: u64,
    pub min_age_days: u64,
    /// The DN of the fine-grained policy, when one applies instead of the domain's.
    pub source_pso: Option<String>,
}

/// Attributes of the domain root object (`DC=...`).
pub const DOMAIN_ATTRS: &[&str] = &[
    "minPwdLength",
    "pwdProperties",
    "pwdHistoryLength",
    "lockoutThreshold",
    "lockoutDuration",
    "lockOutObservationWindow",
    "maxPwdAge",
    "minPwdAge",
];

/// Attributes of a password settings object (`msDS-PasswordSettings`).
pub const PSO_ATTRS: &[&str] = &[
    "msDS-MinimumPasswordLength",
    "msDS-PasswordComplexityEnabled",
    "msDS-PasswordHistoryLength",
    "msDS-LockoutThreshold",
    "msDS-LockoutDuration",
    "msDS-LockoutObservationWindow",
    "msDS-MaximumPasswordAge",
    "msDS-MinimumPasswordAge",
];

type Attrs = HashMap<String, Vec<String>>;

fn first<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(|v| v.first()).map(String::as_str)
}

fn number(attrs: &Attrs, name: &str) -> u32 {
    first(attrs, name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// AD stores durations as negative counts of 100 ns; "never" is the most negative value.
/// The longest observation window AD lets one set (99,999 minutes): what "never" is read as for
/// a window of failures, which must never be taken as shorter than AD's.
pub const LONGEST_WINDOW_MINUTES: u64 = 99_999;

/// A lockout observation window: as [`interval_minutes`], but "never" as the longest.
fn window_minutes(attrs: &Attrs, name: &str) -> u64 {
    match first(attrs, name).and_then(|v| v.parse::<i64>().ok()) {
        Some(i64::MIN) => LONGEST_WINDOW_MINUTES,
        _ => interval_minutes(attrs, name),
    }
}

fn interval_minutes(attrs: &Attrs, name: &str) -> u64 {
    match first(attrs, name).and_then(|v| v.parse::<i64>().ok()) {
        Some(v) if v < 0 && v != i64::MIN => (v.unsigned_abs()) / 600_000_000,
        _ => 0,
    }
}

impl PasswordPolicy {
    pub fn from_domain(attrs: &Attrs) -> PasswordPolicy {
        PasswordPolicy {
            min_length: number(attrs, "minPwdLength"),
            complexity: number(attrs, "pwdProperties") & 1 == 1,
            history_length: number(attrs, "pwdHistoryLength"),
            lockout_threshold: number(attrs, "lockoutThreshold"),
            lockout_duration_minutes: interval_minutes(attrs, "lockoutDuration"),
            lockout_window_minutes: window_minutes(attrs, "lockOutObservationWindow"),
            max_age_days: interval_minutes(attrs, "maxPwdAge") / (24 * 60),
            min_age_days: interval_minutes(attrs, "minPwdAge") / (24 * 60),
            source_pso: None,
        }
    }

    pub fn from_pso(dn: &str, attrs: &Attrs) -> PasswordPolicy {
        PasswordPolicy {
            min_length: number(attrs, "msDS-MinimumPasswordLength"),
            complexity: first(attrs, "msDS-PasswordComplexityEnabled").is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
            history_length: number(attrs, "msDS-PasswordHistoryLength"),
            lockout_threshold: number(attrs, "msDS-LockoutThreshold"),
            lockout_duration_minutes: interval_minutes(attrs, "msDS-LockoutDuration"),
            lockout_window_minutes: window_minutes(attrs, "msDS-LockoutObservationWindow"),
            max_age_days: interval_minutes(attrs, "msDS-MaximumPasswordAge") / (24 * 60),
            min_age_days: interval_minutes(attrs, "msDS-MinimumPasswordAge") / (24 * 60),
            source_pso: Some(dn.to_string()),
        }
    }

    /// This policy's password rules, for an account whose lockout threshold is unknown (a PSO
    /// the service account cannot read): it may be lower than this one's, as PSOs that guard
    /// admins usually are, so it counts as if AD locked at the first failure.
    pub fn with_unknown_lockout(self) -> PasswordPolicy {
        PasswordPolicy { lockout_threshold: 1, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attrs {
        pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
    }

    #[test]
    fn reads_the_domain_policy_as_samba_states_it() {
        let p = PasswordPolicy::from_domain(&attrs(&[
            ("minPwdLength", "8"),
            ("pwdProperties", "1"),
            ("pwdHistoryLength", "5"),
            ("lockoutThreshold", "5"),
            ("lockoutDuration", "-18000000000"),
            ("lockOutObservationWindow", "-18000000000"),
            ("maxPwdAge", "-36288000000000"),
            ("minPwdAge", "0"),
        ]));
        assert_eq!(p.min_length, 8);
        assert!(p.complexity);
        assert_eq!((p.history_length, p.lockout_threshold), (5, 5));
        assert_eq!(p.lockout_duration_minutes, 30);
        assert_eq!(p.lockout_window_minutes, 30);
        assert_eq!(p.max_age_days, 42);
        assert_eq!(p.min_age_days, 0);
    }

    #[test]
    fn never_expiring_passwords_have_no_max_age() {
        let p = PasswordPolicy::from_domain(&attrs(&[("maxPwdAge", "-9223372036854775808")]));
        assert_eq!(p.max_age_days, 0);
    }

    #[test]
    fn a_window_of_failures_read_as_never_is_the_longest_not_none() {
        let never = "-9223372036854775808";
        let p = PasswordPolicy::from_domain(&attrs(&[("lockOutObservationWindow", never), ("lockoutDuration", never)]));
        assert_eq!((p.lockout_window_minutes, p.lockout_duration_minutes), (LONGEST_WINDOW_MINUTES, 0));
        let pso = PasswordPolicy::from_pso("CN=x", &attrs(&[("msDS-LockoutObservationWindow", never)]));
        assert_eq!(pso.lockout_window_minutes, LONGEST_WINDOW_MINUTES);
    }

    #[test]
    fn reads_a_fine_grained_policy() {
        let p = PasswordPolicy::from_pso(
            "CN=Admins PSO",
            &attrs(&[("msDS-MinimumPasswordLength", "14"), ("msDS-PasswordComplexityEnabled", "TRUE")]),
        );
        assert_eq!(p.min_length, 14);
        assert!(p.complexity);
        assert_eq!(p.source_pso.as_deref(), Some("CN=Admins PSO"));
    }
}
