//! Texts in anonymous reset flows: budgets of their own, one code a minute per flow, sent from a
//! queue so a slow gateway does not show; and a limit on anonymous flow starts per address.

use std::time::Instant;

use stjarna::simulators::sms::SmsFault;

use crate::helpers::{csrf_in, location, new_client, text_of};
use crate::reset::enrolled;

const NUMBER: &str = "+46701234567";

#[tokio::test]
async fn anonymous_resets_cannot_use_up_the_users_or_the_service_desks_texts() {
    let dc = require_dc!();
    let (agent, desk) = crate::admin::helpdesk_agent(&dc, "rs-agent").await;
    // Both services needed for a reset, so that a flow with BankID proved still sends a code.
    let (user, mut t) = enrolled(&dc, "rs-budget", |c| desk(c.replace("reset_stars = 3", "reset_stars = 5"))).await;
    // Someone types the user's name again and again (new flows, new browsers): after the
    // anonymous budget for that target (5 an hour), nothing more is sent...
    let before = t.texts_count(NUMBER);
    for _ in 0..7 {
        t.app.client = new_client();
        let flow = t.start_reset(&user.name).await;
        t.post_in(&flow, "/sms", &[]).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(t.texts_count(NUMBER) - before, 5, "the anonymous budget stops the flood");
    // ...but the user's own reset, once they proved their BankID, still sends the code (it was
    // quietly a decoy, and the right code then failed as wrong),
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    t.reset_sms(&flow).await;
    assert!(text_of(&t.app.get_html(&flow).await, "reset-enough").is_some(), "BankID and the code are enough");
    // ...but the user's own verification still gets a code,
    t.app.client = new_client();
    t.app.login(&user.name, &user.password).await;
    let res = t.post_from("/", "/verify/sms").await;
    assert!(location(&res).starts_with("/sms/"), "the user is not locked out of their own texts");
    // and so does the service desk's verification of the caller.
    t.app.client = new_client();
    t.app.login(&agent.name, &agent.password).await;
    let page = t.app.get_html("/admin/verify").await;
    let form = [("csrf", csrf_in(&page)), ("username", user.name.clone()), ("method", "sms".to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let html = t.app.follow(t.app.post("/admin/verify", &form).await).await;
    assert!(text_of(&html, "verify-message").unwrap().starts_with("En kod har skickats"), "{html}");
}

#[tokio::test]
async fn a_flow_sends_one_code_a_minute_and_a_slow_gateway_does_not_show() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "rs-cool", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    let before = t.texts_count(NUMBER);
    t.post_in(&flow, "/sms", &[]).await;
    t.next_code_to(NUMBER, before).await;
    let again = t.step(&flow, "/sms", &[]).await;
    let message = text_of(&again, "reset-message").unwrap();
    assert!(message.starts_with("Du kan få en ny kod om"), "{message}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(t.texts_count(NUMBER), before + 1, "the second press sent nothing");

    // A minute later, with a gateway that takes 2 s: the page answers at once, the text follows.
    t.app.clock.advance_seconds(61);
    t.sms.as_ref().unwrap().state.inject(SmsFault::Slow(std::time::Duration::from_secs(2)), 1);
    let started = Instant::now();
    t.post_in(&flow, "/sms", &[]).await;
    let took = started.elapsed();
    assert!(took.as_millis() < 1500, "the answer waited for the gateway: {took:?}");
    t.next_code_to(NUMBER, before + 1).await;
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "sms-send" && a.detail.as_deref().unwrap_or("").contains("code queued")));
}

#[tokio::test]
async fn anonymous_flow_starts_are_limited_per_address() {
    let dc = require_dc!();
    let limited = |c: String| c + "starts_per_address_per_hour = 3\n";
    let (user, mut t) = enrolled(&dc, "rs-starts", limited).await;
    for _ in 0..3 {
        t.app.client = new_client();
        t.start_reset(&user.name).await;
    }
    t.app.client = new_client();
    let csrf = csrf_in(&t.app.get_html("/reset").await);
    let res = t.app.post("/reset", &[("csrf", &csrf), ("username", "anyone-at-all")]).await;
    assert!(location(&res).starts_with("/reset?note="), "no flow is started");
    let page = t.app.follow(res).await;
    assert!(text_of(&page, "reset-error").unwrap().contains("för många"), "{page}");
    // The name typed stays in the field, which is not marked wrong: the refusal was not about it.
    assert!(page.contains("value=\"anyone-at-all\" required autofocus aria-describedby=\"reset-error\">"), "{page}");
    let res = t.app.post("/reset", &[("csrf", &csrf), ("username", " ")]).await;
    let page = t.app.follow(res).await;
    assert_eq!(text_of(&page, "reset-error").unwrap(), "Skriv ditt användarnamn.");
    assert!(
        page.contains("value=\"\" required autofocus aria-invalid=\"true\" aria-describedby=\"reset-error\">"),
        "{page}"
    );
    // BankID starts and BankID logins count against the same limit.
    let res = t.post_from("/login", "/login/bankid").await;
    assert!(t.app.error_after(res, "login-error").await.contains("Det har startats för många"));
    // An hour later the address may start again.
    t.app.clock.advance_seconds(3601);
    t.start_reset(&user.name).await;
}

#[tokio::test]
async fn the_texts_budget_does_not_tell_that_two_names_are_one_account() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "rs-alias", |c| c).await;
    let before = t.texts_count(NUMBER);
    let mut answers = Vec::new();
    // Three flows by the account name, three by the principal name: one account behind both.
    for name in [user.name.clone(), format!("{}@example.test", user.name)] {
        for _ in 0..3 {
            t.app.client = new_client();
            let flow = t.start_reset(&name).await;
            let page = t.step(&flow, "/sms", &[]).await;
            answers.push(text_of(&page, "reset-message").unwrap());
        }
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "every answer reads the same: {answers:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(t.texts_count(NUMBER) - before, 5, "the hidden cap per user still holds");
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.detail.as_deref().unwrap_or("").contains("answered as a decoy")));
}

/// Three presses of "send" at once in one flow send one text, and the others are told to wait:
/// the wait between codes is claimed before anything is sent (it was only read, so all three went,
/// and the codes of the first two no longer counted).
#[tokio::test]
async fn parallel_sends_in_one_flow_send_one_text() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "rs-par", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    let seen = t.texts_count(NUMBER);
    let csrf = csrf_in(&t.app.get_html(&flow).await);
    let sends = (0..3).map(|_| {
        let request = t.app.client.post(t.app.url(&format!("{flow}/sms"))).form(&[("csrf", csrf.clone())]).send();
        async move { location(&request.await.unwrap()) }
    });
    let places = futures_util::future::join_all(sends).await;
    assert_eq!(places.iter().filter(|p| p.contains("m=sent")).count(), 1, "{places:?}");
    assert_eq!(places.iter().filter(|p| p.contains("m=wait")).count(), 2, "{places:?}");
    let queued = |a: &stjarna::storage::AuditRecord| {
        a.event == "sms-send" && a.detail.as_deref().unwrap_or("").contains("queued")
    };
    assert_eq!(t.app.audit().await.iter().filter(|a| queued(a)).count(), 1, "one code queued");
    // The one code that went is the flow's, and verifies it.
    let code = t.next_code_to(NUMBER, seen).await;
    // The text says what the code is for, so that someone who did not ask for a reset can tell.
    let text = t.sms.as_ref().unwrap().state.messages_to(NUMBER).pop().unwrap().text;
    assert!(text.contains("för att återställa lösenordet") && text.contains("inte ens med servicedesken"), "{text}");
    let html = t.step(&flow, "/sms/check", &[("code", &code)]).await;
    assert!(!html.contains("id=\"use-sms\"") && html.contains("id=\"use-bankid\""), "SMS verified: {html}");
    assert_eq!(t.texts_count(NUMBER), seen + 1);
}

/// Wrong codes typed in resets count against the user across flows: past ten in a day even the
/// right code is checked as a decoy's, and a stranger's next flow sends nothing (quietly), so
/// guessing cannot go on at fifteen codes an hour for as long as someone likes. Before, every new
/// flow sent a new code to guess.
#[tokio::test]
async fn wrong_codes_across_flows_stop_anonymous_guessing_for_a_day() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "rs-guess", |c| c).await;
    let limit = stjarna::identity::sms::WRONG_CODES_PER_USER_PER_DAY as usize;
    // A flow with a code sent: (its address, the code).
    async fn flow_with_code(t: &mut crate::sims::SimTest, name: &str) -> (String, String) {
        // Within the budget of texts per name (five an hour).
        t.app.clock.advance_seconds(15 * 60);
        t.app.client = new_client();
        let flow = t.start_reset(name).await;
        let seen = t.texts_count(NUMBER);
        t.post_in(&flow, "/sms", &[]).await;
        let code = t.next_code_to(NUMBER, seen).await;
        (flow, code)
    }
    let wrong = |code: &str| format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..(limit - 1) / 3 {
        let (flow, code) = flow_with_code(&mut t, &user.name).await;
        for _ in 0..3 {
            t.post_in(&flow, "/sms/check", &[("code", &wrong(&code))]).await;
        }
    }
    // The tenth wrong code (answered no sooner than a decoy's: a real user's check reads more);
    // then the right one is refused.
    let (flow, code) = flow_with_code(&mut t, &user.name).await;
    let csrf = csrf_in(&t.app.get_html(&flow).await);
    let started = Instant::now();
    t.app.post(&format!("{flow}/sms/check"), &[("csrf", &csrf), ("code", &wrong(&code))]).await;
    assert!(started.elapsed().as_millis() >= 300, "the reset's min_response_ms: {:?}", started.elapsed());
    let html = t.step(&flow, "/sms/check", &[("code", &code)]).await;
    assert!(text_of(&html, "reset-message").is_some_and(|m| m.contains("Fel kod")), "{html}");
    let audit = t.app.audit().await;
    let refused = audit.iter().find(|a| a.event == "sms-check" && a.outcome == "blocked");
    let detail = refused.and_then(|a| a.detail.clone()).unwrap_or_default();
    assert!(detail.contains("wrong codes per user, resets limit reached: the code checked as a decoy"), "{detail}");
    assert!(html.contains("id=\"use-sms\""), "not verified: {html}");
    // And the next flow's send goes nowhere, answered as a send.
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    let seen = t.texts_count(NUMBER);
    let html = t.step(&flow, "/sms", &[]).await;
    assert!(text_of(&html, "reset-message").is_some_and(|m| m.contains("kod")), "answered as a send: {html}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(t.texts_count(NUMBER), seen, "nothing sent");
    let audit = t.app.audit().await;
    let decoy = |a: &&stjarna::storage::AuditRecord| a.event == "sms-send" && a.outcome == "blocked";
    let detail = audit.iter().find(decoy).and_then(|a| a.detail.clone()).unwrap_or_default();
    assert!(detail.contains("wrong codes per user"), "audited as a decoy for the guesses: {detail}");
    // A day later it sends again.
    t.app.clock.advance_seconds(24 * 3600);
    flow_with_code(&mut t, &user.name).await;
}

/// Strangers who know a username cannot have the user's phone texted all day: ten anonymous
/// texts a day, however the hour's budget is paced, then sends quietly go nowhere.
#[tokio::test]
async fn anonymous_texts_to_one_user_are_capped_per_day() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "rs-day", |c| c).await;
    let per_day = stjarna::identity::sms::ANONYMOUS_TEXTS_PER_USER_PER_DAY as usize;
    let first = t.texts_count(NUMBER);
    for i in 0..=per_day {
        // Within the hour's budget (five an hour) and the address's flow starts.
        t.app.clock.advance_seconds(15 * 60);
        t.app.client = new_client();
        let flow = t.start_reset(&user.name).await;
        let html = t.step(&flow, "/sms", &[]).await;
        assert!(text_of(&html, "reset-message").is_some_and(|m| m.contains("kod")), "{i}: answered as a send");
    }
    // The texts go out from a queue after the answers: wait for the ten, then for a stray.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while t.texts_count(NUMBER) - first < per_day && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(t.texts_count(NUMBER) - first, per_day, "the last one went nowhere");
    let audit = t.app.audit().await;
    let decoy = audit.iter().find(|a| a.event == "sms-send" && a.outcome == "blocked").unwrap();
    assert!(decoy.detail.as_deref().unwrap().contains("per user per day, resets"), "{decoy:?}");
}

/// After a first proof, when that kind of guess is used up for the day, no code is sent (it would
/// not be checked), the page says when to try again, and it is no failure of the flow, which goes
/// on (BankID proved).
#[tokio::test]
async fn a_proved_reset_with_the_days_codes_used_up_is_told_so_and_keeps_its_proof() {
    let dc = require_dc!();
    // Both services are needed, BankID first.
    let (user, mut t) = enrolled(&dc, "dayused", |c| c.replace("reset_stars = 3", "reset_stars = 5")).await;
    let user_id = t.app.sessions().await[0].user_id.clone();
    let store = t.app.store().await;
    let now = stjarna::clock::Clock::now(&t.app.clock);
    for i in 0..10 {
        store.record_failure("sms-proved-wrong", &user_id, now - 60 + i).await.unwrap();
    }
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    let seen = t.texts_count("+46701234567");
    let page = t.step(&flow, "/sms", &[]).await;
    assert!(text_of(&page, "reset-message").unwrap().contains("Försök igen om"), "{page}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(t.texts_count("+46701234567"), seen, "no code that would not be checked");
    let flow_row: (i64, String) = store
        .fetch_one(&format!(
            "SELECT failures, state FROM reset_flows WHERE id = '{}'",
            flow.rsplit('/').next().unwrap()
        ))
        .await;
    assert_eq!(flow_row, (0, "verified".to_string()), "no failure of the flow; BankID's proof stands");
}

#[tokio::test]
async fn a_resets_code_is_no_step_up_for_a_logged_in_session_in_the_same_browser() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "rs-purpose", |c| c).await;
    // Logged in (with the password), then a reset started in the same browser.
    t.app.login(&user.name, &user.password).await;
    let flow = t.start_reset(&user.name).await;
    let seen = t.texts_count(NUMBER);
    t.post_in(&flow, "/sms", &[]).await;
    let code = t.next_code_to(NUMBER, seen).await;
    let flow_id = flow.trim_start_matches("/reset/");
    let record = t.app.store().await.reset_flow(flow_id).await.unwrap().expect("the flow");
    let challenge = record.sms_challenge.expect("the flow's challenge");
    // Typed where a logged-in session checks its codes, the reset's code is nobody's there: no
    // step-up proof (which would let the session change what is enrolled), nor a wrong guess
    // counted against the user's own codes.
    let csrf = csrf_in(&t.app.get_html("/").await);
    let res = t.app.post(&format!("/sms/{challenge}/check"), &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(res.status(), 404, "not a logged-in session's challenge");
    assert_eq!(t.app.get(&format!("/sms/{challenge}")).await.status(), 404);
    let res = t.post_from("/", "/enrol/bankid/remove").await;
    assert!(t.app.told(&res).await.starts_with("/ Bekräfta först"), "no proof was gained");
    // In its reset the same code still counts.
    t.post_in(&flow, "/sms/check", &[("code", &code)]).await;
    let page = t.app.get_html(&flow).await;
    assert!(!page.contains("id=\"use-sms\""), "the code counted in the reset: {page}");
}
