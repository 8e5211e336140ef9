//! The cooling-off, against Samba and the simulators: a service enrolled or replaced does not
//! count toward a reset for a while (so that its owner can notice one a password thief added);
//! the owner's changing the password starts it again for what was still cooling off; the service
//! desk may lift it, for what the caller confirms.

use crate::attacks::{ATTACKER_E164, ATTACKER_PHONE, VICTIM_E164};
use crate::helpers::{csrf_in, location, new_client, text_of};
use crate::reset::enrolled;
use crate::sims::{ANNA, BERTIL, Gateway, spawn_with_sms};
use stjarna::clock::Clock;

#[tokio::test]
async fn a_factor_enrolled_an_hour_ago_does_not_count_toward_a_reset() {
    let dc = require_dc!();
    let cooling = |c: String| c.replace("cooldown_hours = 0", "cooldown_hours = 24");
    let (user, t) = enrolled(&dc, "att-cool", cooling).await;
    t.app.clock.advance_seconds(3600);
    let flow = t.start_reset(&user.name).await;
    let before = t.app.get_html(&flow).await;
    assert!(text_of(&before, "cooling").is_none(), "nothing is said before a proof");
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let page = t.app.get_html(&flow).await;
    let cooling = text_of(&page, "cooling").expect("the page says why the stars do not count");
    assert!(cooling.contains("24 timmar"), "{cooling}");
    assert!(text_of(&page, "reset-enough").is_none());
    t.try_password(&flow, &dc, &user).await;

    // A day later the same services count.
    t.app.clock.advance_seconds(24 * 3600);
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    assert!(text_of(&t.app.get_html(&flow).await, "reset-enough").is_some());
}

pub(crate) fn attr_of(html: &str, selector: &str, attr: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let el = doc.select(&scraper::Selector::parse(selector).unwrap()).next().unwrap_or_else(|| panic!("{selector}"));
    el.value().attr(attr).unwrap().to_string()
}

#[tokio::test]
async fn the_service_desk_lifts_the_cooling_off_only_with_a_service_that_is_not_cooling_itself() {
    let dc = require_dc!();
    let (agent, desk) = crate::admin::helpdesk_agent(&dc, "att-agent").await;
    let edit = move |c: String| desk(c.replace("cooldown_hours = 0", "cooldown_hours = 24"));
    let (user, mut t) = enrolled(&dc, "att-lift", edit).await;
    // A day later the user gets a new phone and replaces the number (after proving the old one).
    t.app.clock.advance_seconds(25 * 3600);
    t.attacker_logs_in(&user.name, &user.password).await;
    let res = t.post_from("/", "/verify/sms").await;
    let challenge = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to(VICTIM_E164).unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;
    let res = t.submit_number("0702222222", true).await;
    let challenge = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46702222222").unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;

    t.attacker_logs_in(&agent.name, &agent.password).await; // the service desk agent
    // The agent's own account has their BankID: the portal can tell the caller's is not theirs.
    t.enrol(BERTIL).await;
    // Verified with the new (cooling) phone: that proves nothing about who holds the account.
    let page = t.app.get_html("/admin/verify").await;
    let form = [("csrf", csrf_in(&page)), ("username", user.name.clone()), ("method", "sms".into())];
    let html = t.app.post("/admin/verify", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let html = t.app.follow(html).await;
    let action = attr_of(&html, "form[action^='/admin/verify/sms/']", "action");
    let user_id = attr_of(&html, "input[name=user]", "value");
    // A proof that is not finished is refused.
    let early = [("csrf", csrf_in(&html)), ("user", user_id.clone()), ("proof", format!("sms:{}", &action[18..]))];
    let res = t.app.post("/admin/verify/lift", &early.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(text_of(&t.app.follow(res).await, "verify-message").unwrap(), "Inte verifierad.");
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46702222222").unwrap();
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", &code)]).await;
    let html = t.app.follow(res).await;
    // The agent is not told "verified": whoever had the password for a moment could have
    // enrolled that phone. (It read "Verifierad" before, as if the caller were proven.)
    let told = text_of(&html, "verify-message").unwrap();
    assert_eq!(
        told,
        format!(
            "Koden eller BankID:t stämmer, men Mobilkod registrerades eller byttes nyligen och är i sin \
             karenstid: det kan vara någon annans. Verifiera {} på annat sätt.",
            user.display_name
        ),
        "{html}"
    );
    assert!(!html.contains("lift-form"), "nothing to lift with it");
    // A lift sent anyway (the form made by hand) is refused all the same.
    let proof = format!("sms:{}", &action[18..]);
    let res =
        t.app.post("/admin/verify/lift", &[("csrf", &csrf_in(&html)), ("user", &user_id), ("proof", &proof)]).await;
    let message = text_of(&t.app.follow(res).await, "verify-message").unwrap();
    assert!(message.contains("själv är nyregistrerad"), "{message}");

    // Verified with the BankID enrolled long ago (a phone order): the lift goes through.
    let page = t.app.get_html("/admin/verify").await;
    let form = [("csrf", csrf_in(&page)), ("username", user.name.clone()), ("method", "bankid".into())];
    let res = t.app.post("/admin/verify", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let flow = location(&res);
    let order = t.sim.state.phone_orders_for(ANNA).pop().expect("a phone order");
    t.http
        .post(format!("{}/phone/{}", t.sim.app_url, order.order_ref))
        .form(&[("identity", ANNA)])
        .send()
        .await
        .unwrap();
    t.sim.state.approve(&order.order_ref).unwrap();
    t.app.clock.advance_seconds(2);
    let html = t.app.get_html(&flow).await;
    let proof = attr_of(&html, "#lift-form input[name=proof]", "value");
    assert!(proof.starts_with("bankid:"));
    // Only the services cooling off are offered, each with what it is: the new number, not the
    // BankID enrolled long ago.
    let offered = text_of(&html, "lift-form").unwrap();
    assert!(offered.contains("Mobilkod: +46 70 *** ** 22") && !offered.contains("BankID:"), "{offered}");
    // Not eleven minutes later, though: the proof must be fresh, and the page says it no longer holds.
    t.app.clock.advance_seconds(11 * 60);
    let later = text_of(&t.app.get_html(&flow).await, "verify-message").unwrap();
    assert!(later.contains("gäller inte längre"), "{later}");
    let stale = [("csrf", csrf_in(&html)), ("user", user_id.clone()), ("proof", proof.clone())];
    let res = t.app.post("/admin/verify/lift", &stale.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(text_of(&t.app.follow(res).await, "verify-message").unwrap(), "Inte verifierad.");
    t.app.clock.advance_seconds(-11 * 60);
    // Nothing ticked: nothing lifted (the agent reads the services out and ticks what the caller
    // confirms).
    let res =
        t.app.post("/admin/verify/lift", &[("csrf", &csrf_in(&html)), ("user", &user_id), ("proof", &proof)]).await;
    let again = t.app.follow(res).await;
    let message = text_of(&again, "verify-message").unwrap();
    assert!(message.starts_with("Välj de tjänster"), "{message}");
    assert!(again.contains("id=\"lift-sms\""), "back at the verdict, its choices there");
    let form = [
        ("csrf", csrf_in(&html)),
        ("user", user_id.clone()),
        ("proof", proof.clone()),
        ("sms", "1".into()),
        ("bankid", "1".into()),
    ];
    let res = t.app.post("/admin/verify/lift", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let message = text_of(&t.app.follow(res).await, "verify-message").unwrap();
    assert!(message.contains("hävd (1 tjänst)"), "only the one cooling off: {message}");
    // The user is told: a desk talked round took away the day they had to notice.
    let mail = t.mail_to(&format!("{}@example.test", user.name), "Stjärna: en identitetstjänst gäller direkt").await;
    assert!(mail.text.contains("På servicedeskens begäran räknas Mobilkod"), "{}", mail.text);
    assert!(t.texts_to("+46702222222").iter().all(|m| !m.contains("servicedeskens")), "not to the lifted number");
    // Found under the user's name too (it had only the id).
    let lifted = |a: &stjarna::storage::AuditRecord| a.detail.as_deref().unwrap_or("").contains("cooling-off lift by");
    assert!(t.app.audit().await.iter().any(|a| lifted(a) && a.username.as_deref() == Some(user.name.as_str())));
    // The caller's proof lifts nothing on another account (the agent's own, here): that one was
    // not verified, and nothing more is said of it.
    let sessions = t.app.sessions().await;
    let agent_id = sessions.iter().find(|s| s.account_name == agent.name).unwrap().user_id.clone();
    let own = [("csrf", csrf_in(&html)), ("user", agent_id), ("proof", proof), ("bankid", "1".into())];
    let res = t.app.post("/admin/verify/lift", &own.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(text_of(&t.app.follow(res).await, "verify-message").unwrap(), "Inte verifierad.");
    // Every refusal is in the audit trail, as blocked.
    let audit = t.app.audit().await;
    for why in ["no caller verification", "Mobile code is cooling off itself"] {
        assert!(
            audit.iter().any(|a| a.outcome == "blocked" && a.detail.as_deref().unwrap_or("").contains(why)),
            "a blocked lift ({why}) is audited"
        );
    }

    t.app.client = new_client(); // the caller, now able to reset at once
    let flow = t.start_reset(&user.name).await;
    let seen = t.texts_count("+46702222222");
    t.post_in(&flow, "/sms", &[]).await;
    let code = t.next_code_to("+46702222222", seen).await;
    t.post_in(&flow, "/sms/check", &[("code", &code)]).await;
    t.reset_bankid(&flow, ANNA).await;
    assert!(text_of(&t.app.get_html(&flow).await, "reset-enough").is_some());
}

#[tokio::test]
async fn what_a_password_thief_enrolled_cools_off_again_when_the_owner_changes_the_password() {
    let dc = require_dc!();
    let user = dc.create_user("cool-thief").await;
    let cooling = |c: String| crate::reset::quick(c.replace("cooldown_hours = 0", "cooldown_hours = 24"));
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, cooling).await;
    // Two hours ago (the portal's clock; Samba's is the real one, which sets pwdLastSet below),
    // with the stolen password the thief enrols their own number on an account with nothing
    // enrolled, then (with that number's proof) the owner's BankID, by a relayed QR code.
    t.app.clock.advance_seconds(-2 * 3600);
    t.attacker_logs_in(&user.name, &user.password).await;
    let res = t.submit_number(ATTACKER_PHONE, false).await;
    let challenge = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to(ATTACKER_E164).unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;
    t.enrol(ANNA).await;
    assert_eq!(t.app.store().await.enrolments(&user_id(&t).await).await.unwrap().len(), 2);
    let thief = t.app.client.clone();

    // Now the owner, told by mail, changes the password (at their workstation).
    t.app.clock.advance_seconds(2 * 3600);
    let new_password = "Ägarens-eget-lösen-2026";
    dc.set_password(&user.dn, new_password).await;
    // The portal keeps that the change started both again (a later set would hide it from AD).
    assert_eq!(t.app.restarts.run_once(t.app.clock.now()).await.unwrap(), 2);
    let kept = t.app.store().await.enrolments(&user_id(&t).await).await.unwrap();
    assert!(kept.iter().all(|r| r.restarted_at.is_some_and(|set| set > r.enrolled_at)), "{kept:?}");

    // A day after the enrolment (22 hours after the change) the thief's services do not count.
    t.app.clock.advance_seconds(23 * 3600);
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    let seen = t.texts_count(ATTACKER_E164);
    t.post_in(&flow, "/sms", &[]).await;
    let code = t.next_code_to(ATTACKER_E164, seen).await;
    t.post_in(&flow, "/sms/check", &[("code", &code)]).await;
    t.reset_bankid(&flow, ANNA).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "reset-enough").is_none(), "the thief cannot reset: {page}");
    let told = text_of(&page, "cooling").expect("the page says why the stars do not count");
    assert!(told.contains("lösenordet senast byttes"), "{told}");
    t.try_password(&flow, &dc, &crate::helpers::TestUser { password: new_password.into(), ..user.clone() }).await;
    // The thief's session ended with the change, and the relayed BankID logs nobody in.
    t.app.client = thief;
    assert!(location(&t.app.get("/").await).starts_with("/login"));
    t.app.client = new_client();
    let id = crate::sims::flow_id(&t.post_from("/login", "/login/bankid").await);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    let res = t.app.get(&format!("/bankid/{id}")).await;
    let error = t.app.error_after(res, "login-error").await;
    assert!(error.contains("registrerades nyligen"), "{error}");

    // The owner logs in with the new password: the page says what cools off again, and why, and
    // to call the service desk. The password alone removes nothing (a thief who changed the
    // password themselves could then swap the owner's newest service for their own).
    t.app.client = new_client();
    assert_eq!(t.app.login(&user.name, new_password).await.status(), 303);
    let home = t.app.get_html("/").await;
    let hint = text_of(&home, "cooling-sms").unwrap();
    assert!(hint.contains("innan lösenordet byttes") && hint.contains("ring servicedesken"), "{hint}");
    let res = t.post_from("/", "/enrol/sms/remove").await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"));
    assert!(t.texts_to(VICTIM_E164).is_empty(), "the owner had no number of their own");
}

/// The account's id, as the portal keeps it.
async fn user_id(t: &crate::sims::SimTest) -> String {
    t.app.sessions().await.into_iter().next().expect("a session").user_id
}
