//! What an audit entry says about its event, in the reader's language.
//!
//! A detail is a message of the catalogues (`audit.detail.*`) and its values, stored as
//! `@key?name=value&…` and rendered when read: on the admin pages in the admin's language, in
//! forwarded events and logs in English. A value whose name ends in `_key` is itself a catalogue
//! key (a service, a purpose, a password rule) and is translated too; other values (masked
//! numbers, counts, names, protocol codes) are shown as they are.

use crate::i18n::{Catalogue, Lang};

/// Where the messages live in the catalogues.
const SECTION: &str = "audit.detail.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    key: &'static str,
    args: Vec<(&'static str, String)>,
}

/// The longest value a detail keeps, in characters.
const MAX_VALUE: usize = 300;

impl Detail {
    /// The message `audit.detail.{key}`.
    pub fn new(key: &'static str) -> Detail {
        Detail { key, args: Vec::new() }
    }

    /// A value, cut to MAX_VALUE characters (so that the stored detail, which is capped, never
    /// loses its later arguments or ends in the middle of an escape), its control characters
    /// (line breaks, escapes) made spaces: a value someone typed cannot start a line of its own in
    /// a log, a syslog message or the page.
    pub fn arg(mut self, name: &'static str, value: impl ToString) -> Detail {
        let value: String = value.to_string().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let value = match value.char_indices().nth(MAX_VALUE) {
            Some((cut, _)) => value[..cut].to_string(),
            None => value,
        };
        self.args.push((name, value));
        self
    }

    /// A service by its id (`bankid`, `sms`), shown by its name.
    pub fn service(self, id: &str) -> Detail {
        self.arg("service_key", format!("service.{id}.name"))
    }

    /// What a flow was for (`enrol`, `verify`, `reset`, …).
    pub fn purpose(self, id: &str) -> Detail {
        self.arg("purpose_key", format!("audit.purpose.{id}"))
    }

    /// How a flow ended: a BankID hint code, or ours (`mismatch`, `notEnrolled`, …). A code the
    /// catalogues do not describe is shown as it is.
    pub fn hint(purpose: &str, hint: &str) -> Detail {
        Detail::new("hint").purpose(purpose).arg("hint_key", format!("audit.hint.{hint}"))
    }

    pub fn encode(&self) -> String {
        let query = serde_urlencoded::to_string(&self.args).unwrap_or_default();
        if query.is_empty() { format!("@{}", self.key) } else { format!("@{}?{query}", self.key) }
    }
}

/// What an entry says, in the catalogue's language: its detail, and who did it when a member of
/// staff did it about someone else (unless the detail names them already).
pub fn describe(record: &crate::storage::AuditRecord, i: &Catalogue) -> String {
    let stored = match &record.actor {
        Some(actor) => Some(done_by(record.detail.clone(), actor)),
        None => record.detail.clone(),
    };
    stored.map(|d| render_in(&d, i)).unwrap_or_default()
}

/// A stored detail with who did it (`by`), unless it names them already (`actor`; or `by`, as
/// entries stored before the actor had a column of its own do). An entry without a detail gets
/// one that only says by whom; text stored before details were catalogued is kept as it is.
fn done_by(stored: Option<String>, by: &str) -> String {
    let Some(stored) = stored else { return Detail::new("by_only").arg("by", by).encode() };
    let Some(message) = stored.strip_prefix('@') else { return stored };
    let query = message.split_once('?').map(|(_, q)| q).unwrap_or("");
    let args: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    if args.iter().any(|(name, _)| name == "actor" || name == "by") {
        return stored;
    }
    let by = serde_urlencoded::to_string([("by", by)]).unwrap_or_default();
    if query.is_empty() && !message.contains('?') { format!("{stored}?{by}") } else { format!("{stored}&{by}") }
}

/// A stored detail in `lang`. Details written before they were catalogued are shown as stored.
pub fn render(stored: &str, lang: Lang) -> String {
    render_in(stored, lang.catalogue())
}

pub fn render_in(stored: &str, i: &Catalogue) -> String {
    let Some(message) = stored.strip_prefix('@') else { return stored.to_string() };
    let (key, query) = message.split_once('?').unwrap_or((message, ""));
    let args: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let mut values: Vec<(String, String)> = Vec::new();
    for (name, value) in args {
        match name.strip_suffix("_key") {
            Some(base) => {
                let text = value.split(',').map(|k| translate(i, k)).collect::<Vec<_>>().join(", ");
                values.push((base.to_string(), text));
            }
            None => values.push((name, value)),
        }
    }
    let full = format!("{SECTION}{key}");
    if !i.has(&full) {
        // A detail from a newer or older version than this catalogue: its key and values as stored.
        let shown: Vec<String> = values.iter().map(|(n, v)| format!("{n}={v}")).collect();
        return format!("{key}: {}", shown.join(", "));
    }
    // Filled in order: a translated value may hold a later value's placeholder.
    let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let text = i.f(&full, &pairs);
    match values.iter().find(|(n, _)| n == "by") {
        // Who did it, after what the message says (unless the message says it itself).
        Some((_, by)) if !i.t(&full).contains("{by}") => format!("{text}{}", i.f("audit.by", &[("by", by)])),
        _ => text,
    }
}

/// A catalogue key's text; for a key the catalogues lack, its last part (a protocol code).
fn translate<'a>(i: &'a Catalogue, key: &'a str) -> &'a str {
    match i.t(key) {
        same if same == key => key.rsplit('.').next().unwrap_or(key),
        text => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_reads_in_either_language_and_old_text_as_it_was() {
        let d = Detail::new("code_sent").purpose("verify").arg("number", "+46 70 *** ** 67").encode();
        assert_eq!(render(&d, Lang::En), "verify: code sent to +46 70 *** ** 67");
        assert_eq!(render(&d, Lang::Sv), "verifiering: kod skickad till +46 70 *** ** 67");
        assert_eq!(render("plain text from before", Lang::Sv), "plain text from before");
    }

    #[test]
    fn an_entry_done_by_someone_else_says_by_whom() {
        let d = done_by(
            Some(Detail::new("code_sent").purpose("verify").arg("number", "+46 70 *** ** 67").encode()),
            "agent&1",
        );
        assert_eq!(render(&d, Lang::En), "verify: code sent to +46 70 *** ** 67 (by agent&1)");
        assert_eq!(render(&d, Lang::Sv), "verifiering: kod skickad till +46 70 *** ** 67 (av agent&1)");
        let bare = done_by(Some(Detail::new("flow_expired").encode()), "agent");
        assert_eq!(render(&bare, Lang::En), "flow expired (by agent)");
        assert_eq!(render(&done_by(None, "agent"), Lang::Sv), "av agent");
        // A detail that names its actor already, and text from before the catalogues, stay.
        let lifted = Detail::new("lifted").arg("n", 1).service("sms").arg("actor", "admin").encode();
        assert_eq!(done_by(Some(lifted.clone()), "agent"), lifted);
        assert_eq!(done_by(Some("plain".into()), "agent"), "plain");
    }

    #[test]
    fn an_entry_shows_its_actor_after_its_detail() {
        let record = |detail: Option<String>, actor: Option<&str>| crate::storage::AuditRecord {
            id: 1,
            at: 0,
            event: "sms-check".into(),
            outcome: "success".into(),
            username: None,
            user_id: None,
            source_ip: None,
            user_agent: None,
            request_id: None,
            detail,
            actor: actor.map(str::to_string),
        };
        let verified = Detail::new("verified").purpose("verify").encode();
        let sv = Lang::Sv.catalogue();
        assert_eq!(describe(&record(Some(verified.clone()), Some("agent")), sv), "verifiering: verifierad (av agent)");
        assert_eq!(describe(&record(Some(verified.clone()), None), sv), "verifiering: verifierad");
        assert_eq!(describe(&record(None, Some("agent")), sv), "av agent");
        assert_eq!(describe(&record(None, None), sv), "");
        // An entry from before the column, with `by` in its detail, reads as it did.
        let old = done_by(Some(verified), "agent");
        assert_eq!(describe(&record(Some(old.clone()), None), sv), "verifiering: verifierad (av agent)");
        assert_eq!(describe(&record(Some(old), Some("agent")), sv), "verifiering: verifierad (av agent)");
    }

    #[test]
    fn a_typed_value_cannot_break_a_line() {
        let d =
            Detail::new("user_search").arg("n", 0).arg("query", "x\n2026-12-02 INFO audit: forged\u{1b}[31m").encode();
        let shown = render(&d, Lang::En);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(shown, "search for “x 2026-12-02 INFO audit: forged [31m”: 0 shown");
    }

    #[test]
    fn counts_take_their_plural_form() {
        let one = Detail::new("reset_done").arg("services", "BankID").arg("ended", 1).encode();
        assert_eq!(render(&one, Lang::En), "verified with BankID; 1 portal session ended");
        assert_eq!(render(&one, Lang::Sv), "verifierad med BankID; 1 session i portalen avslutad");
        let two = Detail::new("reset_done").arg("services", "BankID").arg("ended", 2).encode();
        assert_eq!(render(&two, Lang::Sv), "verifierad med BankID; 2 sessioner i portalen avslutade");
    }

    #[test]
    fn an_unknown_key_shows_its_values_and_long_values_are_cut_whole() {
        assert_eq!(render("@no_such_message?code=x1&n=2", Lang::Sv), "no_such_message: code=x1, n=2");
        let long = "ä".repeat(1000);
        let d = Detail::new("code_sent").purpose("verify").arg("number", &long).encode();
        assert!(d.len() < 2000, "under the stored cap: {}", d.len());
        assert_eq!(render(&d, Lang::En), format!("verify: code sent to {}", "ä".repeat(300)));
    }
}
