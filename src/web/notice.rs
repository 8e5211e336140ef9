//! Post/redirect/get for what a POST has to say when no flow keeps it: the message (catalogue
//! keys and their arguments) travels in the address the POST redirects to, sealed, and signed for
//! this browser, that page and ten minutes. A reload shows the same message and sends nothing again; a link
//! someone else made shows nothing, so nobody can put words (or a username) on our page, and a
//! message moved to another page shows nothing there.

use std::sync::Arc;

use actix_web::HttpResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::Random;
use crate::identity::DataKey;

use super::Page;
use super::pages::see_other;

/// How long a redirect's message is shown.
const NOTICE_SECONDS: i64 = 600;
/// What the receipt stands for (see [`super::csrf::CsrfKey::receipt`]).
const WHAT: &str = "notice";

/// What a POST leaves for the page it redirects to is sealed (encrypted and authenticated) for
/// the address: it may hold what was typed (a name that is really a password), and addresses end
/// up in browser history and proxies' access logs.
#[derive(Clone)]
pub struct NoteSeal(Arc<DataKey>);

impl NoteSeal {
    /// The key is derived from `secret` (the session secret, which every instance shares).
    pub fn new(secret: &[u8]) -> Self {
        Self(Arc::new(DataKey::derived(secret, b"stjarna-notes")))
    }

    pub fn seal(&self, note: &str, random: &dyn Random) -> String {
        URL_SAFE_NO_PAD.encode(self.0.seal(note, random))
    }

    /// A sealed note opened; None if it was not sealed with this key, or was changed.
    pub fn open(&self, sealed: &str) -> Option<String> {
        self.0.open(&URL_SAFE_NO_PAD.decode(sealed).ok()?)
    }
}

/// How a message is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Error,
    Success,
    Notice,
}

impl Tone {
    fn id(self) -> &'static str {
        match self {
            Tone::Error => "error",
            Tone::Success => "success",
            Tone::Notice => "notice",
        }
    }

    fn parse(s: &str) -> Tone {
        match s {
            "success" => Tone::Success,
            "notice" => Tone::Notice,
            _ => Tone::Error,
        }
    }

    /// The CSS class of the message box.
    pub fn class(self) -> &'static str {
        self.id()
    }
}

/// A message for the page a POST redirects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    tone: Tone,
    /// Catalogue keys, shown one after another.
    keys: Vec<String>,
    /// `{name}` values for the keys.
    args: Vec<(String, String)>,
    /// Values the page uses itself (the name typed, rules to mark), not shown as text.
    fields: Vec<(String, String)>,
    /// The request id to quote to the service desk, for our faults.
    reference: Option<String>,
}

impl Notice {
    pub fn error(key: &str) -> Notice {
        Notice::new(Tone::Error, key)
    }

    pub fn success(key: &str) -> Notice {
        Notice::new(Tone::Success, key)
    }

    /// Something to know before going on, neither an error nor a success.
    pub fn info(key: &str) -> Notice {
        Notice::new(Tone::Notice, key)
    }

    fn new(tone: Tone, key: &str) -> Notice {
        Notice { tone, keys: vec![key.to_string()], args: Vec::new(), fields: Vec::new(), reference: None }
    }

    /// Another message after the first.
    pub fn also(mut self, key: &str) -> Notice {
        self.keys.push(key.to_string());
        self
    }

    pub fn arg(mut self, name: &str, value: impl ToString) -> Notice {
        self.args.push((name.to_string(), capped(value.to_string())));
        self
    }

    /// A value typed into the form, shown in it again (the name typed). Cut to MAX_VALUE
    /// characters: it travels in the address (sealed), and a proxy may refuse a long one.
    pub fn field(mut self, name: &str, value: impl ToString) -> Notice {
        self.fields.push((name.to_string(), capped(value.to_string())));
        self
    }

    pub fn reference(mut self, request_id: &str) -> Notice {
        self.reference = Some(request_id.to_string());
        self
    }

    pub fn tone(&self) -> Tone {
        self.tone
    }

    /// A value the POST left for the page.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The message in the page's language.
    pub fn text(&self, page: &Page) -> String {
        let i = page.i18n();
        let args: Vec<(&str, &str)> = self.args.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut parts: Vec<String> = self.keys.iter().map(|k| i.f(k, &args)).collect();
        if let Some(r) = &self.reference {
            parts.push(format!("{} {r}", i.t("error.reference")));
        }
        parts.join(" ")
    }

    fn encode(&self) -> String {
        let mut pairs: Vec<(String, &str)> = vec![("t".into(), self.tone.id())];
        pairs.extend(self.keys.iter().map(|k| ("k".to_string(), k.as_str())));
        pairs.extend(self.args.iter().map(|(n, v)| (format!("a.{n}"), v.as_str())));
        pairs.extend(self.fields.iter().map(|(n, v)| (format!("f.{n}"), v.as_str())));
        if let Some(r) = &self.reference {
            pairs.push(("r".into(), r));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    fn decode(payload: &str) -> Option<Notice> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(payload).ok()?;
        let mut notice =
            Notice { tone: Tone::Error, keys: Vec::new(), args: Vec::new(), fields: Vec::new(), reference: None };
        for (name, value) in pairs {
            match name.as_str() {
                "t" => notice.tone = Tone::parse(&value),
                "k" => notice.keys.push(value),
                "r" => notice.reference = Some(value),
                n => {
                    if let Some(a) = n.strip_prefix("a.") {
                        notice.args.push((a.to_string(), value));
                    } else if let Some(f) = n.strip_prefix("f.") {
                        notice.fields.push((f.to_string(), value));
                    }
                }
            }
        }
        (!notice.keys.is_empty()).then_some(notice)
    }
}

impl Page {
    /// A 303 to `to` (a path on this site, with or without a query) that shows `notice` there; the
    /// signature covers the path, not the query.
    pub fn redirect_with(&self, to: &str, notice: &Notice) -> HttpResponse {
        see_other(&self.with_notice_for(to, notice, self.binding())).finish()
    }

    /// Where a redirect to `to` that shows `notice` there leads, for the browser binding `seed`
    /// (one this response gives the browser, as the logout's new CSRF cookie).
    pub fn with_notice_for(&self, to: &str, notice: &Notice, seed: &str) -> String {
        let payload = self.state.notes.seal(&notice.encode(), self.state.random.as_ref());
        let path = to.split('?').next().unwrap_or(to);
        let receipt = self.state.csrf.receipt(seed, &signed(path, &payload), self.state.clock.now());
        let query =
            serde_urlencoded::to_string([("note", payload.as_str()), ("sig", receipt.as_str())]).unwrap_or_default();
        let sep = if to.contains('?') { '&' } else { '?' };
        format!("{to}{sep}{query}")
    }

    /// The message a POST redirected here with, if this browser's and recent.
    pub fn notice(&self) -> Option<Notice> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&self.query).ok()?;
        let get = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let (payload, receipt) = (get("note")?, get("sig")?);
        let seed = self.csrf_seed.as_deref().filter(|s| !s.is_empty())?;
        let now = self.state.clock.now();
        let genuine = self.state.csrf.verify_receipt(seed, &signed(&self.path, payload), receipt, now, NOTICE_SECONDS);
        if genuine { Notice::decode(&self.state.notes.open(payload)?) } else { None }
    }

    /// The message as (text, CSS class), for views that take it so.
    pub fn notice_text(&self) -> Option<(String, &'static str)> {
        self.notice().map(|n| (n.text(self), n.tone.class()))
    }
}

/// What a notice's signature covers: what it is, the page it is for, and the message.
fn signed(path: &str, payload: &str) -> String {
    format!("{WHAT}\0{path}\0{payload}")
}

/// The longest value a notice carries, in characters.
const MAX_VALUE: usize = 256;

fn capped(value: String) -> String {
    match value.char_indices().nth(MAX_VALUE) {
        Some((cut, _)) => value[..cut].to_string(),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_survives_its_trip_through_the_address() {
        let n = Notice::error("login.error.invalid")
            .also("login.error.last_attempt")
            .arg("minutes", 15)
            .field("u", "anna & co=1")
            .reference("abc");
        assert_eq!(Notice::decode(&n.encode()), Some(n));
        assert_eq!(Notice::decode("t=error"), None, "a notice says something");
    }

    #[test]
    fn a_sealed_note_hides_what_it_holds_and_opens_only_as_sealed() {
        let key = NoteSeal::new(b"key");
        let sealed = key.seal("t=error&f.u=Sommar-Fika-2026!", &crate::clock::OsRandom);
        assert!(!sealed.contains("Sommar") && !sealed.contains('+') && !sealed.contains('/'), "{sealed}");
        assert_eq!(key.open(&sealed).as_deref(), Some("t=error&f.u=Sommar-Fika-2026!"));
        let mut changed = sealed.clone().into_bytes();
        changed[20] = if changed[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(&String::from_utf8(changed).unwrap()), None, "changed");
        assert_eq!(NoteSeal::new(b"other").open(&sealed), None, "another key");
        assert_eq!(key.open("t=error&f.u=x"), None, "a note in clear is no note");
    }
}
