//! Password reset and unlock against Samba AD, with SMS, BankID and mail through the simulators.

use std::time::{Duration, Instant};

use crate::helpers::{TestDc, TestUser, csrf_in, location, new_client, text_of};
use crate::sims::{ANNA, BERTIL, Gateway, SimTest, spawn_with_sms};

pub(crate) const NEW_PASSWORD: &str = "Tre-glada-kor-på-bete7";

/// Fast answers in tests (the floor still applies, just lower).
pub fn quick(c: String) -> String {
    c + "\n[reset]\nmin_response_ms = 300\n"
}

/// A user who enrolled BankID (as Anna) and a mobile code, in a portal with everything simulated.
pub async fn enrolled(dc: &TestDc, prefix: &str, edit: impl FnOnce(String) -> String) -> (TestUser, SimTest) {
    let user = dc.create_user(prefix).await;
    let mut t = spawn_with_sms(dc, Gateway::Elks46, |c| edit(quick(c))).await;
    t.app.login(&user.name, &user.password).await;
    t.enrol(ANNA).await;
    let csrf = csrf_in(&t.app.get_html("/enrol/sms").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0701234567")]).await;
    let sms = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    let csrf = csrf_in(&t.app.get_html(&sms).await);
    t.app.post(&sms, &[("csrf", &csrf), ("code", &code)]).await;
    t.app.client = new_client();
    (user, t)
}

impl SimTest {
    /// Starts a reset for `name`; returns the flow path `/reset/{id}`.
    pub async fn start_reset(&self, name: &str) -> String {
        let csrf = csrf_in(&self.app.get_html("/reset").await);
        let res = self.app.post("/reset", &[("csrf", &csrf), ("username", name)]).await;
        assert_eq!(res.status(), 303);
        location(&res)
    }

    pub async fn post_in(&self, flow: &str, action: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let csrf = csrf_in(&self.app.get_html(flow).await);
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(extra);
        self.app.post(&format!("{flow}{action}"), &form).await
    }

    /// Posts a step of the flow and follows its redirect (post/redirect/get): the page it shows.
    pub async fn step(&self, flow: &str, action: &str, extra: &[(&str, &str)]) -> String {
        let res = self.post_in(flow, action, extra).await;
        assert_eq!(res.status(), 303, "{action}: post/redirect/get");
        self.app.get_html(&location(&res)).await
    }

    /// Verifies the flow with the mobile code.
    pub async fn reset_sms(&self, flow: &str) {
        let seen = self.texts_count("+46701234567");
        let res = self.post_in(flow, "/sms", &[]).await;
        assert_eq!(res.status(), 303, "post/redirect/get");
        assert!(location(&res).starts_with(&format!("{flow}?m=")), "{}", location(&res));
        let code = self.next_code_to("+46701234567", seen).await;
        self.post_in(flow, "/sms/check", &[("code", &code)]).await;
    }

    /// Verifies the flow with BankID as `identity`.
    pub async fn reset_bankid(&self, flow: &str, identity: &str) {
        let res = self.post_in(flow, "/bankid", &[]).await;
        let bankid = crate::sims::flow_id(&res);
        let order = self.app_scan(&self.scan_qr_frame(&bankid).await, identity).await.unwrap();
        // Whatever name was typed (it may be a password), the phone shows none.
        let shown = self.sim.state.order(&order).map(|o| o.visible_text);
        assert!(
            shown.as_deref().is_some_and(|t| t
                .contains(": återställ ditt lösenord.\n\nGodkänn bara om du själv nyss startade detta på 127.0.0.1.")),
            "{shown:?}"
        );
        self.app_press(&order, "approve").await;
        self.poll_message(&bankid).await;
    }

    /// Resets `name`'s password to `password` with both services, and checks the user is told it
    /// is done; the flow's address.
    pub async fn reset_told_done(&self, name: &str, password: &str) -> String {
        let flow = self.start_reset(name).await;
        self.reset_sms(&flow).await;
        self.reset_bankid(&flow, crate::sims::ANNA).await;
        let done = self.set_new_password(&flow, password).await;
        assert_eq!(
            text_of(&done, "reset-message").as_deref(),
            Some("Ditt lösenord är bytt och ditt konto är upplåst. Du kan logga in med det nya lösenordet."),
            "{done}"
        );
        flow
    }

    pub async fn set_new_password(&self, flow: &str, password: &str) -> String {
        let page = self.app.get_html(&format!("{flow}/password")).await;
        let csrf = csrf_in(&page);
        let res = self
            .app
            .post(&format!("{flow}/password"), &[("csrf", &csrf), ("password", password), ("repeat", password)])
            .await;
        // Post/redirect/get: the flow's page (done) or the password page again (refused).
        self.app.follow(res).await
    }
}

#[tokio::test]
async fn an_enrolled_user_resets_the_password_with_sms_and_bankid() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "reset", |c| c).await;
    let login = t.app.get_html("/login").await;
    assert!(login.contains("href=\"/reset\""), "the login page offers the reset");
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "star-row").is_some());
    assert!(page.contains("id=\"use-bankid\"") && !page.contains("id=\"use-sms\""), "each service counts once");
    assert!(!page.contains("id=\"choose-password\""), "2 of 3 stars is not enough");
    t.reset_bankid(&flow, ANNA).await;
    let page = t.app.get_html(&flow).await;
    assert!(page.contains("id=\"choose-password\""), "3 stars open the password step");

    // The rules come from AD and from us, and a weak password is refused before AD sees it.
    let rules = t.app.get_html(&format!("{flow}/password")).await;
    for rule in ["Minst 10 tecken", "Tecken av minst tre slag", "Inga delar av ditt namn"] {
        assert!(rules.contains(rule), "{rule}");
    }
    let refused = t.set_new_password(&flow, "Sommar2026!").await;
    assert_eq!(
        text_of(&refused, "password-error").unwrap(),
        "Lösenordet uppfyller inte alla regler. Reglerna som inte är uppfyllda är markerade."
    );
    let done = t.set_new_password(&flow, NEW_PASSWORD).await;
    assert_eq!(
        text_of(&done, "reset-message").unwrap(),
        "Ditt lösenord är bytt och ditt konto är upplåst. Du kan logga in med det nya lösenordet."
    );

    assert_eq!(dc.bind(&user.dn, NEW_PASSWORD).await.0, 0, "the new password binds");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 49, "the old one does not");
    let mail = t.mail_to(&format!("{}@example.test", user.name), "Stjärna: ditt lösenord har bytts").await;
    assert!(mail.text.contains("Ditt lösenord har återställts") && mail.text.contains("127.0.0.1"), "{}", mail.text);
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "password-reset" && a.outcome == "success"));
    assert!(audit.iter().any(|a| a.event == "reset-verify" && a.detail.as_deref() == Some("Mobile code verified")));
}

#[tokio::test]
async fn a_locked_account_is_unlocked_with_a_reset_or_alone() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "unlock", |c| c).await;
    dc.lock(&user).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let res = t.post_in(&flow, "/unlock", &[]).await;
    let html = t.app.follow(res).await;
    assert_eq!(text_of(&html, "reset-message").unwrap(), "Ditt konto är upplåst. Logga in med ditt vanliga lösenord.");
    assert_eq!(dc.attr(&user.dn, "lockoutTime").await.unwrap_or("0".into()), "0");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "unlocked, password unchanged");
    t.mail_to(&format!("{}@example.test", user.name), "Stjärna: ditt konto har låsts upp").await;

    dc.lock(&user).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    t.set_new_password(&flow, NEW_PASSWORD).await;
    assert_eq!(dc.bind(&user.dn, NEW_PASSWORD).await.0, 0, "a reset unlocks too");
}

#[tokio::test]
async fn unknown_unenrolled_and_enrolled_users_look_the_same_before_verification() {
    let dc = require_dc!();
    let (enrolled_user, t) = enrolled(&dc, "same", |c| c).await;
    let plain = dc.create_user("plain").await;
    let names = [enrolled_user.name.clone(), plain.name.clone(), crate::helpers::unique("ghost")];
    let mut pages = Vec::new();
    let mut times = Vec::new();
    for name in &names {
        let client = new_client();
        let csrf = csrf_in(&client.get(t.app.url("/reset")).send().await.unwrap().text().await.unwrap());
        let started = Instant::now();
        let res = client
            .post(t.app.url("/reset"))
            .form(&[("csrf", csrf.as_str()), ("username", name.as_str())])
            .send()
            .await
            .unwrap();
        times.push(started.elapsed());
        let flow = location(&res);
        let id = flow.trim_start_matches("/reset/").to_string();
        let page = client.get(t.app.url(&flow)).send().await.unwrap().text().await.unwrap();
        let csrf = csrf_in(&page);
        let started = Instant::now();
        let sent =
            client.post(t.app.url(&format!("{flow}/sms"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        times.push(started.elapsed());
        // The redirect (post/redirect/get) and the page it leads to.
        let to = location(&sent);
        let sent = format!("{to}\n{}", client.get(t.app.url(&to)).send().await.unwrap().text().await.unwrap());
        // A wrong code typed: "wrong, two tries left" for each (a decoy once answered "expired").
        let form = [("csrf", csrf.as_str()), ("code", "000000")];
        let checked = client.post(t.app.url(&format!("{flow}/sms/check"))).form(&form).send().await.unwrap();
        let to = location(&checked);
        let checked = format!("{to}\n{}", client.get(t.app.url(&to)).send().await.unwrap().text().await.unwrap());
        let clean = |s: &str| s.replace(&id, "ID").replace(&csrf, "CSRF");
        pages.push((clean(&page), clean(&sent), clean(&checked)));
    }
    assert_eq!(pages[0], pages[1], "enrolled and not enrolled");
    assert_eq!(pages[1], pages[2], "not enrolled and unknown");
    assert!(pages[0].1.contains("Om du har registrerat ett mobilnummer har vi skickat en kod till det."));
    assert!(pages[0].2.contains("försök kvar"), "{}", pages[0].2);
    assert!(
        pages[0].1.contains("Kommer inget sms inom ett par minuter"),
        "what to do when none comes, said to everyone"
    );
    t.next_code_to("+46701234567", 1).await; // sent from the queue, after the answer
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        t.sms.as_ref().unwrap().state.messages_to("+46701234567").len(),
        2,
        "only the enrolled user got a text (plus enrolment)"
    );
    let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(min.as_millis() >= 300, "the floor holds: {times:?}");
    assert!((*max - *min) < Duration::from_millis(250), "timing spread too wide: {times:?}");
}

#[tokio::test]
async fn without_enough_stars_the_password_step_is_closed() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "closed", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    assert_eq!(location(&t.app.get(&format!("{flow}/password")).await), flow);
    let csrf = csrf_in(&t.app.get_html(&flow).await);
    let res = t
        .app
        .post(&format!("{flow}/password"), &[("csrf", &csrf), ("password", NEW_PASSWORD), ("repeat", NEW_PASSWORD)])
        .await;
    assert_eq!(location(&res), flow);
    assert_eq!(location(&t.post_in(&flow, "/unlock", &[]).await), flow);
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "nothing changed");
}

#[tokio::test]
async fn a_user_without_enough_services_learns_why_after_proving_who_they_are() {
    let dc = require_dc!();
    let user = dc.create_user("fewstars").await;
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, quick).await;
    t.app.login(&user.name, &user.password).await;
    let csrf = csrf_in(&t.app.get_html("/enrol/sms").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0701234567")]).await;
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    let sms = location(&res);
    let csrf = csrf_in(&t.app.get_html(&sms).await);
    t.app.post(&sms, &[("csrf", &csrf), ("code", &code)]).await;
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    let page = t.app.get_html(&flow).await;
    assert!(
        text_of(&page, "not-enough")
            .unwrap()
            .starts_with("Du har inte registrerat tillräckligt med identitetstjänster")
    );
}

#[tokio::test]
async fn a_flow_expires_and_cannot_be_replayed_or_taken_over() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "replay", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    t.app.clock.advance_seconds(16 * 60);
    let page = t.app.get_html(&flow).await;
    assert_eq!(text_of(&page, "reset-message").unwrap(), "Tiden för återställningen har gått ut. Börja om.");
    assert_eq!(location(&t.post_in(&flow, "/sms", &[]).await), flow, "an expired flow does nothing");

    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    // Another browser cannot see or use the flow, and is told to start again there.
    let mine = std::mem::replace(&mut t.app.client, new_client());
    let elsewhere = t.app.get(&flow).await;
    assert_eq!(elsewhere.status(), 404);
    let html = elsewhere.text().await.unwrap();
    assert!(html.contains("Återställningen startades i en annan webbläsare"), "{html}");
    assert!(html.contains("href=\"/reset\" id=\"error-next\""), "a link to start again here");
    assert!(!html.contains(&user.name), "nothing about whose reset it is");
    let nowhere = t.app.get("/reset/no-such-flow").await.text().await.unwrap();
    assert!(!nowhere.contains("annan webbläsare"), "an unknown flow is simply not found");
    t.app.client = mine;
    t.set_new_password(&flow, NEW_PASSWORD).await;
    // Used once: a second password through the same flow goes nowhere.
    let csrf = csrf_in(&t.app.get_html(&flow).await);
    let again = "Fyra-glada-kor-på-bete8";
    let res = t.app.post(&format!("{flow}/password"), &[("csrf", &csrf), ("password", again), ("repeat", again)]).await;
    assert_eq!(location(&res), flow);
    assert_eq!(dc.bind(&user.dn, again).await.0, 49);
    assert_eq!(dc.bind(&user.dn, NEW_PASSWORD).await.0, 0);
}

#[tokio::test]
async fn reloading_a_flow_step_sends_no_text_and_types_no_code_again() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "rsprg", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    let before = t.texts_count("+46701234567");
    let res = t.post_in(&flow, "/sms", &[]).await;
    let sent = location(&res);
    let code = t.next_code_to("+46701234567", before).await;
    // A slip of the keyboard is told as such and costs no try.
    let res = t.post_in(&flow, "/sms/check", &[("code", &format!("{}x", &code[..5]))]).await;
    let slip = location(&res);
    let told = text_of(&t.app.get_html(&slip).await, "reset-message").unwrap();
    assert_eq!(told, "En kod är sex siffror. Skriv de sex siffrorna från sms:et.");
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let res = t.post_in(&flow, "/sms/check", &[("code", wrong_code)]).await;
    let wrong = location(&res);
    for _ in 0..3 {
        // Reloads are GETs of the outcome pages.
        assert!(text_of(&t.app.get_html(&sent).await, "reset-message").is_some());
        let told = text_of(&t.app.get_html(&wrong).await, "reset-message").unwrap();
        assert_eq!(told, "Fel kod. Du har 2 försök kvar.", "the slip cost no try");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(t.texts_count("+46701234567"), before + 1, "one text, however often the page is reloaded");
    let audit = t.app.audit().await;
    let failures = audit.iter().filter(|a| a.event == "sms-check" && a.outcome == "failure").count();
    assert_eq!(failures, 1, "one wrong code, however often the page is reloaded");
}

#[tokio::test]
async fn too_many_failures_end_the_flow() {
    let dc = require_dc!();
    let (user, t) =
        enrolled(&dc, "fails", |c| c.replace("min_response_ms = 300", "min_response_ms = 300\nmax_failures = 2")).await;
    let flow = t.start_reset(&user.name).await;
    t.post_in(&flow, "/sms", &[]).await;
    let html = t.step(&flow, "/sms/check", &[("code", "000000")]).await;
    assert!(text_of(&html, "reset-message").unwrap().starts_with("Fel kod"));
    // A BankID of the wrong person is a failure too, and the second one ends the flow.
    t.reset_bankid(&flow, BERTIL).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "reset-message").unwrap().starts_with("För många misslyckade försök."));
    // Ended by a failure counted with BankID's answer: the trail says so too.
    let audit = t.app.audit().await;
    let ended = "too many failed verifications: the flow ended";
    assert!(audit.iter().any(|a| a.event == "reset-start" && a.detail.as_deref() == Some(ended)), "{audit:#?}");
}

#[tokio::test]
async fn bankid_starts_a_reset_without_a_username_and_mail_follows_the_language() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "nouser", |c| c).await;
    let page = t.app.get_html("/reset").await;
    let res = t.app.post("/language", &[("csrf", &csrf_in(&page)), ("lang", "en"), ("back", "/reset")]).await;
    assert_eq!(res.status(), 303);
    let csrf = csrf_in(&t.app.get_html("/reset").await);
    let res = t.app.post("/reset/bankid", &[("csrf", &csrf)]).await;
    let bankid = crate::sims::flow_id(&res);
    let order = t.app_scan(&t.scan_qr_frame(&bankid).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    let res = t.app.get(&format!("/bankid/{bankid}")).await;
    let flow = location(&res);
    assert!(flow.starts_with("/reset/"), "{flow}");
    let page = t.app.get_html(&flow).await;
    assert!(page.contains("id=\"choose-password\""), "BankID counted, and its 3 stars are enough here");
    t.set_new_password(&flow, NEW_PASSWORD).await;
    assert_eq!(dc.bind(&user.dn, NEW_PASSWORD).await.0, 0);
    let mail = t.mail_to(&format!("{}@example.test", user.name), "Stjärna: your password has been changed").await;
    assert!(mail.text.contains("Wasn't this you?"));
}

#[tokio::test]
async fn resets_per_day_are_limited_and_mail_survives_a_failing_server() {
    let dc = require_dc!();
    let (user, t) =
        enrolled(&dc, "daily", |c| c.replace("min_response_ms = 300", "min_response_ms = 300\nresets_per_day = 1"))
            .await;
    // The enrolment notices go first; then the reset notice meets a failing server.
    let address = format!("{}@example.test", user.name);
    for _ in 0..100 {
        if t.mail.state.mails_to(&address).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.mail.state.refuse_next(1);
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    assert!(t.set_new_password(&flow, NEW_PASSWORD).await.contains("Ditt lösenord är bytt"));
    // The first delivery is refused; the outbox tries again later.
    let store = t.app.store().await;
    for _ in 0..100 {
        let tried: (i64,) =
            store.fetch_one("SELECT COALESCE(MAX(attempts), 0) FROM mail_outbox WHERE subject LIKE '%lösenord%'").await;
        if tried.0 >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(t.mail.state.mails_to(&address).len(), 2, "refused the first time");
    t.app.clock.advance_seconds(60);
    t.mail_to(&format!("{}@example.test", user.name), "Stjärna: ditt lösenord har bytts").await;
    let outbox: Vec<(i64, Option<i64>)> = t
        .app
        .store()
        .await
        .fetch_all("SELECT attempts, sent_at FROM mail_outbox WHERE subject LIKE '%lösenord%'")
        .await;
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].0 >= 2 && outbox[0].1.is_some(), "{outbox:?}");

    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let html = t.set_new_password(&flow, "Fyra-glada-kor-på-bete8").await;
    assert_eq!(
        text_of(&html, "reset-message").unwrap(),
        "Lösenordet har återställts för många gånger i dag. Kontakta servicedesken."
    );
}

#[tokio::test]
async fn enrolling_a_service_is_told_by_mail() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "enrolmail", |c| c).await;
    let address = format!("{}@example.test", user.name);
    for _ in 0..100 {
        if t.mail.state.mails_to(&address).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mails = t.mail.state.mails_to(&address);
    assert_eq!(mails.len(), 2, "one for BankID, one for the mobile code");
    assert!(mails.iter().all(|m| m.subject == "Stjärna: en identitetstjänst har registrerats"));
    let texts: Vec<&str> = mails.iter().map(|m| m.text.as_str()).collect();
    assert!(texts.iter().any(|t| t.contains("Mobilt BankID har registrerats")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("Mobilkod har registrerats")), "{texts:?}");
}
