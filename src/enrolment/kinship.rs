//! Whether two accounts are one person's, for the service desk's rule that an agent never lifts
//! the cooling-off of an account of their own: their everyday account, say, when they work from
//! a staff account.
//!
//! What tells is what each account is known by: its BankID's personal number, the personal
//! number AD holds for it (`bankid.personal_number_attribute`, which a staff account carries
//! even with nothing enrolled), each as its lookup hash, and its enrolled mobile number. Two
//! accounts that share one are one person's. Two that have different personal numbers are two
//! people's. Different mobile numbers tell nothing (one person may have two phones: an agent
//! could enrol a second one on their staff account to pass), except where BankID is not offered
//! and nothing else could tell. Otherwise the portal cannot tell, and the desk lifts nothing: a
//! lift is rare, and an agent who could be lifting their own is the one case the rule is for.

use crate::directory::DirectoryError;

/// The personal number AD holds for an account, as the lookup hash a BankID enrolment of that
/// number has (see `identity::DataKey::lookup_hash`).
#[async_trait::async_trait]
pub trait PersonalNumbers: Send + Sync + 'static {
    /// None when the account has no valid personal number in AD (or none is configured).
    async fn hash_of(&self, user_id: &str) -> Result<Option<String>, DirectoryError>;
}

/// What an account is known by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// Lookup hashes of personal numbers: the enrolled BankID's, AD's.
    pub personal_numbers: Vec<String>,
    /// Lookup hash of the enrolled mobile number.
    pub number: Option<String>,
}

/// Whether an agent and an account are one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinship {
    /// They share a personal number or a mobile number.
    Same,
    /// They have something of the same kind to compare, and it differs.
    Other,
    /// Nothing of the same kind to compare.
    CannotTell,
}

/// How `agent` and `target` are related, by their marks. `numbers_tell`: different mobile
/// numbers are taken for two people (only where BankID is not offered).
pub fn kinship(agent: &Marks, target: &Marks, numbers_tell: bool) -> Kinship {
    let shared_pn = agent.personal_numbers.iter().any(|pn| target.personal_numbers.contains(pn));
    let shared_number = matches!((&agent.number, &target.number), (Some(a), Some(b)) if a == b);
    if shared_pn || shared_number {
        return Kinship::Same;
    }
    let pns = !agent.personal_numbers.is_empty() && !target.personal_numbers.is_empty();
    let numbers = numbers_tell && agent.number.is_some() && target.number.is_some();
    if pns || numbers { Kinship::Other } else { Kinship::CannotTell }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(pns: &[&str], number: Option<&str>) -> Marks {
        Marks { personal_numbers: pns.iter().map(|p| p.to_string()).collect(), number: number.map(str::to_string) }
    }

    #[test]
    fn accounts_sharing_a_personal_number_or_a_mobile_number_are_one_persons() {
        for numbers_tell in [false, true] {
            // The agent's staff account has only AD's number; their everyday account has the BankID.
            let same = [
                (marks(&["pn-a"], None), marks(&["pn-a"], Some("070"))),
                (marks(&["pn-a"], Some("070")), marks(&["pn-b"], Some("070"))),
                (marks(&[], Some("070")), marks(&[], Some("070"))),
            ];
            for (agent, target) in same {
                assert_eq!(kinship(&agent, &target, numbers_tell), Kinship::Same, "{agent:?} {target:?}");
            }
        }
    }

    #[test]
    fn accounts_with_different_personal_numbers_are_others() {
        for numbers_tell in [false, true] {
            let (a, b) = (marks(&["pn-a"], None), marks(&["pn-b"], Some("070")));
            assert_eq!(kinship(&a, &b, numbers_tell), Kinship::Other);
            let (a, b) = (marks(&["pn-a"], Some("071")), marks(&["pn-b"], Some("070")));
            assert_eq!(kinship(&a, &b, numbers_tell), Kinship::Other);
        }
    }

    /// An agent whose staff account has nothing but a second phone enrolled is not told from the
    /// owner of an account with another number, where BankID could tell.
    #[test]
    fn different_mobile_numbers_tell_only_where_nothing_else_could() {
        let (agent, target) = (marks(&[], Some("071")), marks(&["pn-b"], Some("070")));
        assert_eq!(kinship(&agent, &target, false), Kinship::CannotTell);
        assert_eq!(kinship(&agent, &target, true), Kinship::Other);
    }

    #[test]
    fn nothing_of_the_same_kind_to_compare_tells_nothing() {
        for numbers_tell in [false, true] {
            let cases = [
                (Marks::default(), marks(&["pn-b"], Some("070"))),
                // A mobile number on one side, a personal number on the other.
                (marks(&[], Some("071")), marks(&["pn-b"], None)),
                (marks(&["pn-a"], None), Marks::default()),
            ];
            for (agent, target) in cases {
                assert_eq!(kinship(&agent, &target, numbers_tell), Kinship::CannotTell, "{agent:?} {target:?}");
            }
        }
    }
}
