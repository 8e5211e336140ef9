//! Swedish and English: every string a user sees comes from the catalogues in `i18n/*.toml`.

use std::collections::HashMap;
use std::sync::LazyLock;

use intl_pluralrules::{PluralCategory, PluralRuleType, PluralRules};

/// The languages the portal speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    #[default]
    Sv,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Sv, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "sv" | "sv-se" | "sv-fi" => Some(Lang::Sv),
            "en" | "en-gb" | "en-us" => Some(Lang::En),
            c if c.starts_with("sv-") => Some(Lang::Sv),
            c if c.starts_with("en-") => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header, by its q-values.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            if let Some(lang) = Lang::from_code(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// The catalogue for this language.
    pub fn catalogue(self) -> &'static Catalogue {
        match self {
            Lang::Sv => &SV,
            Lang::En => &EN,
        }
    }
}

/// One language's messages, keyed like `login.error.invalid`.
///
/// A message that depends on a number has its plural forms as a table (`one`, `other`, and what
/// else the language's CLDR rules name): `f` picks the form for the first argument that the
/// message uses and that is a number.
pub struct Catalogue {
    lang: Lang,
    messages: HashMap<String, String>,
    plurals: PluralRules,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue").field("lang", &self.lang).field("messages", &self.messages.len()).finish()
    }
}

static SV: LazyLock<Catalogue> = LazyLock::new(|| Catalogue::parse(Lang::Sv, include_str!("../../i18n/sv.toml")));
static EN: LazyLock<Catalogue> = LazyLock::new(|| Catalogue::parse(Lang::En, include_str!("../../i18n/en.toml")));

impl Catalogue {
    fn parse(lang: Lang, text: &str) -> Catalogue {
        let table: toml::Table =
            text.parse().unwrap_or_else(|e| panic!("i18n/{}.toml is not valid TOML: {e}", lang.code()));
        let mut messages = HashMap::new();
        flatten("", &table, &mut messages);
        let id: unic_langid::LanguageIdentifier = lang.code().parse().expect("a language code");
        let plurals = PluralRules::create(id, PluralRuleType::CARDINAL).expect("CLDR has sv and en");
        Catalogue { lang, messages, plurals }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The message for `key`. A missing key shows as the key itself (a test keeps that from shipping).
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        self.messages.get(key).map(String::as_str).unwrap_or(key)
    }

    /// Whether the catalogue has `key`, as a message or as plural forms.
    pub fn has(&self, key: &str) -> bool {
        self.messages.contains_key(key) || self.messages.contains_key(&format!("{key}.other"))
    }

    /// The message for `key` with `{name}` placeholders filled in, in the plural form its number
    /// asks for.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = match self.messages.get(key) {
            Some(message) => message.clone(),
            None => self.plural(key, args).to_string(),
        };
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The plural form of `key` for the first number among `args` that its `other` form uses.
    fn plural<'a>(&'a self, key: &'a str, args: &[(&str, &str)]) -> &'a str {
        let other = format!("{key}.other");
        let Some(other_text) = self.messages.get(&other) else { return key };
        let count = args
            .iter()
            .filter(|(name, _)| other_text.contains(&format!("{{{name}}}")))
            .find_map(|(_, value)| value.parse::<u64>().ok());
        let category = match count.map(|n| self.plurals.select(n)) {
            Some(Ok(PluralCategory::ZERO)) => "zero",
            Some(Ok(PluralCategory::ONE)) => "one",
            Some(Ok(PluralCategory::TWO)) => "two",
            Some(Ok(PluralCategory::FEW)) => "few",
            Some(Ok(PluralCategory::MANY)) => "many",
            _ => "other",
        };
        self.messages.get(&format!("{key}.{category}")).unwrap_or(other_text)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => panic!("i18n key {key} must be a string, not {other}"),
        }
    }
}

#[cfg(test)]
mod tests;
