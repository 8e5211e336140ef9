//! The rules a new password must meet: the domain's (or the user's fine-grained) policy from AD,
//! plus the organisation's own. Shared by reset and change; checked live in the browser and again
//! on the server.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;

use crate::directory::PasswordPolicy;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
});

/// The shipped list of common passwords (lower case).
pub fn common_passwords() -> impl Iterator<Item = &'static str> {
    COMMON.iter().copied()
}

/// The organisation's own rules, from `[password]`.
#[derive(Debug, Clone, Default)]
pub struct LocalRules {
    pub min_length: u32,
    pub banned_words: Vec<String>,
    pub check_common: bool,
}

/// One rule, as the page lists it (and the browser checks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// At least `n` characters.
    MinLength { n: u32 },
    /// Characters from at least three of: upper case, lower case, digits, other.
    Classes,
    /// No part (3+ characters) of the account name or the name.
    NoPersonalInfo { tokens: Vec<String> },
    /// Not one of the commonly used passwords (checked on the server).
    NotCommon,
    /// None of the organisation's banned words (checked on the server).
    NoBannedWords,
    /// Not found in known data breaches (a k-anonymity query; checked on the server).
    NotBreached,
    /// Typed the same twice.
    Matches,
}

impl Rule {
    pub fn id(&self) -> &'static str {
        match self {
            Rule::MinLength { .. } => "min_length",
            Rule::Classes => "classes",
            Rule::NoPersonalInfo { .. } => "no_personal_info",
            Rule::NotCommon => "not_common",
            Rule::NoBannedWords => "no_banned_words",
            Rule::NotBreached => "not_breached",
            Rule::Matches => "matches",
        }
    }

    /// The catalogue key of the rule's sentence.
    pub fn message_key(&self) -> &'static str {
        match self {
            Rule::MinLength { .. } => "password.rule.min_length",
            Rule::Classes => "password.rule.classes",
            Rule::NoPersonalInfo { .. } => "password.rule.no_personal_info",
            Rule::NotCommon => "password.rule.not_common",
            Rule::NoBannedWords => "password.rule.no_banned_words",
            Rule::NotBreached => "password.rule.not_breached",
            Rule::Matches => "password.rule.matches",
        }
    }
}

/// The rules for one user.
#[derive(Debug, Clone)]
pub struct Rules {
    pub rules: Vec<Rule>,
    banned: Vec<String>,
}

/// Parts of a name AD's complexity rule looks for: split at , . - _ space # and tab, 3+ characters.
fn tokens(name: &str) -> Vec<String> {
    name.split([',', '.', '-', '_', ' ', '#', '\t', '@', '\\'])
        .filter(|t| t.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

fn classes(password: &str) -> usize {
    let upper = password.chars().any(char::is_uppercase);
    let lower = password.chars().any(char::is_lowercase);
    let digit = password.chars().any(|c| c.is_ascii_digit());
    let other = password.chars().any(|c| !c.is_alphanumeric());
    [upper, lower, digit, other].into_iter().filter(|b| *b).count()
}

impl Rules {
    /// Adds the breach check to the list (when a range service is configured).
    pub fn with_breach_check(mut self) -> Rules {
        let at = self.rules.len().saturating_sub(1);
        self.rules.insert(at, Rule::NotBreached);
        self
    }

    pub fn new(ad: &PasswordPolicy, local: &LocalRules, account_name: &str, display_name: &str) -> Rules {
        let mut rules = Vec::new();
        let n = ad.min_length.max(local.min_length);
        if n > 0 {
            rules.push(Rule::MinLength { n });
        }
        if ad.complexity {
            rules.push(Rule::Classes);
        }
        let mut personal = tokens(account_name);
        personal.extend(tokens(display_name));
        personal.sort();
        personal.dedup();
        if !personal.is_empty() {
            rules.push(Rule::NoPersonalInfo { tokens: personal });
        }
        if local.check_common {
            rules.push(Rule::NotCommon);
        }
        let banned: Vec<String> =
            local.banned_words.iter().map(|w| w.to_lowercase()).filter(|w| !w.is_empty()).collect();
        if !banned.is_empty() {
            rules.push(Rule::NoBannedWords);
        }
        rules.push(Rule::Matches);
        Rules { rules, banned }
    }

    /// The rules the password breaks (empty when it is acceptable).
    pub fn broken(&self, password: &str, repeated: &str) -> Vec<&Rule> {
        let lower = password.to_lowercase();
        self.rules
            .iter()
            .filter(|rule| match rule {
                Rule::MinLength { n } => password.chars().count() < *n as usize,
                Rule::Classes => classes(password) < 3,
                Rule::NoPersonalInfo { tokens } => tokens.iter().any(|t| lower.contains(t.as_str())),
                Rule::NotCommon => COMMON.contains(lower.as_str()) || is_common_with_suffix(&lower),
                Rule::NoBannedWords => self.banned.iter().any(|w| lower.contains(w.as_str())),
                // Needs the network: checked by the caller.
                Rule::NotBreached => false,
                Rule::Matches => password != repeated,
            })
            .collect()
    }
}

/// "Sommar2026!" is "sommar" with a year and a sign: as weak as the word itself.
fn is_common_with_suffix(lower: &str) -> bool {
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || "!?.#*@$%&-_".contains(c));
    stem.len() >= 4 && stem.len() < lower.len() && COMMON.contains(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: u32, complexity: bool) -> PasswordPolicy {
        PasswordPolicy {
            min_length: min,
            complexity,
            history_length: 5,
            lockout_threshold: 5,
            lockout_window_minutes: 0,
            lockout_duration_minutes: 30,
            max_age_days: 42,
            min_age_days: 0,
            source_pso: None,
        }
    }

    fn rules(local_min: u32) -> Rules {
        let local = LocalRules { min_length: local_min, banned_words: vec!["Stjärna".into()], check_common: true };
        Rules::new(&policy(8, true), &local, "anna", "Anna Andersson")
    }

    fn broken(r: &Rules, pw: &str) -> Vec<&'static str> {
        r.broken(pw, pw).iter().map(|r| r.id()).collect()
    }

    #[test]
    fn the_longer_minimum_wins() {
        assert_eq!(rules(12).rules[0], Rule::MinLength { n: 12 });
        assert_eq!(rules(4).rules[0], Rule::MinLength { n: 8 });
    }

    #[test]
    fn a_good_password_breaks_nothing() {
        assert!(broken(&rules(12), "Tre-glada-kor-på-bete7").is_empty());
    }

    #[test]
    fn each_rule_catches_what_it_should() {
        let r = rules(12);
        assert_eq!(broken(&r, "Kort1!"), ["min_length"]);
        assert_eq!(broken(&r, "bara-gemener-och-tecken"), ["classes"]);
        assert_eq!(broken(&r, "Andersson-Kaffe-77"), ["no_personal_info"]);
        assert_eq!(broken(&r, "MinStjärna-är-bäst-99"), ["no_banned_words"]);
        assert_eq!(broken(&r, "Password123456"), ["not_common"]);
        assert_eq!(broken(&r, "Sommar2026!!!!"), ["not_common"], "a common word with a year and signs");
        let mismatched: Vec<_> =
            r.broken("Tre-glada-kor-på-bete7", "Tre-glada-kor-på-bete8").iter().map(|r| r.id()).collect();
        assert_eq!(mismatched, ["matches"]);
    }

    #[test]
    fn the_name_tokens_follow_ads_complexity_rule() {
        assert_eq!(tokens("Anna-Karin O'Neil.Li"), ["anna", "karin", "o'neil"]);
        assert!(tokens("Bo Li").is_empty(), "parts under three characters do not count");
    }
}
