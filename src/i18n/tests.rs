use std::collections::BTreeSet;

use super::*;

fn keys(lang: Lang) -> BTreeSet<String> {
    lang.catalogue().keys().map(str::to_string).collect()
}

#[test]
fn both_catalogues_have_the_same_keys() {
    let sv = keys(Lang::Sv);
    let en = keys(Lang::En);
    let only_sv: Vec<_> = sv.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&sv).collect();
    assert!(only_sv.is_empty() && only_en.is_empty(), "only in sv: {only_sv:?}; only in en: {only_en:?}");
}

/// Every `t("key")` / `f("key"` in the templates and sources names a key the catalogues have.
#[test]
fn every_key_used_exists() {
    let sv = keys(Lang::Sv);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for dir in ["templates", "src"] {
        for file in walk(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for key in used_keys(&text) {
                // `t` shows one message; only `f` (which has the number) picks a plural form.
                let found = match key.strip_suffix('!') {
                    Some(exact) => sv.contains(exact),
                    None => sv.contains(&key) || sv.contains(&format!("{key}.other")),
                };
                if !found {
                    missing.push(format!("{}: {key}", file.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "keys missing from the catalogues:\n{}", missing.join("\n"));
}

fn used_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for marker in [".t(\"", ".f(\""] {
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            if let Some(end) = rest.find('"') {
                let key = &rest[..end];
                if key.contains('.') && !key.contains(' ') {
                    keys.push(if marker == ".t(\"" { format!("{key}!") } else { key.to_string() });
                }
            }
        }
    }
    // Messages built in code: audit details, and notices carried by a redirect.
    for (marker, prefix) in
        [("Detail::new(\"", "audit.detail."), ("Notice::error(\"", ""), ("Notice::success(\"", ""), (".also(\"", "")]
    {
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            if let Some(end) = rest.find('"') {
                keys.push(format!("{prefix}{}", &rest[..end]));
            }
        }
    }
    // Message keys returned as literals, e.g. BindRefusal::message_key.
    let mut rest = text;
    while let Some(i) = rest.find("=> \"") {
        rest = &rest[i + 4..];
        if let Some(end) = rest.find('"') {
            let key = &rest[..end];
            let sections = [
                "login.",
                "error.",
                "bankid.",
                "home.",
                "service.",
                "sms.",
                "reset.",
                "password.",
                "mail.",
                "admin.",
                "change.",
            ];
            if sections.iter().any(|s| key.starts_with(s)) && !key.contains(' ') {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn accept_language_picks_the_preferred_language_we_speak() {
    assert_eq!(Lang::from_accept_language("sv-SE,sv;q=0.9,en;q=0.8"), Some(Lang::Sv));
    assert_eq!(Lang::from_accept_language("de-DE,en;q=0.5,sv;q=0.4"), Some(Lang::En));
    assert_eq!(Lang::from_accept_language("en;q=0.2, sv;q=0.9"), Some(Lang::Sv));
    assert_eq!(Lang::from_accept_language("de, fr"), None);
    assert_eq!(Lang::from_accept_language(""), None);
}

#[test]
fn numbers_take_their_plural_form() {
    let sv = Lang::Sv.catalogue();
    assert_eq!(sv.f("admin.total", &[("n", "1")]), "1 händelse");
    assert_eq!(sv.f("admin.total", &[("n", "2")]), "2 händelser");
    assert_eq!(sv.f("admin.total", &[("n", "0")]), "0 händelser");
    let en = Lang::En.catalogue();
    assert_eq!(en.f("login.error.throttled", &[("minutes", "1")]), "Too many failed attempts. Try again in 1 minute.");
    assert_eq!(
        en.f("login.error.throttled", &[("minutes", "15")]),
        "Too many failed attempts. Try again in 15 minutes."
    );
}

#[test]
fn placeholders_are_filled_in() {
    let text = Lang::En.catalogue().f("login.error.throttled", &[("minutes", "7")]);
    assert!(text.contains('7') && !text.contains("{minutes}"), "{text}");
}
