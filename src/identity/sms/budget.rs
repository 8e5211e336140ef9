//! Whose budget a text message is counted against. Each kind of sender has budgets of its own, so
//! that one kind cannot use up another's: an anonymous reset flow (anyone may type a username)
//! never spends the texts the user needs for their own reset or the service desk needs to verify
//! them.

use super::{PhoneNumber, SmsLimits};
use crate::storage::StorageError;
use crate::throttle::{Limit, Reserve, Throttle, address_key};

/// Texts one reset flow may cause in an hour (a resend waits out the cooldown as well).
pub const PER_FLOW_PER_HOUR: u32 = 3;

/// Who caused a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender<'a> {
    /// A logged-in user, for their own enrolment or verification (they may pick the number).
    User,
    /// A password-reset flow before anything is proved: only to an enrolled number (or nowhere,
    /// for a decoy). `target` is the user id, or the typed name when it matches nobody.
    Anonymous { flow: &'a str, target: &'a str },
    /// A password-reset flow after a first proof, for the user it proved, to their enrolled
    /// number. Budgets of its own: strangers typing the user's name must not use them up.
    Proved { flow: &'a str },
    /// The service desk verifying a caller, to the caller's enrolled number.
    ServiceDesk,
}

impl Sender<'_> {
    /// A reset's text is queued and sent after the answer, so that a real send answers like a
    /// decoy and a slow gateway does not show.
    pub fn queued(&self) -> bool {
        matches!(self, Sender::Anonymous { .. } | Sender::Proved { .. })
    }

    /// The (scope, key, limit) each send is counted under. `user_id` is whom the text is about,
    /// `number` where it goes (None for a decoy), `address` the client's address.
    pub fn budgets(
        &self,
        limits: &SmsLimits,
        user_id: &str,
        number: Option<(&str, &PhoneNumber)>,
        address: &str,
    ) -> Vec<(&'static str, String, Limit)> {
        let hour = |n: u32| Limit { max_failures: n, window_seconds: 3600 };
        match self {
            Sender::User => {
                let mut b = vec![
                    ("sms-user", user_id.to_string(), limits.per_user),
                    ("sms-ip", address_key(address), limits.per_ip),
                ];
                if let Some((hash, n)) = number {
                    b.push(("sms-number", hash.to_string(), limits.per_number));
                    b.push(("sms-prefix", n.prefix().to_string(), limits.per_prefix));
                }
                b
            }
            // The destination is never the sender's choice here, so there is nothing to pump:
            // counted per flow, per address and per target, the same for a real send and a decoy.
            Sender::Anonymous { flow, target } => vec![
                ("sms-anon-flow", flow.to_string(), hour(PER_FLOW_PER_HOUR)),
                ("sms-anon-ip", address_key(address), limits.per_ip),
                ("sms-anon-target", target.to_string(), limits.per_number),
            ],
            Sender::Proved { flow } => vec![
                ("sms-anon-flow", flow.to_string(), hour(PER_FLOW_PER_HOUR)),
                ("sms-proved-user", user_id.to_string(), limits.per_user),
            ],
            Sender::ServiceDesk => vec![
                ("sms-desk-user", user_id.to_string(), limits.per_user),
                ("sms-desk-ip", address_key(address), limits.per_ip),
            ],
        }
    }
}

/// Anonymous texts to one user in a day, however many addresses and names they come from: a
/// stranger who knows a username cannot have the user's phone texted all day long.
pub const ANONYMOUS_TEXTS_PER_USER_PER_DAY: u32 = 10;

/// The hidden caps on anonymous texts to one user (an hour's, a day's), whatever names they were
/// typed by: when one is reached the send quietly becomes a decoy (answered "sent", nothing sent),
/// so the cap tells nobody that the names are one account.
pub fn anonymous_caps(limits: &SmsLimits, user_id: &str) -> [(&'static str, String, Limit); 2] {
    let day = Limit { max_failures: ANONYMOUS_TEXTS_PER_USER_PER_DAY, window_seconds: 86_400 };
    [("sms-anon-user", user_id.to_string(), limits.per_number), ("sms-anon-user-day", user_id.to_string(), day)]
}

/// Whether an anonymous send to `user_id` becomes a decoy, and under which scope: one of the
/// hidden caps is reached (this send is counted against them first), or the day's wrong codes.
pub async fn decoy_for(
    throttle: &Throttle,
    limits: &SmsLimits,
    user_id: &str,
) -> Result<Option<&'static str>, StorageError> {
    for (cap, key, limit) in anonymous_caps(limits, user_id) {
        if matches!(throttle.reserve(cap, &key, limit).await?, Reserve::Blocked { .. }) {
            return Ok(Some(cap));
        }
    }
    let (wrong, key, limit) = wrong_codes(user_id);
    Ok(throttle.blocked_for(wrong, &key, limit).await?.is_some().then_some(wrong))
}

/// Wrong codes typed in resets for one user in a day. Each send allows three guesses, so without
/// it a stranger could go on guessing at fifteen an hour for as long as they liked. Past it, a
/// guess is checked as a decoy's (counted before the check, so parallel guesses cannot slip
/// under it), and anonymous sends quietly become decoys too (no texts for nothing). A reset that
/// proved a first service still sends ([`Sender::Proved`]).
pub const WRONG_CODES_PER_USER_PER_DAY: u32 = 10;

pub fn wrong_codes(user_id: &str) -> (&'static str, String, Limit) {
    let limit = Limit { max_failures: WRONG_CODES_PER_USER_PER_DAY, window_seconds: 86_400 };
    ("sms-anon-wrong", user_id.to_string(), limit)
}

/// Wrong codes typed in a day by someone known to be the user (logged in, or in a reset after a
/// first proof), or by the service desk for them: each resend gives three tries. Each kind of
/// sender has its own, as for the texts: a password thief who types wrong step-up codes does not
/// use up the codes the user needs for a reset, or the service desk to verify them.
pub const WRONG_CODES_KNOWN_PER_DAY: u32 = 10;

pub fn wrong_codes_known(sender: Sender<'_>, user_id: &str) -> (&'static str, String, Limit) {
    let limit = Limit { max_failures: WRONG_CODES_KNOWN_PER_DAY, window_seconds: 86_400 };
    let scope = match sender {
        Sender::User => "sms-user-wrong",
        Sender::Proved { .. } => "sms-proved-wrong",
        Sender::ServiceDesk => "sms-desk-wrong",
        // Anonymous guesses have their budget (`wrong_codes`) and their decoys.
        Sender::Anonymous { .. } => "sms-anon-wrong",
    };
    (scope, user_id.to_string(), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SmsLimits {
        let hour = |n| Limit { max_failures: n, window_seconds: 3600 };
        SmsLimits {
            code_lifetime: 300,
            max_attempts: 3,
            resend_cooldown: 60,
            per_user: hour(5),
            per_ip: hour(20),
            per_number: hour(5),
            per_prefix: hour(50),
            countries: vec!["SE".into()],
        }
    }

    #[test]
    fn anonymous_flows_never_touch_the_users_or_the_service_desks_budgets() {
        let number = PhoneNumber::parse("0701234567", "SE").unwrap();
        let scopes = |s: Sender<'_>| -> Vec<&'static str> {
            s.budgets(&limits(), "u1", Some(("h", &number)), "192.0.2.7").into_iter().map(|b| b.0).collect()
        };
        let anonymous = scopes(Sender::Anonymous { flow: "f1", target: "u1" });
        for other in [scopes(Sender::User), scopes(Sender::ServiceDesk)] {
            assert!(anonymous.iter().all(|a| !other.contains(a)), "{anonymous:?} shares with {other:?}");
        }
        let decoy = Sender::Anonymous { flow: "f2", target: "name:nobody" }.budgets(&limits(), "", None, "192.0.2.7");
        assert_eq!(decoy.iter().map(|b| b.0).collect::<Vec<_>>(), anonymous, "a decoy counts like a real send");
        // After a first proof, only the flow's count is shared with the strangers' budgets.
        let proved = scopes(Sender::Proved { flow: "f1" });
        for (cap, _, _) in anonymous_caps(&limits(), "u1") {
            assert!(!proved.contains(&cap), "{proved:?}");
        }
        assert_eq!(proved.iter().filter(|p| anonymous.contains(p)).collect::<Vec<_>>(), [&"sms-anon-flow"]);
    }

    #[test]
    fn each_kind_of_sender_has_its_own_wrong_codes() {
        let scope = |sender| wrong_codes_known(sender, "u").0;
        let scopes = [scope(Sender::User), scope(Sender::Proved { flow: "f" }), scope(Sender::ServiceDesk)];
        assert!(scopes.iter().all(|s| *s != wrong_codes("u").0), "{scopes:?}");
        assert!(scopes[0] != scopes[1] && scopes[1] != scopes[2] && scopes[0] != scopes[2], "{scopes:?}");
    }
}
