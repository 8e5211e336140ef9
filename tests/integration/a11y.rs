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
pub fn axe_source() -> Option<String> {
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
    // A token with digits in it is a generated name or an id (a test's `psof807add8`), not a word.
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && w.chars().all(char::is_alphabetic))
        .map(|w| w.to_lowercase())
        .collect()
}

#[test]
fn the_word_check_finds_words_and_skips_generated_names() {
    assert_eq!(words_of("Logga ut, Add-on: {x} psof807add8 ab 2026"), ["logga", "add"]);
}

pub struct Walk {
    pub c: fantoccini::Client,
    axe: String,
    english: BTreeSet<String>,
    pub lang: Lang,
    /// Names on the page that are data, not text (user names).
    data: Vec<String>,
    pub checked: Vec<String>,
}

impl Walk {
    /// A walk in Swedish until told otherwise, among `users` (their names are data, not text).
    pub fn new(c: fantoccini::Client, axe: String, users: &[&crate::helpers::TestUser]) -> Self {
        let mut walk =
            Walk { c, axe, english: english_only_words(), lang: Lang::Sv, data: Vec::new(), checked: Vec::new() };
        walk.data.extend(["example.test".to_string(), "EXAMPLE".to_string()]);
        walk.meet(users);
        walk
    }

    /// Users whose names the pages will show from now on.
    pub fn meet(&mut self, users: &[&crate::helpers::TestUser]) {
        self.data.extend(users.iter().flat_map(|u| [u.name.clone(), u.display_name.clone()]));
    }

    /// axe-core's findings on the page as it is (WCAG 2.1 A and AA).
    async fn violations(&self) -> Vec<String> {
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
        serde_json::from_value(found).unwrap()
    }

    /// Runs axe-core on the page as it is, and the language checks.
    pub async fn check(&mut self, what: &str) {
        let violations = self.violations().await;
        let c = &self.c;
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

    /// After a POST: the page it led to is checked, and a reload and Back/Forward send nothing
    /// again (post/redirect/get: the browser shows a GET page, never "confirm form resubmission").
    pub async fn after_post(&mut self, what: &str) {
        self.check(what).await;
        let c = &self.c;
        let here = c.current_url().await.unwrap();
        let body = self.main_text().await;
        c.refresh().await.unwrap();
        assert_eq!(c.current_url().await.unwrap(), here, "{what}: a reload stays");
        assert_eq!(self.main_text().await, body, "{what}: a reload shows the same");
        c.back().await.unwrap();
        c.forward().await.unwrap();
        assert_eq!(c.current_url().await.unwrap(), here, "{what}: Back and Forward come back");
        // (Chrome's "Confirm Form Resubmission" page would keep the address, not the page.)
        assert_eq!(self.main_text().await, body, "{what}: Back and Forward show the same");
    }

    /// The page's text, without what moves by itself (the countdown to the next code).
    async fn main_text(&self) -> String {
        let script = "const m = document.querySelector('main').cloneNode(true); \
                      m.querySelectorAll('#resend-wait').forEach(e => e.remove()); \
                      return m.textContent.replace(/\\s+/g, ' ').trim();";
        self.c.execute(script, vec![]).await.unwrap().as_str().unwrap().to_string()
    }

    pub async fn go(&mut self, url: &str, what: &str) {
        self.c.goto(url).await.unwrap();
        self.check(what).await;
    }

    /// A fresh browser state in `lang`.
    pub async fn start_over(&self, app_url: &str) {
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
    let mut walk = Walk::new(c, axe, &[&user, &newcomer]);
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
    walk.after_post("login refused").await;
    walk.go(&url("/no-such-page"), "not found").await;
    assert!(walk.c.find(Locator::Css("header .lang-switch")).await.is_ok(), "an error page has the header");
    // A form whose token is wrong: the "expired form" page.
    walk.go(&url("/login"), "login").await;
    walk.c.execute("document.querySelector('input[name=csrf]').value = 'forged'", vec![]).await.unwrap();
    submit(&walk.c, "login-submit").await;
    walk.check("expired form").await;
    walk.go(&url("/change"), "change").await;
    // Forgotten password: the start, the flow, the code step.
    walk.go(&url("/reset"), "reset start").await;
    walk.c.find(Locator::Id("username")).await.unwrap().send_keys(&user.name).await.unwrap();
    submit(&walk.c, "reset-start").await;
    walk.after_post("reset flow").await;
    submit(&walk.c, "use-sms").await;
    walk.after_post("reset code step").await;
    // BankID login: the QR page.
    walk.go(&url("/login"), "login again").await;
    submit(&walk.c, "login-bankid").await;
    walk.after_post("bankid").await;

    // A newcomer: the enrolment page, the number page, the code page.
    walk.start_over(&url("")).await;
    log_in(&walk.c, &url("/login"), &newcomer.name, &newcomer.password).await;
    walk.c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    walk.check("home").await;
    // axe does not measure symbols: the small stars (they tell what a service is worth) are
    // measured here, against the white card, for text contrast.
    let color = walk
        .c
        .execute("return getComputedStyle(document.querySelector('.service-stars')).color", vec![])
        .await
        .unwrap();
    let ratio = contrast_with_white(color.as_str().unwrap());
    assert!(ratio >= 4.5, "service stars {color} on white: {ratio:.2}:1");
    walk.go(&url("/enrol/sms"), "sms number").await;
    walk.c.find(Locator::Id("number")).await.unwrap().send_keys("0705556677").await.unwrap();
    submit(&walk.c, "send-code").await;
    walk.after_post("sms code").await;

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
    assert!(walk.c.find(Locator::Css("header form[action='/logout']")).await.is_ok(), "logout on an error page");
}

/// The check finds what it looks for: a page with an image without a text alternative and a
/// pale word fails it. (Styled through the DOM: the portal's CSP refuses inline styles.)
#[tokio::test]
async fn the_accessibility_check_finds_violations() {
    let dc = require_dc!();
    let Some(axe) = axe_source() else { return };
    let app = crate::helpers::spawn_app(&dc).await;
    let Some((c, _driver, _profile)) = browser().await else { return };
    let walk = Walk::new(c, axe, &[]);
    walk.c.goto(&app.url("/login")).await.unwrap();
    assert_eq!(walk.violations().await, Vec::<String>::new(), "the login page is clean");
    walk.c
        .execute(
            "document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"/favicon.svg\"><span id=\"pale\">Stjärna</span>'); \
             document.getElementById('pale').style.color = '#f2b01e'",
            vec![],
        )
        .await
        .unwrap();
    let found = walk.violations().await.join("\n");
    assert!(found.contains("image-alt") && found.contains("color-contrast"), "{found}");
    walk.c.close().await.unwrap();
}

/// WCAG's contrast ratio of an `rgb(r, g, b)` colour against white.
fn contrast_with_white(rgb: &str) -> f64 {
    let parts: Vec<f64> = rgb
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|p| p.trim().parse::<f64>().unwrap() / 255.0)
        .collect();
    let lin = |c: f64| if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
    let l = 0.2126 * lin(parts[0]) + 0.7152 * lin(parts[1]) + 0.0722 * lin(parts[2]);
    1.05 / (l + 0.05)
}

#[test]
fn contrast_is_measured_as_wcag_does() {
    assert!((contrast_with_white("rgb(242, 176, 30)") - 1.91).abs() < 0.01, "the old star colour");
    assert!((contrast_with_white("rgb(0, 0, 0)") - 21.0).abs() < 0.01);
}
