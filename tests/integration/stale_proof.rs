//! A proof counts only for what is enrolled now: a code sent to a number replaced since proves
//! nothing, whatever the browser kept from before.

use crate::attacks::{csrf_cookie, jar_client};
use crate::helpers::{TestUser, csrf_in, location, new_client};
use crate::reset::enrolled;
use crate::sims::{ANNA, BERTIL, SimTest, flow_id};

const STOLEN_E164: &str = "+46701234567";
const NEW_PHONE: &str = "0702222222";
const NEW_E164: &str = "+46702222222";

#[tokio::test]
async fn a_code_resent_after_the_number_was_replaced_goes_to_the_new_number_only() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "stale-num", |c| c).await;
    let base = t.app.address.clone();
    // The attacker has the password and the phone with the enrolled number. They start a
    // verification by mobile code and keep the browser's cookie.
    let (attacker, jar) = jar_client();
    t.app.client = attacker.clone();
    t.app.login(&user.name, &user.password).await;
    let challenge = location(&t.post_from("/", "/verify/sms").await);
    assert!(challenge.starts_with("/sms/"), "{challenge}");
    let old_csrf = csrf_cookie(&jar, &base);
    let stolen_code = t.sms.as_ref().unwrap().state.last_code_to(STOLEN_E164).unwrap();

    // The owner notices, proves with BankID and replaces the number.
    t.app.client = new_client();
    t.app.login(&user.name, &user.password).await;
    replace_the_number_after_bankid(&t).await;
    let store = t.app.store().await;
    let user_id = store.all_enrolments().await.unwrap()[0].user_id.clone();
    assert!(store.sms_enrolment(&user_id).await.unwrap().is_some_and(|e| e.number_masked.ends_with("22")));

    // The attacker logs in again (the password still works), plants the old cookie back and asks
    // the old challenge for a new code: it goes to the number enrolled now, not the stolen phone.
    t.app.client = attacker;
    t.app.login(&user.name, &user.password).await;
    jar.add_cookie_str(&format!("stjarna_csrf={old_csrf}; Path=/"), &base.parse().unwrap());
    let page = t.app.get_html(&challenge).await;
    // The code the stolen phone got before is no proof now.
    t.app.post(&challenge, &[("csrf", &csrf_in(&page)), ("code", &stolen_code)]).await;
    let res = t.submit_number("0709999999", true).await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"), "no proof: the number cannot be replaced again");
    assert!(t.app.audit().await.iter().any(|a| a.detail.as_deref().is_some_and(|d| d.contains("replaced since"))));

    // Nor does a new code go to the stolen phone: it goes to the number enrolled now.
    let (to_stolen, to_new) = (t.texts_count(STOLEN_E164), t.texts_count(NEW_E164));
    t.app.clock.advance_seconds(120);
    t.app.post(&format!("{challenge}/resend"), &[("csrf", &csrf_in(&page))]).await;
    assert_eq!(t.texts_count(STOLEN_E164), to_stolen, "no code to the replaced number");
    assert_eq!(t.texts_count(NEW_E164), to_new + 1, "the new code goes to the enrolled number");
}

/// A thief with the password logs in, then the owner: their browsers, the owner's in use.
async fn thief_then_owner(t: &mut SimTest, user: &TestUser) -> (reqwest::Client, reqwest::Client) {
    let (thief, owner) = (new_client(), new_client());
    for browser in [&thief, &owner] {
        t.app.client = browser.clone();
        t.app.login(&user.name, &user.password).await;
    }
    (thief, owner)
}

/// The owner of a stolen phone removes its number: the thief's open session ends in the same
/// step, and the owner's own session goes on.
#[tokio::test]
async fn removing_a_service_ends_the_users_other_sessions() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "rm-svc", |c| c).await;
    let (thief, _) = thief_then_owner(&mut t, &user).await;
    let res = t.post_from("/", "/enrol/sms/remove").await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"), "a removal needs proof");
    let id = flow_id(&t.post_from("/", "/verify/bankid").await);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.poll_message(&id).await;
    let owner = t.app.client.clone();
    t.app.client = thief.clone();
    assert_eq!(t.app.get("/").await.status(), 200, "the proof alone ends no session");
    t.app.client = owner;
    let res = t.post_from("/", "/enrol/sms/remove").await;
    let told = t.app.told(&res).await;
    assert!(told.starts_with("/ Tjänsten är borttagen"), "the owner's session goes on: {told}");

    let store = t.app.store().await;
    let user_id = store.all_enrolments().await.unwrap()[0].user_id.clone();
    assert!(store.sms_enrolment(&user_id).await.unwrap().is_none(), "the number is gone");
    t.app.client = thief;
    assert_eq!(location(&t.app.get("/").await), "/login", "the thief's session ended with it");
    let removed = t.app.audit().await.into_iter().find(|a| a.event == "enrol" && a.outcome == "success");
    let detail = removed.and_then(|a| a.detail).unwrap_or_default();
    // The thief's, and the one the number was enrolled in.
    assert_eq!(detail, "Mobile code removed by the user (other sessions ended: 2)");
}

/// The owner replaces their BankID (after a proof with the mobile code): a thief's open session
/// ends the moment the order completes, even when the page cannot take the proof afterwards (the
/// database refuses to record it here; before, the other sessions ended only with that record).
#[tokio::test]
async fn a_replacement_ends_the_other_sessions_as_the_order_completes() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "repl-end", |c| c).await;
    let (thief, owner) = thief_then_owner(&mut t, &user).await;
    let challenge = location(&t.post_from("/", "/verify/sms").await);
    let code = t.sms.as_ref().unwrap().state.last_code_to(STOLEN_E164).unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;
    let id = flow_id(&t.post_from("/", "/enrol/bankid/replace").await);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, BERTIL).await.unwrap();
    t.app.client = thief.clone();
    assert_eq!(t.app.get("/").await.status(), 200, "a proof and a started order end no session");
    t.app.client = owner;
    t.app_press(&order, "approve").await;
    let store = t.app.store().await;
    store.refuse_proof("bankid").await;
    // The page's script polls the status; the order completes in that poll.
    t.app.clock.advance_seconds(2);
    let status = t.app.get(&format!("/bankid/{id}/status")).await;
    assert_eq!(status.status(), 500, "the proof could not be recorded");
    let user_id = store.all_enrolments().await.unwrap()[0].user_id.clone();
    let enrolled = store.bankid_enrolment(&user_id).await.unwrap().unwrap();
    assert_eq!(enrolled.name, "Bertil Berg", "the replacement was made");
    assert_eq!(t.app.get("/").await.status(), 200, "the owner's session goes on");
    t.app.client = thief;
    assert_eq!(location(&t.app.get("/").await), "/login", "the thief's session ended with the replacement");
}

/// A reset that a thief proved with BankID (relayed, or a BankID on a stolen phone), up to the
/// password step: the flow's address.
async fn thief_at_the_password_step(t: &mut SimTest, user: &TestUser) -> String {
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    t.reset_bankid(&flow, ANNA).await;
    assert!(t.app.get_html(&flow).await.contains("id=\"choose-password\""), "BankID alone is enough here");
    flow
}

#[tokio::test]
async fn a_reset_proof_with_a_service_removed_since_counts_for_nothing() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "stale-rm", |c| c).await;
    let flow = thief_at_the_password_step(&mut t, &user).await;
    // The owner (or the service desk) removes the BankID the thief used.
    let user_id = t.app.audit().await.iter().find_map(|a| a.user_id.clone()).unwrap();
    assert_eq!(t.app.store().await.revoke_enrolment(&user_id, Some("bankid"), None).await.unwrap().0, 1);
    let page = t.app.get_html(&flow).await;
    assert!(!page.contains("id=\"choose-password\""), "{page}");
    let res = t.post_in(&flow, "/password", &[("password", NEW_PASSWORD), ("repeat", NEW_PASSWORD)]).await;
    assert_eq!(location(&res), flow);
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "the password is the owner's still");
}

#[tokio::test]
async fn a_password_changed_while_a_reset_is_open_is_not_overwritten_by_it() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "stale-pw", |c| c).await;
    let flow = thief_at_the_password_step(&mut t, &user).await;
    let thief = t.app.client.clone();
    // The owner sees the BankID request they did not make, and changes the password.
    t.app.client = new_client();
    let changed = crate::change::change(&t.app, Some(&user.name), &user.password, OWNERS_NEW).await;
    assert!(changed.contains("bytt"), "{changed}");
    t.app.client = thief;
    let res = t.post_in(&flow, "/password", &[("password", NEW_PASSWORD), ("repeat", NEW_PASSWORD)]).await;
    let page = t.app.follow(res).await;
    assert_eq!(
        crate::helpers::text_of(&page, "reset-message").unwrap(),
        "Lösenordet för kontot har bytts sedan du började här, så återställningen avbröts av säkerhetsskäl. \
         Behöver du fortfarande ett nytt lösenord kan du börja om. Har varken du eller servicedesken bytt det, \
         kontakta servicedesken."
    );
    assert_eq!(dc.bind(&user.dn, OWNERS_NEW).await.0, 0, "the owner's new password stands");
    assert!(!t.app.get_html(&format!("{flow}/password")).await.contains("name=\"repeat\""), "the step is closed");
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "password-reset"
        && a.outcome == "blocked"
        && a.detail.as_deref() == Some("the password was changed otherwise while the reset was open; it was stopped")));
}

const NEW_PASSWORD: &str = "Tre-glada-kor-på-bete7";
const OWNERS_NEW: &str = "Ägarens-eget-nya-lösen9";

/// A number put in place a moment ago (by the owner, or by whoever had the password and a proof
/// for ten minutes) proves it is the user's, but does not take away a service that has been
/// there longer: the page says why, instead of asking for a proof the user just gave.
#[tokio::test]
async fn a_service_still_cooling_off_does_not_remove_an_older_one() {
    let dc = require_dc!();
    let cooling = |c: String| c.replace("cooldown_hours = 0", "cooldown_hours = 24");
    let (user, mut t) = enrolled(&dc, "cool-proof", cooling).await;
    t.app.clock.advance_seconds(25 * 3600);
    t.app.login(&user.name, &user.password).await;
    replace_the_number_after_bankid(&t).await;
    // A new session proves with the new number only, and tries to remove the BankID.
    t.app.client = new_client();
    t.app.login(&user.name, &user.password).await;
    let challenge = location(&t.post_from("/", "/verify/sms").await);
    let code = t.sms.as_ref().unwrap().state.last_code_to(NEW_E164).unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;
    let res = t.post_from("/", "/enrol/bankid/remove").await;
    let told = t.app.told(&res).await;
    assert!(told.contains("registrerades nyss och kan inte byta ut eller ta bort en äldre"), "{told}");
    let store = t.app.store().await;
    let user_id = store.all_enrolments().await.unwrap()[0].user_id.clone();
    assert!(store.bankid_enrolment(&user_id).await.unwrap().is_some(), "the BankID stays");
}

/// The logged-in user proves with BankID and puts `NEW_PHONE` in place of the enrolled number.
async fn replace_the_number_after_bankid(t: &SimTest) {
    let id = flow_id(&t.post_from("/", "/verify/bankid").await);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.poll_message(&id).await;
    let replace = location(&t.submit_number(NEW_PHONE, true).await);
    let code = t.sms.as_ref().unwrap().state.last_code_to(NEW_E164).unwrap();
    t.app.post(&replace, &[("csrf", &csrf_in(&t.app.get_html(&replace).await)), ("code", &code)]).await;
}
