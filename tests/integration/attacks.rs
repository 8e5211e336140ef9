//! The attacker's side, against Samba and the simulators: each test is an attack that worked
//! before the portal stopped it (a stolen password, a stolen session, a freshly swapped phone, an
//! enumeration), and checks that it fails now, and that the rightful user still gets through.

use crate::helpers::{csrf_in, location, new_client, text_of};
use crate::reset::enrolled;
use crate::sims::{ANNA, BERTIL, SimTest};

pub(crate) const ATTACKER_PHONE: &str = "0709999999";
pub(crate) const ATTACKER_E164: &str = "+46709999999";
pub(crate) const VICTIM_E164: &str = "+46701234567";

impl SimTest {
    /// Logs in as `name` in a browser of its own (the attacker's), replacing the test's client.
    pub(crate) async fn attacker_logs_in(&mut self, name: &str, password: &str) {
        self.app.client = new_client();
        let res = self.app.login(name, password).await;
        assert_eq!(res.status(), 303, "the stolen password works for logging in");
    }

    /// Submits a number on the mobile-code form (add, or replace with `replace`).
    pub(crate) async fn submit_number(&self, number: &str, replace: bool) -> reqwest::Response {
        let page = if replace { "/enrol/sms?replace=1" } else { "/enrol/sms" };
        let res = self.app.get(page).await;
        if res.status() == 303 {
            return res;
        }
        let csrf = csrf_in(&res.text().await.unwrap());
        let mut form = vec![("csrf", csrf.as_str()), ("country", "SE"), ("number", number)];
        if replace {
            form.push(("replace", "1"));
        }
        self.app.post("/enrol/sms", &form).await
    }

    /// POSTs a new password to a flow that should not allow it; the password must not change.
    pub(crate) async fn try_password(&self, flow: &str, dc: &crate::helpers::TestDc, user: &crate::helpers::TestUser) {
        let csrf = csrf_in(&self.app.get_html(flow).await);
        let pw = "Helt-nytt-lösen-42!";
        let res =
            self.app.post(&format!("{flow}/password"), &[("csrf", &csrf), ("password", pw), ("repeat", pw)]).await;
        let body = res.text().await.unwrap();
        assert!(text_of(&body, "reset-message").is_none_or(|m| !m.contains("bytt")), "{body}");
        assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "the old password still works");
        assert_eq!(dc.bind(&user.dn, pw).await.0, 49, "the new one was never set");
    }

    pub(crate) fn texts_to(&self, e164: &str) -> Vec<String> {
        self.sms.as_ref().unwrap().state.messages_to(e164).into_iter().map(|m| m.text).collect()
    }
}

#[tokio::test]
async fn a_stolen_password_cannot_add_or_replace_a_service() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "att-add", |c| c).await;
    t.attacker_logs_in(&user.name, &user.password).await;

    // A second phone, a second BankID, or a swapped BankID: each needs the enrolled factor first.
    let res = t.submit_number(ATTACKER_PHONE, false).await;
    let already = "/ Den tjänsten är redan registrerad";
    assert!(t.app.told(&res).await.starts_with(already), "a second number is never a silent overwrite");
    let res = t.submit_number(ATTACKER_PHONE, true).await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"));
    let res = t.post_from("/", "/enrol/bankid").await;
    assert!(t.app.told(&res).await.starts_with(already));
    let res = t.post_from("/", "/enrol/bankid/replace").await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"));
    let res = t.post_from("/", "/enrol/sms/remove").await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"));
    // A link made elsewhere says nothing.
    let home = t.app.get_html("/?m=verify-first").await;
    assert!(text_of(&home, "home-notice").is_none(), "{home}");

    assert!(t.texts_to(ATTACKER_E164).is_empty(), "nothing was sent to the attacker's phone");
    let store = t.app.store().await;
    let ids: Vec<(String,)> = store.fetch_all("SELECT user_id FROM sessions").await;
    let user_id = ids.first().expect("the attacker's session").0.clone();
    let sms = store.sms_enrolment(&user_id).await.unwrap().expect("the victim's number stays");
    assert!(sms.number_masked.ends_with("67"), "{}", sms.number_masked);
    let bankid = store.bankid_enrolment(&user_id).await.unwrap().expect("the victim's BankID stays");
    assert_eq!(bankid.pn_masked, "19811218-****");
    let blocked = t.app.audit().await.into_iter().filter(|a| a.event == "enrol" && a.outcome == "blocked").count();
    assert_eq!(blocked, 5, "every attempt is in the audit trail");
}

#[tokio::test]
async fn a_bankid_enrolment_cannot_overwrite_the_one_there_is() {
    let dc = require_dc!();
    let (_, t) = crate::sims::logged_in(&dc, "att-bid", |c| c).await;
    // Two enrolment orders started side by side (before either finished): the second to finish
    // must not replace the first.
    let first = t.start_enrol().await;
    let second = t.start_enrol().await;
    for (id, who) in [(&first, ANNA), (&second, BERTIL)] {
        let order = t.app_scan(&t.scan_qr_frame(id).await, who).await.unwrap();
        t.app_press(&order, "approve").await;
    }
    t.poll_message(&first).await;
    // The second order is authorised again before it is collected: there is a BankID now.
    assert_eq!(t.poll_message(&second).await, "Åtgärden avbruten. Försök igen.");
    let store = t.app.store().await;
    let all = store.all_enrolments().await.unwrap();
    assert_eq!(all.len(), 1);
    let bankid = store.bankid_enrolment(&all[0].user_id).await.unwrap().unwrap();
    assert_eq!(bankid.pn_masked, "19811218-****", "Anna's BankID stays");
    // And should two completions ever race, the storage itself refuses a second BankID.
    let second = stjarna::storage::BankIdEnrolmentRecord { pn_masked: "19701063-****".into(), ..bankid };
    assert!(!store.enrol_bankid(&second, stjarna::storage::EnrolMode::Add).await.unwrap());
    assert!(store.enrol_bankid(&second, stjarna::storage::EnrolMode::Replace).await.unwrap());
}

#[tokio::test]
async fn the_owner_replaces_a_number_after_proving_the_old_one_and_the_old_phone_is_told() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "att-repl", |c| c).await;
    t.attacker_logs_in(&user.name, &user.password).await; // the owner, this time, in a new browser
    // Proof with the enrolled mobile code, then the replacement.
    let res = t.post_from("/", "/verify/sms").await;
    let challenge = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to(VICTIM_E164).unwrap();
    let csrf = csrf_in(&t.app.get_html(&challenge).await);
    t.app.post(&challenge, &[("csrf", &csrf), ("code", &code)]).await;

    let res = t.submit_number("0702222222", true).await;
    assert_eq!(res.status(), 303, "the proved session may replace the number");
    let challenge = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46702222222").unwrap();
    let csrf = csrf_in(&t.app.get_html(&challenge).await);
    t.app.post(&challenge, &[("csrf", &csrf), ("code", &code)]).await;

    let old = t.texts_to(VICTIM_E164);
    let alert = old.last().expect("the old number is told");
    assert!(alert.contains("har ändrats") && alert.contains("servicedesken"), "{alert}");
    let mail = t.mail_to(&format!("{}@example.test", user.name), "Stjärna: en identitetstjänst har bytts").await;
    assert!(mail.text.contains("Mobilkod"), "{}", mail.text);
    let home = t.app.get_html("/").await;
    let masked = t.app.store().await.all_enrolments().await.unwrap();
    assert_eq!(masked.len(), 2);
    let sms = t.app.store().await.sms_enrolment(&masked[0].user_id).await.unwrap().unwrap();
    assert!(sms.number_masked.ends_with("22") && home.contains(&sms.number_masked), "the new number is enrolled");
}

#[tokio::test]
async fn an_attackers_session_ends_with_the_victims_reset() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "att-sess", |c| c).await;
    t.attacker_logs_in(&user.name, &user.password).await;
    let attacker = t.app.client.clone();
    assert_eq!(t.app.get("/").await.status(), 200, "the attacker is in");

    t.app.client = new_client(); // the victim, who forgot the password the attacker changed
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let done = t.set_new_password(&flow, "Helt-nytt-lösen-42!").await;
    assert!(text_of(&done, "reset-message").unwrap().contains("bytt"), "{done}");

    t.app.client = attacker;
    let res = t.app.get("/").await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login"), "the attacker's session is gone");
    let audit = t.app.audit().await;
    // The enrolling session and the attacker's.
    let reset = audit.iter().find(|a| a.event == "password-reset" && a.outcome == "success").unwrap();
    assert!(reset.detail.as_deref().unwrap_or("").contains("2 portal sessions ended"), "{:?}", reset.detail);
}

/// The page with what differs by request (tokens, the notice's signature, the typed name) taken
/// out.
fn normalised(html: &str, typed: &str) -> String {
    let csrf = csrf_in(html);
    let mut out = html.replace(&csrf, "CSRF").replace(typed, "NAME");
    // The note (sealed, with a fresh nonce each time) and its signature differ in every answer.
    for (name, value) in [("note=", "NOTE"), ("sig=", "SIG")] {
        let mut from = 0;
        while let Some(at) = out[from..].find(name).map(|n| from + n + name.len()) {
            let end = out[at..].find(['"', '&']).map_or(out.len(), |n| at + n);
            out.replace_range(at..end, value);
            from = at;
        }
    }
    out
}

#[tokio::test]
async fn change_tells_nobody_whether_anna_exists_or_is_locked() {
    let dc = require_dc!();
    let (enrolled_user, t) = enrolled(&dc, "att-chg", |c| c).await;
    let plain = dc.create_user("att-plain").await;
    let locked = dc.create_user("att-locked").await;
    dc.lock(&locked).await;
    let mut pages = Vec::new();
    for name in ["nobody-here-at-all", plain.name.as_str(), enrolled_user.name.as_str(), locked.name.as_str()] {
        let csrf = csrf_in(&t.app.get_html("/change").await);
        let form = [
            ("csrf", csrf.as_str()),
            ("username", name),
            ("current", "wrong-Pw-1!"),
            ("password", "a"),
            ("repeat", "b"),
        ];
        let res = t.app.post("/change", &form).await;
        assert!(location(&res).starts_with("/change?note="), "the same redirect for everyone");
        let html = t.app.follow(res).await;
        pages.push(normalised(&html, name));
    }
    for (i, page) in pages.iter().enumerate().skip(1) {
        assert_eq!(&pages[0], page, "page {i} differs from the unknown user's");
    }
    // And the login page, whole: a locked account with a wrong password reads as an unknown user.
    let mut logins = Vec::new();
    for name in ["nobody-here-at-all", plain.name.as_str(), enrolled_user.name.as_str(), locked.name.as_str()] {
        let res = t.app.login(name, "wrong-Pw-1!").await;
        assert!(location(&res).starts_with("/login?note="), "the same redirect for everyone");
        logins.push(normalised(&t.app.follow(res).await, name));
    }
    for (i, page) in logins.iter().enumerate().skip(1) {
        assert_eq!(&logins[0], page, "login page {i} differs from the unknown user's");
    }
}

#[tokio::test]
async fn a_protected_account_cannot_reset_itself_with_the_star_row() {
    let dc = require_dc!();
    let group = dc.create_group("att-prot").await;
    let inner = dc.create_group("att-prot-inner").await;
    dc.add_member(&group, &inner).await; // nested membership counts
    let protect = |c: String| {
        format!("[portal]\nservice_desk = \"IT-support, 08-123 456 00\"\n{c}protected_groups = [\"{group}\"]\n")
    };
    let (user, t) = enrolled(&dc, "att-adm", protect).await;
    dc.add_member(&inner, &user.dn).await;
    let flow = t.start_reset(&user.name).await;
    assert!(text_of(&t.app.get_html(&flow).await, "protected").is_none(), "nothing is said before a proof");
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "protected").expect("sent to the service desk").contains("servicedesken"));
    assert_eq!(
        text_of(&page, "service-desk").as_deref(),
        Some("IT-support, 08-123 456 00"),
        "and told how to reach it"
    );
    assert!(text_of(&page, "reset-enough").is_none());
    t.try_password(&flow, &dc, &user).await;

    // With `protected = "stars"`, the same account may reset with more stars than others.
    let stars =
        move |c: String| c + &format!("protected_groups = [\"{group}\"]\nprotected = \"stars\"\nprotected_stars = 5\n");
    let (user, t) = enrolled(&dc, "att-adm2", stars).await;
    dc.add_member(&inner, &user.dn).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_bankid(&flow, ANNA).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "reset-enough").is_none(), "3 stars are not enough for a privileged account");
    t.reset_sms(&flow).await;
    assert!(text_of(&t.app.get_html(&flow).await, "reset-enough").is_some(), "5 stars are");
}

/// The `value` of the first element matching `selector` in `html`.
/// A browser whose cookies a test can read and plant, as an attacker can in their own browser.
pub(crate) fn jar_client() -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = crate::helpers::client_builder().cookie_provider(jar.clone()).build().unwrap();
    (client, jar)
}

pub(crate) fn csrf_cookie(jar: &reqwest::cookie::Jar, base: &str) -> String {
    use reqwest::cookie::CookieStore;
    let all = jar.cookies(&base.parse().unwrap()).unwrap();
    let all = all.to_str().unwrap();
    all.split("; ").find_map(|c| c.strip_prefix("stjarna_csrf=")).unwrap().to_string()
}

#[tokio::test]
async fn a_code_challenge_started_before_the_victim_enrolled_cannot_complete_later() {
    let dc = require_dc!();
    let user = dc.create_user("att-stale").await;
    let mut t = crate::sims::spawn_with_sms(&dc, crate::sims::Gateway::Elks46, crate::reset::quick).await;
    let base = t.app.address.clone();
    // The attacker, with the password, starts a mobile-code enrolment to their own phone,
    // does not finish it, and keeps the browser's cookie.
    let (attacker, jar) = jar_client();
    t.app.client = attacker.clone();
    t.app.login(&user.name, &user.password).await;
    let challenge = location(&t.submit_number(ATTACKER_PHONE, false).await);
    assert!(challenge.starts_with("/sms/"), "{challenge}");
    let old_csrf = csrf_cookie(&jar, &base);

    // The victim enrols BankID: the attacker's session ends.
    t.app.client = new_client();
    t.app.login(&user.name, &user.password).await;
    t.enrol(ANNA).await;

    // Logged in again (the password still works), with the old cookie planted back, the
    // attacker types the code: a second service now needs the BankID first.
    t.app.client = attacker;
    t.app.login(&user.name, &user.password).await;
    jar.add_cookie_str(&format!("stjarna_csrf={old_csrf}; Path=/"), &base.parse().unwrap());
    let page = t.app.get_html(&challenge).await;
    let code = t.sms.as_ref().unwrap().state.last_code_to(ATTACKER_E164).unwrap();
    let res = t.app.post(&challenge, &[("csrf", &csrf_in(&page)), ("code", &code)]).await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"), "the stale enrolment needs proof now");
    let res = t.app.post(&format!("{challenge}/resend"), &[("csrf", &csrf_in(&page))]).await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"), "nor can it be revived");
    let store = t.app.store().await;
    let all = store.all_enrolments().await.unwrap();
    assert_eq!(all.iter().map(|e| e.service.as_str()).collect::<Vec<_>>(), vec!["bankid"]);
}

#[tokio::test]
async fn a_bankid_order_started_before_the_victim_enrolled_cannot_complete_later() {
    let dc = require_dc!();
    let user = dc.create_user("att-stale-b").await;
    let mut t = crate::sims::spawn_with_sms(&dc, crate::sims::Gateway::Elks46, crate::reset::quick).await;
    let base = t.app.address.clone();
    let (attacker, jar) = jar_client();
    t.app.client = attacker.clone();
    t.app.login(&user.name, &user.password).await;
    let order = t.start_enrol().await;
    let old_csrf = csrf_cookie(&jar, &base);

    // The victim enrols a mobile code: the attacker's session ends.
    t.app.client = new_client();
    t.app.login(&user.name, &user.password).await;
    let own = location(&t.submit_number("0701234567", false).await);
    let code = t.sms.as_ref().unwrap().state.last_code_to(VICTIM_E164).unwrap();
    t.app.post(&own, &[("csrf", &csrf_in(&t.app.get_html(&own).await)), ("code", &code)]).await;

    // The attacker approves the order in their own app and polls with the cookie, no session.
    t.app.client = attacker;
    let order_ref = t.app_scan(&t.scan_qr_frame(&order).await, BERTIL).await.unwrap();
    t.app_press(&order_ref, "approve").await;
    t.app.clock.advance_seconds(2);
    assert_eq!(t.app.get(&format!("/bankid/{order}/status")).await.status(), 404, "no session, no collect");
    // Logged in again with the old cookie planted back: the order is cancelled, not completed.
    t.app.login(&user.name, &user.password).await;
    jar.add_cookie_str(&format!("stjarna_csrf={old_csrf}; Path=/"), &base.parse().unwrap());
    t.app.clock.advance_seconds(2);
    let status: serde_json::Value = t.app.get(&format!("/bankid/{order}/status")).await.json().await.unwrap();
    assert_eq!(status["state"], "cancelled");
    let all = t.app.store().await.all_enrolments().await.unwrap();
    assert_eq!(all.iter().map(|e| e.service.as_str()).collect::<Vec<_>>(), vec!["sms"]);
}

#[tokio::test]
async fn a_bankid_enrolled_an_hour_ago_logs_nobody_in() {
    let dc = require_dc!();
    let cooling = |c: String| c.replace("cooldown_hours = 0", "cooldown_hours = 24");
    let (user, mut t) = enrolled(&dc, "att-blogin", cooling).await;
    let login = async |t: &SimTest| {
        let id = crate::sims::flow_id(&t.post_from("/login", "/login/bankid").await);
        let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
        t.app_press(&order, "approve").await;
        t.app.clock.advance_seconds(2);
        t.app.get(&format!("/bankid/{id}")).await
    };
    t.app.clock.advance_seconds(3600);
    t.app.client = new_client();
    let res = login(&t).await;
    let error = t.app.error_after(res, "login-error").await;
    assert!(error.contains("registrerades nyligen"), "{error}");
    assert_eq!(t.app.get("/").await.status(), 303, "not logged in");
    t.app.clock.advance_seconds(24 * 3600);
    t.app.client = new_client();
    let res = login(&t).await;
    assert_eq!(location(&res), "/", "a day later it logs in");
    assert!(t.app.get_html("/").await.contains(&user.display_name));
}
