//! The README's walkthroughs from start to finish in a real browser, in Swedish and in English:
//! enrolling Mobile BankID and a mobile code, changing a password, resetting a forgotten one,
//! unlocking with BankID alone, and the administration (a caller verified by code and by BankID,
//! a revocation, the audit trail). Every page on the way is checked as the accessibility walk
//! checks it (axe-core, one language, no raw key), and after each POST a reload and Back/Forward
//! send nothing again.

use std::time::Duration;

use fantoccini::Locator;
use stjarna::i18n::Lang;

use crate::a11y::{Walk, axe_source};
use crate::e2e::{approve_in_app, browser, real_time, submit, submit_css};
use crate::helpers::TestUser;
use crate::reset::enrolled;
use crate::sims::{ANNA, BERTIL, SimTest};

/// Ida Isaksson in the BankID simulator.
const IDA: &str = "199001012385";

/// Someone new to the portal, with their own BankID and phone.
struct Newcomer {
    user: TestUser,
    identity: &'static str,
    number: &'static str,
    e164: &'static str,
}

#[tokio::test]
async fn every_readme_walkthrough_in_both_languages() {
    let dc = require_dc!();
    let Some(axe) = axe_source() else { return };
    // An employee who enrolled Anna's BankID and a mobile code, and an administrator.
    let (employee, t) = enrolled(&dc, "wemp", |c| c).await;
    let admin = dc.create_user("wadm").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let _ticker = real_time(&t.app.clock);
    let Some((c, _driver, _profile)) = browser().await else { return };
    let mut walk = Walk::new(c, axe, &[&admin, &employee]);
    for (lang, identity, number, e164) in
        [(Lang::Sv, BERTIL, "070-234 56 78", "+46702345678"), (Lang::En, IDA, "070-345 67 89", "+46703456789")]
    {
        walk.lang = lang;
        let user = dc.create_user(&format!("wnew{}", lang.code())).await;
        walk.meet(&[&user]);
        let newcomer = Newcomer { user, identity, number, e164 };
        enrol(&mut walk, &t, &newcomer).await;
        let changed = change(&mut walk, &t, &newcomer.user).await;
        assert_eq!(dc.bind(&newcomer.user.dn, &changed).await.0, 0, "the changed password works in AD");
        let reset = reset(&mut walk, &t, &newcomer).await;
        assert_eq!(dc.bind(&newcomer.user.dn, &reset).await.0, 0, "the new password works in AD");
        dc.lock(&employee).await;
        unlock(&mut walk, &t).await;
        assert_eq!(dc.attr(&employee.dn, "lockoutTime").await.as_deref(), Some("0"), "unlocked in AD");
        administer(&mut walk, &t, &admin, &newcomer).await;
    }
    assert!(walk.checked.len() >= 80, "{:?}", walk.checked);
    walk.c.close().await.unwrap();
}

async fn fill(c: &fantoccini::Client, id: &str, text: &str) {
    let field = c.wait().for_element(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(c: &fantoccini::Client, id: &str) {
    c.wait().for_element(Locator::Id(id)).await.unwrap().click().await.unwrap();
}

async fn wait_for(c: &fantoccini::Client, id: &str) {
    c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id(id)).await.unwrap();
}

/// Logs in through the form.
async fn log_in(walk: &mut Walk, t: &SimTest, user: &TestUser, what: &str) {
    walk.start_over(&t.app.url("")).await;
    walk.go(&t.app.url("/login"), "login").await;
    fill(&walk.c, "username", &user.name).await;
    fill(&walk.c, "password", &user.password).await;
    submit(&walk.c, "login-submit").await;
    walk.after_post(what).await;
}

/// The login page, and nothing behind it: the start page sends back to it.
async fn logged_out(walk: &Walk) {
    assert_eq!(walk.c.current_url().await.unwrap().path(), "/login");
    assert!(walk.c.find(Locator::Css("header form[action='/logout']")).await.is_err(), "no logout: nobody in");
}

async fn filled_stars(c: &fantoccini::Client) -> usize {
    let row = c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    row.find_all(Locator::Css(".star.filled")).await.unwrap().len()
}

/// Enrolling Mobile BankID and a mobile code, then logging out.
async fn enrol(walk: &mut Walk, t: &SimTest, n: &Newcomer) {
    log_in(walk, t, &n.user, "logged in").await;
    assert_eq!(filled_stars(&walk.c).await, 0);
    submit(&walk.c, "enrol-bankid").await;
    walk.after_post("BankID enrolment").await;
    approve_in_app(&walk.c, n.identity).await;
    walk.after_post("BankID enrolled").await;
    click(&walk.c, "bankid-next").await;
    assert_eq!(filled_stars(&walk.c).await, 3);
    walk.check("home, BankID enrolled").await;

    click(&walk.c, "enrol-sms").await;
    wait_for(&walk.c, "number").await;
    walk.check("mobile number").await;
    fill(&walk.c, "number", n.number).await;
    let seen = t.texts_count(n.e164);
    submit(&walk.c, "send-code").await;
    walk.after_post("mobile code sent").await;
    let code = t.next_code_to(n.e164, seen).await;
    fill(&walk.c, "code", &code).await;
    submit(&walk.c, "confirm-code").await;
    walk.after_post("mobile code enrolled").await;
    click(&walk.c, "sms-continue").await;
    assert_eq!(filled_stars(&walk.c).await, 5, "the star row is full");
    walk.check("home, star row full").await;
    submit_css(&walk.c, "header form[action='/logout'] button").await;
    walk.after_post("logged out").await;
    logged_out(walk).await;
}

/// Changing the password knowing the current one, without logging in: a common password first.
async fn change(walk: &mut Walk, t: &SimTest, user: &TestUser) -> String {
    let new = "Blå-hästar-springer-9";
    walk.go(&t.app.url("/change"), "change").await;
    fill(&walk.c, "username", &user.name).await;
    fill(&walk.c, "current", &user.password).await;
    fill(&walk.c, "password", "Sommar2026!").await;
    fill(&walk.c, "repeat", "Sommar2026!").await;
    submit(&walk.c, "change-password").await;
    walk.after_post("change refused").await;
    wait_for(&walk.c, "password-error").await;
    fill(&walk.c, "username", &user.name).await;
    fill(&walk.c, "current", &user.password).await;
    fill(&walk.c, "password", new).await;
    fill(&walk.c, "repeat", new).await;
    submit(&walk.c, "change-password").await;
    walk.after_post("password changed").await;
    wait_for(&walk.c, "change-done").await;
    new.to_string()
}

/// A forgotten password: the mobile code, then BankID, then a new password (a common one first).
async fn reset(walk: &mut Walk, t: &SimTest, n: &Newcomer) -> String {
    let new = "Tre-glada-kor-på-bete7";
    walk.start_over(&t.app.url("")).await;
    walk.go(&t.app.url("/login"), "login").await;
    click(&walk.c, "forgot").await;
    wait_for(&walk.c, "reset-start").await;
    walk.check("reset start").await;
    fill(&walk.c, "username", &n.user.name).await;
    submit(&walk.c, "reset-start").await;
    walk.after_post("reset services").await;
    let seen = t.texts_count(n.e164);
    submit(&walk.c, "use-sms").await;
    walk.after_post("reset code sent").await;
    let code = t.next_code_to(n.e164, seen).await;
    fill(&walk.c, "code", &code).await;
    submit(&walk.c, "confirm-code").await;
    walk.after_post("reset code confirmed").await;
    assert_eq!(filled_stars(&walk.c).await, 2);
    submit(&walk.c, "use-bankid").await;
    walk.after_post("reset BankID").await;
    approve_in_app(&walk.c, n.identity).await;
    walk.after_post("reset BankID confirmed").await;
    click(&walk.c, "bankid-next").await;
    wait_for(&walk.c, "choose-password").await;
    assert_eq!(filled_stars(&walk.c).await, 3, "the star row is full");
    walk.check("reset star row full").await;
    click(&walk.c, "choose-password").await;
    wait_for(&walk.c, "set-password").await;
    walk.check("new password").await;
    fill(&walk.c, "password", "Sommar2026!").await;
    fill(&walk.c, "repeat", "Sommar2026!").await;
    submit(&walk.c, "set-password").await;
    walk.after_post("new password refused").await;
    let common = walk.c.find(Locator::Css("li[data-rule='not_common']")).await.unwrap();
    assert_eq!(common.attr("class").await.unwrap().as_deref(), Some("bad"), "the refused rule is marked");
    fill(&walk.c, "password", new).await;
    fill(&walk.c, "repeat", new).await;
    submit(&walk.c, "set-password").await;
    walk.after_post("password reset").await;
    wait_for(&walk.c, "reset-message").await;
    new.to_string()
}

/// Unlocking only, with BankID finding the account ("Identify with BankID" on the reset page):
/// Anna's BankID, which the employee enrolled.
async fn unlock(walk: &mut Walk, t: &SimTest) {
    walk.start_over(&t.app.url("")).await;
    walk.go(&t.app.url("/reset"), "reset start").await;
    submit(&walk.c, "reset-bankid").await;
    walk.after_post("reset by BankID").await;
    approve_in_app(&walk.c, ANNA).await;
    wait_for(&walk.c, "unlock-only").await;
    walk.after_post("reset by BankID, star row full").await;
    submit(&walk.c, "unlock-only").await;
    walk.after_post("unlocked").await;
    wait_for(&walk.c, "reset-message").await;
}

/// The administration: the dashboard, a user, a caller verified by code and by BankID, a
/// revocation (an empty reason first), the audit trail filtered, the language switched.
async fn administer(walk: &mut Walk, t: &SimTest, admin: &TestUser, n: &Newcomer) {
    log_in(walk, t, admin, "admin logged in").await;
    click(&walk.c, "nav-admin").await;
    wait_for(&walk.c, "count-users").await;
    walk.check("dashboard").await;
    click(&walk.c, "nav-users").await;
    fill(&walk.c, "q", &n.user.name).await;
    submit_css(&walk.c, "form.search button").await;
    walk.check("user search").await;
    walk.c.find(Locator::Css("#user-results a")).await.unwrap().click().await.unwrap();
    wait_for(&walk.c, "user-name").await;
    walk.check("user").await;
    let user_page = walk.c.current_url().await.unwrap();

    // A caller verified by a code to the enrolled mobile.
    click(&walk.c, "nav-verify").await;
    wait_for(&walk.c, "verify-start").await;
    walk.check("verify a caller").await;
    fill(&walk.c, "username", &n.user.name).await;
    let seen = t.texts_count(n.e164);
    submit(&walk.c, "verify-start").await;
    walk.after_post("caller's code sent").await;
    let code = t.next_code_to(n.e164, seen).await;
    fill(&walk.c, "code", &code).await;
    submit(&walk.c, "verify-code").await;
    walk.after_post("caller verified by code").await;
    let message = walk.c.find(Locator::Id("verify-message")).await.unwrap().text().await.unwrap();
    assert!(message.contains(&n.user.display_name), "{message}");

    // And by BankID: a phone order the called person answers in the app.
    walk.go(&t.app.url("/admin/verify"), "verify a caller").await;
    fill(&walk.c, "username", &n.user.name).await;
    click(&walk.c, "method-bankid").await;
    click(&walk.c, "we-called").await;
    submit(&walk.c, "verify-start").await;
    walk.check("caller's BankID").await;
    let order = t.sim.state.phone_orders_for(n.identity).pop().expect("a phone order");
    let res = t
        .http
        .post(format!("{}/phone/{}", t.sim.app_url, order.order_ref))
        .form(&[("identity", n.identity)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    t.sim.state.approve(&order.order_ref).unwrap();
    walk.c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#verify-message.success")).await.unwrap();
    walk.after_post("caller verified by BankID").await;

    // A revocation: a reason of only spaces is refused, then one with words.
    walk.go(user_page.as_str(), "user").await;
    let reason = Locator::Css("form:has(#revoke-sms) input[name=reason]");
    walk.c.find(reason).await.unwrap().send_keys("   ").await.unwrap();
    submit(&walk.c, "revoke-sms").await;
    walk.after_post("revocation refused").await;
    wait_for(&walk.c, "admin-message").await;
    let class = walk.c.find(Locator::Id("admin-message")).await.unwrap().attr("class").await.unwrap();
    assert_eq!(class.as_deref(), Some("error"), "the refusal is an error");
    walk.c.find(reason).await.unwrap().send_keys("Tappad telefon").await.unwrap();
    submit(&walk.c, "revoke-sms").await;
    walk.after_post("revoked").await;
    let class = walk.c.find(Locator::Id("admin-message")).await.unwrap().attr("class").await.unwrap();
    assert_eq!(class.as_deref(), Some("success"), "the revocation is confirmed");
    assert!(walk.c.find(Locator::Id("revoke-sms")).await.is_err(), "the mobile code is revoked");
    assert!(walk.c.find(Locator::Id("revoke-bankid")).await.is_ok(), "BankID stays");

    // The audit trail, filtered.
    click(&walk.c, "nav-audit").await;
    wait_for(&walk.c, "f-event").await;
    walk.check("audit").await;
    walk.c.find(Locator::Id("f-outcome")).await.unwrap().select_by_value("failure").await.unwrap();
    submit_css(&walk.c, "#audit-filters button").await;
    walk.check("audit filtered").await;
    // Only failures: the refused revocation among them, the revocation itself not.
    let failure = if walk.lang == Lang::Sv { "Misslyckades" } else { "Failed" };
    let mut outcomes = Vec::new();
    for cell in walk.c.find_all(Locator::Css("#audit-rows td:nth-child(3)")).await.unwrap() {
        outcomes.push(cell.text().await.unwrap());
    }
    assert!(!outcomes.is_empty() && outcomes.iter().all(|o| o == failure), "{outcomes:?}");

    // The other language, then out.
    let lang = walk.lang;
    walk.lang = if lang == Lang::Sv { Lang::En } else { Lang::Sv };
    submit_css(&walk.c, "form.lang-switch button").await;
    walk.after_post("language switched").await;
    submit_css(&walk.c, "header form[action='/logout'] button").await;
    walk.check("admin logged out").await;
    logged_out(walk).await;
    walk.lang = lang;
}
