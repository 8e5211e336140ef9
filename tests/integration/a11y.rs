//! Every page type in a real browser, in Swedish and in English: axe-core finds no WCAG 2.1 A/AA
//! violation, and a Swedish page shows no English word and no raw catalogue key.

use std::collections::BTreeSet;

use fantoccini::Locator;
use stjarna::i18n::Lang;

use crate::e2e::{browser, log_in, submit};
use crate::helpers::in_ci;
use crate::reset::enrolled;
use crate::sims::SimTest;

/// axe-core's script, installed from npm by the test script.
fn axe_source() -> Option<String> {
    let path = std::env::var("STJARNA_TEST_AXE")
        .unwrap_or_else(|_| format!("{}/tests/a11y/node_modules/axe-core/axe.min.js", env!("CARGO_MANIFEST_DIR")));
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => {
            assert!(!in_ci(), "CI=true but axe-core is missing at {path} (scripts/test installs it)");
            eprintln!("skipped: no axe-core at {path}");
            None
        }
    }
}

/// Words of the English catalogue that the Swedish one never uses: one of them on a Swedish page
/// is English that slipped through.
fn english_only_words() -> BTreeSet<String> {
    let words = |lang: Lang| -> BTreeSet<String> {
        let c = lang.catalogue();
        c.keys().flat_map(|k| words_of(c.t(k))).collect()
    };
    let sv = words(Lang::Sv);
    words(Lang::En).difference(&sv).cloned().collect()
}

fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 3)
        .map(|w| w.to_lowercase())
        .filter(|w| !w.contains('{'))
        .collect()
}

struct Walk {
    c: fantoccini::Client,
    axe: String,
    english: BTreeSet<String>,
    lang: Lang,
    /// Names on the page that are data, not text (user names).
    data: Vec<String>,
    checked: Vec<String>,
}

impl Walk {
    /// Runs axe-core on the page as it is, and the language checks.
    async fn check(&mut self, what: &str) {
        let c = &self.c;
        c.execute(&self.axe, vec![]).await.unwrap();
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
              .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                  + v.nodes.map(n => n.target.join(' ')).join(', '))))
              .catch(e => done(['axe failed: ' + e]));
        "#;
        let found = c.execute_async(script, vec![]).await.unwrap();
        let violations: Vec<String> = serde_json::from_value(found).unwrap();
        let url = c.current_url().await.unwrap();
        assert!(violations.is_empty(), "{what} ({url}, {:?}): {}", self.lang, violations.join("\n"));
        let lang_attr = c.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap();
        assert_eq!(lang_attr.as_deref(), Some(self.lang.code()), "{what}: <html lang>");
        let mut text = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
        for d in &self.data {
            text = text.replace(d, " ");
        }
        let raw_key = regex_lite_key(&text);
        assert!(raw_key.is_none(), "{what} ({:?}) shows a raw key {raw_key:?}: {text}", self.lang);
        if self.lang == Lang::Sv {
            let english: Vec<String> = words_of(&text).into_iter().filter(|w| self.english.contains(w)).collect();
            assert!(english.is_empty(), "{what} shows English words {english:?} in Swedish: {text}");
        }
        self.checked.push(what.to_string());
    }

    async fn go(&mut self, url: &str, what: &str) {
        self.c.goto(url).await.unwrap();
        self.check(what).await;
    }

    /// A fresh browser state in `lang`.
    async fn start_over(&self, app_url: &str) {
        self.c.goto(&format!("{app_url}/health")).await.unwrap();
        self.c.delete_all_cookies().await.unwrap();
        let set = format!("document.cookie = 'stjarna_lang={}; path=/'", self.lang.code());
        self.c.execute(&set, vec![]).await.unwrap();
    }
}

/// A catalogue key as text (`login.error.invalid`): lower-case words joined by dots, at least two dots.
fn regex_lite_key(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'))
        .find(|w| {
            w.split('.').count() >= 3
                && w.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        })
        .map(str::to_string)
}

#[tokio::test]
async fn every_page_type_is_accessible_and_in_one_language() {
    let dc = require_dc!();
    let Some(axe) = axe_source() else { return };
    let (user, t) = enrolled(&dc, "a11y", |c| c).await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &user.dn).await;
    let newcomer = dc.create_user("a11ynew").await;
    let Some((c, _driver, _profile)) = browser().await else { return };
    let data = vec![
        user.name.clone(),
        user.display_name.clone(),
        newcomer.name.clone(),
        newcomer.display_name.clone(),
        "example.test".into(),
        "EXAMPLE".into(),
    ];
    let mut walk = Walk { c, axe, english: english_only_words(), lang: Lang::Sv, data, checked: Vec::new() };
    for lang in Lang::ALL {
        walk.lang = lang;
        walk_pages(&mut walk, &t, &user, &newcomer).await;
    }
    assert!(walk.checked.len() >= 40, "{:?}", walk.checked);
    walk.c.close().await.unwrap();
}

async fn walk_pages(
    walk: &mut Walk,
    t: &SimTest,
    user: &crate::helpers::TestUser,
    newcomer: &crate::helpers::TestUser,
) {
    let url = |p: &str| t.app.url(p);
    walk.start_over(&url("")).await;
    walk.go(&url("/login"), "login").await;
    // A refused login.
    walk.c.find(Locator::Id("username")).await.unwrap().send_keys(&user.name).await.unwrap();
    walk.c.find(Locator::Id("password")).await.unwrap().send_keys("Wrong-pw-123!").await.unwrap();
    submit(&walk.c, "login-submit").await;
    walk.check("login refused").await;
    walk.go(&url("/no-such-page"), "not found").await;
    walk.go(&url("/change"), "change").await;
    // Forgotten password: the start, the flow, the code step.
    walk.go(&url("/reset"), "reset start").await;
    walk.c.find(Locator::Id("username")).await.unwrap().send_keys(&user.name).await.unwrap();
    submit(&walk.c, "reset-start").await;
    walk.check("reset flow").await;
    submit(&walk.c, "use-sms").await;
    walk.check("reset code step").await;
    // BankID login: the QR page.
    walk.go(&url("/login"), "login again").await;
    submit(&walk.c, "login-bankid").await;
    walk.check("bankid").await;

    // A newcomer: the enrolment page, the number page, the code page.
    walk.start_over(&url("")).await;
    log_in(&walk.c, &url("/login"), &newcomer.name, &newcomer.password).await;
    walk.c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    walk.check("home").await;
    walk.go(&url("/enrol/sms"), "sms number").await;
    walk.c.find(Locator::Id("number")).await.unwrap().send_keys("0705556677").await.unwrap();
    submit(&walk.c, "send-code").await;
    walk.check("sms code").await;

    // An admin: every admin page, and the password asked again.
    walk.start_over(&url("")).await;
    log_in(&walk.c, &url("/login"), &user.name, &user.password).await;
    walk.c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    walk.check("home, enrolled").await;
    for (path, what) in [
        ("/admin", "admin dashboard"),
        ("/admin/users", "admin users"),
        (&format!("/admin/users?q={}", user.name) as &str, "admin search"),
        ("/admin/audit", "admin audit"),
        ("/admin/status", "admin status"),
        ("/admin/verify", "admin verify"),
        ("/reauth?back=/", "re-authentication"),
    ] {
        walk.go(&url(path), what).await;
    }
    walk.go(&url(&format!("/admin/users?q={}", user.name)), "admin search").await;
    walk.c.find(Locator::Css("#user-results a")).await.unwrap().click().await.unwrap();
    walk.c.wait().for_element(Locator::Id("user-name")).await.unwrap();
    walk.check("admin user").await;
    walk.go(&url("/sms/does-not-exist"), "not found, logged in").await;
}
