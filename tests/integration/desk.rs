//! The service desk against Samba AD and the simulators: verifying a caller by a code or a
//! BankID phone order, cancelling an order, and who may lift a caller's cooling-off (never the
//! agent's own accounts; a privileged account only an administrator).

use crate::admin::{admin_user, helpdesk_agent};
use crate::cooling::attr_of;
use crate::helpers::{TestUser, csrf_in, location, new_client, text_of};
use crate::sims::{ANNA, BERTIL, BLOCKED, Gateway, spawn_with_sms};

#[tokio::test]
async fn the_service_desk_verifies_a_caller_by_sms_and_by_bankid_phone_auth() {
    let dc = require_dc!();
    let (agent, desk) = helpdesk_agent(&dc, "agent").await;
    let caller = dc.create_user("caller").await;
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, desk).await;
    t.app.login(&caller.name, &caller.password).await;
    t.enrol(ANNA).await;
    enrol_number(&t, "0701234567").await;

    t.app.client = new_client();
    t.app.login(&agent.name, &agent.password).await;
    // By SMS: the caller reads the code back.
    let page = t.app.get_html("/admin/verify").await;
    let res =
        t.app.post("/admin/verify", &[("csrf", &csrf_in(&page)), ("username", &caller.name), ("method", "sms")]).await;
    let html = t.app.follow(res).await;
    assert_eq!(
        text_of(&html, "verify-message").unwrap(),
        "En kod har skickats till +46 70 *** ** 67. Be den som ringer läsa upp koden."
    );
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    // The text says when to read the code out: a caller the service desk did not hear from first
    // may be someone's victim.
    let text = t.sms.as_ref().unwrap().state.messages_to("+46701234567").pop().unwrap().text;
    assert!(text.contains("Läs upp den bara om du själv har ringt servicedesken"), "{text}");
    let doc = scraper::Html::parse_document(&html);
    let action = doc
        .select(&scraper::Selector::parse("form[action^='/admin/verify/sms/']").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("action")
        .unwrap()
        .to_string();
    let user_id = doc
        .select(&scraper::Selector::parse("input[name=user]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_string();
    // A slip of the keyboard is told as such, and is no wrong code.
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", "12345")]).await;
    let html = t.app.follow(res).await;
    let told = text_of(&html, "verify-message").unwrap();
    assert_eq!(told, "En kod är sex siffror. Skriv de sex siffrorna från sms:et.", "{html}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", wrong)]).await;
    let retry = location(&res);
    let html = t.app.follow(res).await;
    let told = text_of(&html, "verify-message").unwrap();
    assert_eq!(told, "Fel kod. Du har 2 försök kvar.", "the slip cost no try: {html}");
    assert_eq!(t.app.get_html(&retry).await, html, "a reload shows the same and types nothing");
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", &code)]).await;
    let html = t.app.follow(res).await;
    assert_verified(&html, &caller, "2 stjärnor");

    // By BankID: a phone order to the enrolled personal number, with the service desk calling.
    let page = t.app.get_html("/admin/verify").await;
    let res = t
        .app
        .post(
            "/admin/verify",
            &[("csrf", &csrf_in(&page)), ("username", &caller.name), ("method", "bankid"), ("we_called", "yes")],
        )
        .await;
    let flow = location(&res);
    assert!(flow.starts_with("/admin/verify/bankid/"), "{flow}");
    let order = t.sim.state.phone_orders_for(ANNA).pop().expect("a phone order for the enrolled number");
    assert_eq!(order.phone, Some((ANNA.to_string(), true)), "callInitiator RP");
    // The called person sees the order in the (simulated) app and opens it.
    let app_page = t.http.get(&t.sim.app_url).send().await.unwrap().text().await.unwrap();
    assert!(app_page.contains(&format!("/app/phone/{}", order.order_ref)) && app_page.contains("blir uppringd"));
    let res = t
        .http
        .post(format!("{}/phone/{}", t.sim.app_url, order.order_ref))
        .form(&[("identity", ANNA)])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("Bekräfta att du pratar med den som ringde"));
    t.app.clock.advance_seconds(2);
    let html = t.app.get_html(&flow).await;
    assert_eq!(text_of(&html, "verify-message").unwrap(), "Bekräfta i BankID-appen att du pratar med oss i telefon.");
    t.sim.state.approve(&order.order_ref).unwrap();
    t.app.clock.advance_seconds(2);
    let html = t.app.get_html(&flow).await;
    assert_verified(&html, &caller, "3 stjärnor");
    // The desk called the person back (on a number it already had): the text says so, rather than
    // telling them not to read it out to someone who called them.
    let page = t.app.get_html("/admin/verify").await;
    let form = [
        ("csrf", csrf_in(&page)),
        ("username", caller.name.clone()),
        ("method", "sms".into()),
        ("we_called", "yes".into()),
    ];
    t.app.post("/admin/verify", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let text = t.sms.as_ref().unwrap().state.messages_to("+46701234567").pop().unwrap().text;
    assert!(text.contains("som har ringt upp dig. Läs bara upp den i det samtalet."), "{text}");
    let audit = t.app.audit().await;
    // Each entry of the service desk's checks names the agent who made it.
    let by = format!(" (by {})", agent.name);
    assert!(audit.iter().any(|a| a.event == "bankid-order"
        && a.detail.as_deref() == Some(&format!("caller: phone/auth, call initiator RP{by}"))));
    assert!(audit.iter().any(|a| a.event == "sms-check"
        && a.outcome == "success"
        && a.detail.as_deref() == Some(&format!("verify: verified{by}"))));
    let caller_id = audit.iter().find(|a| a.username.as_deref() == Some(caller.name.as_str())).unwrap().user_id.clone();
    let desk: Vec<_> = audit
        .iter()
        .filter(|a| a.user_id == caller_id)
        .filter(|a| ["sms-send", "sms-check", "bankid-order", "bankid-result"].contains(&a.event.as_str()))
        .filter(|a| a.detail.as_deref().is_some_and(|d| !d.starts_with("enrol")))
        .collect();
    assert!(desk.len() >= 6, "{desk:#?}");
    assert!(desk.iter().all(|a| a.detail.as_deref().unwrap().ends_with(&by)), "{desk:#?}");
    assert!(desk.iter().all(|a| a.actor.as_deref() == Some(agent.name.as_str())), "a field of its own: {desk:#?}");
    // Searching the trail for the agent finds what they did about the caller, too.
    let filter = stjarna::storage::AuditFilter { user: Some(agent.name.clone()), ..Default::default() };
    let (found, _) = t.app.store().await.audit_search(&filter, 0, 100).await.unwrap();
    assert_eq!(found.iter().filter(|a| a.user_id == caller_id).count(), desk.len(), "{found:#?}");
    // And searching it for the caller finds all of those, also the BankID results that carry
    // only the caller's id.
    let filter = stjarna::storage::AuditFilter { user: Some(caller.name.clone()), ..Default::default() };
    let (found, _) = t.app.store().await.audit_search(&filter, 0, 100).await.unwrap();
    assert!(desk.iter().any(|a| a.event == "bankid-result" && a.username.is_none()), "{desk:#?}");
    assert!(desk.iter().all(|a| found.iter().any(|f| f.id == a.id)), "{found:#?}");
    // What the caller did themselves (their own enrolment) names nobody else.
    assert!(audit.iter().filter(|a| a.event == "enrol").all(|a| !a.detail.as_deref().unwrap_or("").contains(" (by ")));
    assert!(audit.iter().filter(|a| a.event == "enrol").all(|a| a.actor.is_none()));
}

/// The caller-verification pages check a caller's code and collect a caller's order only: not
/// the agent's own enrolment, whose own page checks it with the proof it needs then.
#[tokio::test]
async fn the_caller_pages_do_not_complete_the_agents_own_enrolment() {
    let dc = require_dc!();
    let (agent, desk) = helpdesk_agent(&dc, "agent-own").await;
    let t = spawn_with_sms(&dc, Gateway::Elks46, desk).await;
    t.app.login(&agent.name, &agent.password).await;
    let csrf = csrf_in(&t.app.get_html("/enrol/sms").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0701234567")]).await;
    let challenge = location(&res);
    let id = challenge.trim_start_matches("/sms/").to_string();
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    let user_id = t.app.sessions().await[0].user_id.clone();
    let csrf = csrf_in(&t.app.get_html("/admin/verify").await);
    let res =
        t.app.post(&format!("/admin/verify/sms/{id}"), &[("csrf", &csrf), ("user", &user_id), ("code", &code)]).await;
    assert_eq!(res.status(), 404, "not a caller's code");
    assert!(t.app.store().await.sms_enrolment(&user_id).await.unwrap().is_none(), "nothing enrolled");

    let bankid = crate::sims::flow_id(&t.post_from("/", "/enrol/bankid").await);
    let order = t.app_scan(&t.scan_qr_frame(&bankid).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    assert_eq!(t.app.get(&format!("/admin/verify/bankid/{bankid}")).await.status(), 404, "not a caller's order");
    assert!(t.app.store().await.bankid_enrolment(&user_id).await.unwrap().is_none(), "nothing enrolled");
    assert_eq!(t.app.sessions().await.len(), 1, "and the agent's session goes on");
}

/// The agent who doubts a caller stops the BankID request at once (it would otherwise keep asking
/// the phone for minutes, and the real owner might approve it); and an agent asked for their
/// password again comes back to the order they were following, rather than starting a new one
/// (another prompt on the phone, one more of the hour's five).
#[tokio::test]
async fn the_service_desk_cancels_a_phone_order_and_comes_back_to_it_after_reauthentication() {
    let dc = require_dc!();
    let (agent, desk) = helpdesk_agent(&dc, "canceller").await;
    let caller = dc.create_user("doubted").await;
    let mut t = crate::sims::spawn_with_bankid(&dc, desk).await;
    t.app.login(&caller.name, &caller.password).await;
    t.enrol(ANNA).await;
    t.app.client = new_client();
    t.app.login(&agent.name, &agent.password).await;
    let start = async |t: &crate::sims::SimTest| {
        let page = t.app.get_html("/admin/verify").await;
        let csrf = csrf_in(&page);
        let form = [("csrf", csrf.as_str()), ("username", caller.name.as_str()), ("method", "bankid")];
        location(&t.app.post("/admin/verify", &form).await)
    };
    let flow = start(&t).await;
    let page = t.app.get_html(&flow).await;
    let action = format!("{flow}/cancel");
    assert!(page.contains(&format!("action=\"{action}\"")), "{page}");
    let order = t.sim.state.phone_orders_for(ANNA).pop().unwrap();
    let res = t.app.post(&action, &[("csrf", &csrf_in(&page))]).await;
    let html = t.app.follow(res).await;
    assert_eq!(text_of(&html, "verify-message").unwrap(), "Förfrågan avbröts: telefonen frågar inte längre.");
    assert!(t.sim.state.phone_orders_for(ANNA).is_empty(), "BankID stopped asking");
    assert_eq!(
        t.sim.state.order(&order.order_ref).unwrap().status,
        stjarna::simulators::bankid::Status::Failed("cancelled".into())
    );
    let audit = t.app.audit().await;
    let cancel = audit.iter().find(|a| a.event == "bankid-cancel").expect("the cancel is audited");
    assert!(cancel.detail.as_deref().unwrap().ends_with(&format!("(by {})", agent.name)), "{cancel:?}");
    // An order this browser did not start is not found.
    let res = t.app.post("/admin/verify/bankid/no-such-order/cancel", &[("csrf", &csrf_in(&page))]).await;
    assert_eq!(res.status(), 404);

    // An order that ended before the cancel (the person confirmed a moment before) is not told
    // as cancelled: its page says how it ended.
    let flow = start(&t).await;
    let order = t.sim.state.phone_orders_for(ANNA).pop().unwrap();
    t.sim.state.answer_phone(&order.order_ref, ANNA).unwrap();
    t.sim.state.approve(&order.order_ref).unwrap();
    let page = t.app.get_html(&flow).await;
    assert_verified(&page, &caller, "3 stjärnor");
    let res = t.app.post(&format!("{flow}/cancel"), &[("csrf", &csrf_in(&page))]).await;
    assert_eq!(location(&res), flow);
    assert_verified(&t.app.get_html(&flow).await, &caller, "3 stjärnor");

    let flow = start(&t).await;
    t.app.clock.advance_seconds(10 * 60);
    assert_eq!(t.app.get("/").await.status(), 200);
    t.app.clock.advance_seconds(6 * 60);
    let res = t.app.get(&flow).await;
    let back = serde_urlencoded::to_string([("back", flow.as_str())]).unwrap();
    assert_eq!(location(&res), format!("/admin/reauth?{back}"));
    // The cancel itself asks for no password first: the phone would keep asking meanwhile.
    let page = t.app.get_html("/").await;
    let res = t.app.post(&format!("{flow}/cancel"), &[("csrf", &csrf_in(&page))]).await;
    assert!(location(&res).starts_with("/admin/verify?"), "{}", location(&res));
    assert!(t.sim.state.phone_orders_for(ANNA).is_empty());
}

/// The caller verification's verdict names the account and when it was made:
/// "Verifierad 2026-12-02 10:42: Anna Andersson, konto EXAMPLE\anna (3 stjärnor)."
fn assert_verified(html: &str, caller: &TestUser, stars: &str) {
    let told = text_of(html, "verify-message").unwrap();
    let tail = format!(": {}, konto EXAMPLE\\{} ({stars}).", caller.display_name, caller.name);
    assert!(told.starts_with("Verifierad ") && told.ends_with(&tail), "{told}");
}

/// An agent whose staff account has nothing enrolled is known by the personal number AD holds
/// for it: they cannot lift the cooling-off of their everyday account, whose BankID has that
/// number (before, nothing linked the two). On an account with nothing to compare theirs with
/// (a mobile number only), they lift nothing either: it may be theirs.
#[tokio::test]
async fn an_agent_cannot_lift_their_everyday_accounts_cooling_off_from_a_staff_account() {
    let dc = require_dc!();
    let (agent, desk) = helpdesk_agent(&dc, "att-staff").await;
    let everyday = dc.create_user("att-everyday").await;
    let stranger = dc.create_user("att-stranger").await;
    dc.modify(&agent.dn, "employeeNumber", ANNA).await;
    dc.modify(&everyday.dn, "employeeNumber", ANNA).await;
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, move |c| desk(cooling_with_numbers(c))).await;
    // The agent's everyday account has their BankID and a number, cooling off for a day; the
    // stranger's a number only.
    t.attacker_logs_in(&everyday.name, &everyday.password).await;
    t.enrol(ANNA).await;
    enrol_number(&t, "0704444444").await;
    t.attacker_logs_in(&stranger.name, &stranger.password).await;
    enrol_number(&t, "0705555555").await;

    t.attacker_logs_in(&agent.name, &agent.password).await;
    let told = desk_lifts(&t, &everyday.name, "+46704444444").await;
    assert!(told.contains("ditt personnummer"), "{told}");
    let told = desk_lifts(&t, &stranger.name, "+46705555555").await;
    assert!(told.starts_with("Inget hävdes: Stjärna kan inte försäkra sig om att kontot inte är ditt"), "{told}");
    let audit = t.app.audit().await;
    for (why, name) in [("the agent's own account", &everyday.name), ("nothing to compare", &stranger.name)] {
        assert!(
            audit.iter().any(|a| a.outcome == "blocked"
                && a.username.as_deref() == Some(name.as_str())
                && a.detail.as_deref().unwrap_or("").contains(why)),
            "a blocked lift ({why}) is audited"
        );
    }
}

/// A privileged account's cooling-off is an administrator's to lift, not the service desk's (AD's
/// tiers: the desk does not manage the accounts that manage the domain). The desk's verdict lists
/// what cools off and says who can lift it, and offers nothing; a lift sent anyway is refused.
#[tokio::test]
async fn only_an_administrator_lifts_a_privileged_accounts_cooling_off() {
    let dc = require_dc!();
    let (agent, desk) = helpdesk_agent(&dc, "att-tier").await;
    let (boss, admin) = (admin_user(&dc).await, admin_user(&dc).await);
    for (user, pn) in [(&agent, BERTIL), (&boss, ANNA), (&admin, BLOCKED)] {
        dc.modify(&user.dn, "employeeNumber", pn).await;
    }
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, move |c| desk(cooling_with_numbers(c))).await;
    // The boss's BankID and number, a day old; then a new number (proved with the old one).
    t.attacker_logs_in(&boss.name, &boss.password).await;
    t.enrol(ANNA).await;
    enrol_number(&t, "0706666666").await;
    let boss_id = t.app.sessions().await[0].user_id.clone();
    t.app.clock.advance_seconds(25 * 3600);
    t.attacker_logs_in(&boss.name, &boss.password).await;
    let challenge = location(&t.post_from("/", "/verify/sms").await);
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46706666666").unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;
    let challenge = location(&t.submit_number("0707777777", true).await);
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46707777777").unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;

    // The service desk verifies the boss with the BankID: the new number is listed, not offered.
    t.attacker_logs_in(&agent.name, &agent.password).await;
    let (html, proof) = desk_verifies_by_bankid(&t, &boss.name).await;
    assert!(!html.contains("lift-form"), "nothing offered");
    let listed = text_of(&html, "lift-admin-only").unwrap();
    assert!(listed.contains("bara en IT-administratör") && listed.contains("+46 70 *** ** 77"), "{listed}");
    let form = [("csrf", csrf_in(&html)), ("user", boss_id.clone()), ("proof", proof), ("sms", "1".into())];
    let res = t.app.post("/admin/verify/lift", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let message = text_of(&t.app.follow(res).await, "verify-message").unwrap();
    assert!(message.starts_with("Inget hävdes: kontot är privilegierat"), "{message}");

    // An administrator lifts it.
    t.attacker_logs_in(&admin.name, &admin.password).await;
    let (html, proof) = desk_verifies_by_bankid(&t, &boss.name).await;
    assert_eq!(attr_of(&html, "#lift-form input[name=proof]", "value"), proof);
    let form = [("csrf", csrf_in(&html)), ("user", boss_id), ("proof", proof), ("sms", "1".into())];
    let res = t.app.post("/admin/verify/lift", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let message = text_of(&t.app.follow(res).await, "verify-message").unwrap();
    assert!(message.contains("hävd (1 tjänst)"), "{message}");
    let audit = t.app.audit().await;
    let refused =
        |a: &&stjarna::storage::AuditRecord| a.detail.as_deref().unwrap_or("").contains("a privileged account");
    assert_eq!(audit.iter().filter(refused).count(), 1, "the agent's refusal is audited");
}

/// The logged-in agent verifies `name` with a BankID order to the caller's phone (the caller
/// approves); the verdict page and the proof a lift names.
async fn desk_verifies_by_bankid(t: &crate::sims::SimTest, name: &str) -> (String, String) {
    let page = t.app.get_html("/admin/verify").await;
    let form = [("csrf", csrf_in(&page)), ("username", name.to_string()), ("method", "bankid".into())];
    let res = t.app.post("/admin/verify", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let flow = location(&res);
    let order = t.sim.state.phone_orders_for(ANNA).pop().expect("a phone order");
    let phone = format!("{}/phone/{}", t.sim.app_url, order.order_ref);
    t.http.post(phone).form(&[("identity", ANNA)]).send().await.unwrap();
    t.sim.state.approve(&order.order_ref).unwrap();
    t.app.clock.advance_seconds(2);
    let proof = format!("bankid:{}", flow.rsplit('/').next().unwrap());
    (t.app.get_html(&flow).await, proof)
}

/// A day's cooling-off, and BankID bound to the personal number in `employeeNumber` (which the
/// desk then compares accounts by too).
fn cooling_with_numbers(c: String) -> String {
    let c = c.replace("cooldown_hours = 0", "cooldown_hours = 24");
    c.replace("[bankid]\n", "[bankid]\npersonal_number_attribute = \"employeeNumber\"\n")
}

/// The logged-in user enrols a mobile number (their first service, or their second just after
/// enrolling the first).
async fn enrol_number(t: &crate::sims::SimTest, number: &str) {
    let res = t.submit_number(number, false).await;
    let challenge = location(&res);
    let e164 = format!("+46{}", &number[1..]);
    let code = t.sms.as_ref().unwrap().state.last_code_to(&e164).unwrap();
    t.app.post(&challenge, &[("csrf", &csrf_in(&t.app.get_html(&challenge).await)), ("code", &code)]).await;
}

/// The logged-in agent verifies `name` with a code sent to `e164`, then asks to lift the
/// cooling-off of the caller's mobile code; what the page then says.
async fn desk_lifts(t: &crate::sims::SimTest, name: &str, e164: &str) -> String {
    let page = t.app.get_html("/admin/verify").await;
    let form = [("csrf", csrf_in(&page)), ("username", name.to_string()), ("method", "sms".into())];
    let html = t.app.post("/admin/verify", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    let html = t.app.follow(html).await;
    let action = attr_of(&html, "form[action^='/admin/verify/sms/']", "action");
    let user_id = attr_of(&html, "input[name=user]", "value");
    let code = t.sms.as_ref().unwrap().state.last_code_to(e164).unwrap();
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", &code)]).await;
    let html = t.app.follow(res).await;
    let proof = format!("sms:{}", &action[18..]);
    let form = [("csrf", csrf_in(&html)), ("user", user_id), ("proof", proof), ("sms", "1".into())];
    let res = t.app.post("/admin/verify/lift", &form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    text_of(&t.app.follow(res).await, "verify-message").unwrap()
}
