//! BankID as BankID recommends (RP API v6): the risk indication, the browser's device data, the
//! account named in the app, and the same-device address check; the simulator speaks the same.

use std::sync::Arc;

use stjarna::clock::{ManualClock, OsRandom};
use stjarna::identity::bankid::wire::{AuthRequest, WebDevice};
use stjarna::simulators::bankid::{Identity, SimState};

use crate::helpers::location;
use crate::sims::{ANNA, BERTIL, logged_in};

const LONG_AGENT: &str = "Mozilla/5.0";

#[tokio::test]
async fn orders_carry_the_device_data_the_risk_request_and_the_account() {
    let dc = require_dc!();
    let user = dc.create_user("risk-web").await;
    let mut t = crate::sims::spawn_with_bankid(&dc, |c| c).await;
    let agent = format!("{LONG_AGENT} {}", "x".repeat(300));
    t.app.client = crate::helpers::client_builder().cookie_store(true).user_agent(agent.clone()).build().unwrap();
    t.app.login(&user.name, &user.password).await;
    let id = t.start_enrol().await;
    let order_ref = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    let order = t.sim.state.order(&order_ref).unwrap();
    let web = order.web.expect("web device data is sent");
    assert_eq!(web.referring_domain, "127.0.0.1");
    assert_eq!(web.user_agent.chars().count(), 256, "the user agent is cut to 256 characters");
    assert!(agent.starts_with(&web.user_agent));
    let hashed = web.device_identifier.len() == 64 && web.device_identifier.chars().all(|c| c.is_ascii_hexdigit());
    assert!(hashed, "a keyed hash of the browser binding, not the cookie: {}", web.device_identifier);
    assert!(order.return_risk, "the risk indication is asked for");
    assert_eq!(
        order.visible_text,
        format!(
            "Stjärna: registrera BankID för lösenordsåterställning för EXAMPLE\\\\{}.\n\nGodkänn bara om du själv nyss \
             startade detta på 127.0.0.1. Har någon bett dig att legitimera dig, avbryt.",
            user.name
        )
    );
    t.app_press(&order_ref, "approve").await;
    t.poll_message(&id).await;
    let audit = t.app.audit().await;
    assert!(
        audit.iter().any(|a| a.event == "bankid-result" && a.detail.as_deref() == Some("enrol: risk low")),
        "the risk is in the audit trail"
    );

    // The same browser keeps its identifier (here replacing the BankID, proved just now).
    let again = crate::sims::flow_id(&t.post_from("/", "/enrol/bankid/replace").await);
    let second = t.app_scan(&t.scan_qr_frame(&again).await, BERTIL).await.unwrap();
    assert_eq!(t.sim.state.order(&second).unwrap().web.unwrap().device_identifier, web.device_identifier);
}

#[tokio::test]
async fn an_order_bankid_rates_high_risk_is_refused_and_nothing_is_enrolled() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "risk-high", |c| c).await;
    t.sim.state.set_risk("high");
    let id = t.start_enrol().await;
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    assert!(t.poll_message(&id).await.starts_with("BankID bedömde inloggningen som osäker"));
    assert!(t.app.store().await.all_enrolments().await.unwrap().is_empty());
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.outcome == "blocked" && a.detail.as_deref() == Some("enrol: risk high")));

    // A moderate risk passes the default `max_risk`.
    let (_, t) = logged_in(&dc, "risk-mod", |c| c).await;
    t.sim.state.set_risk("moderate");
    t.enrol(ANNA).await;
}

#[tokio::test]
async fn the_app_opened_on_another_device_is_refused_when_configured() {
    let dc = require_dc!();
    let refuse = |c: String| c.replace("[bankid]\n", "[bankid]\nsame_device_ip = \"refuse\"\n");
    let (_, t) = logged_in(&dc, "risk-ip", refuse).await;
    t.sim.state.set_device_ip(Some("203.0.113.9")); // a relayed autostart link opened elsewhere
    let id = t.start_enrol().await;
    let res = t.app.get(&format!("/bankid/{id}/open")).await;
    let order = t.app_autostart(&location(&res), ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    assert!(t.poll_message(&id).await.starts_with("BankID-appen startades på en annan enhet"));
    assert!(t.app.store().await.all_enrolments().await.unwrap().is_empty());

    // The QR code is meant for another device: no address check there.
    let qr = t.start_enrol().await;
    let order = t.app_scan(&t.scan_qr_frame(&qr).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    assert_eq!(t.poll_message(&qr).await, "Du har nu registrerat ditt BankID för återställning av lösenord.");
}

#[test]
fn the_simulator_checks_web_and_answers_risk_and_the_device() {
    let state = SimState::new(Arc::new(ManualClock::starting_now()), Arc::new(OsRandom), Identity::defaults());
    let request = |web: Option<WebDevice>| AuthRequest {
        end_user_ip: "192.0.2.1".into(),
        requirement: None,
        user_visible_data: None,
        user_visible_data_format: None,
        return_url: None,
        return_risk: Some(true),
        web,
    };
    let web = |domain: &str| WebDevice {
        device_identifier: "abc".into(),
        referring_domain: domain.into(),
        user_agent: "Mozilla/5.0".into(),
    };
    let refused = state.auth(&request(Some(web("https://example.se/")))).unwrap_err();
    assert_eq!(refused.1, "invalidParameters");
    let started = state.auth(&request(Some(web("example.se")))).unwrap();
    state.set_risk("high");
    let payload = state.current_qr_payload(&started.order_ref).unwrap();
    let order_ref = state.scan(&payload, ANNA).unwrap();
    state.approve(&order_ref).unwrap();
    let done = state.collect(&order_ref).unwrap().completion_data.unwrap();
    assert_eq!(done.risk.as_deref(), Some("low"), "the risk is fixed when the order starts");
    let device = done.device.unwrap();
    assert_eq!(device.ip_address, "192.0.2.1");
    assert!(device.uhi.is_some_and(|u| !u.is_empty()), "a v6 unique hardware id");
}

/// The path and query of the URL the simulated app opens after `order` (its `returnUrl`), as the
/// app page links it.
async fn app_returns_to(t: &crate::sims::SimTest, order: &str) -> String {
    let page = t.http.get(format!("{}/order/{order}", t.sim.app_url)).send().await.unwrap().text().await.unwrap();
    let url = t.sim.state.return_to(order).expect("the app sends the user back");
    assert!(page.contains(&format!("href=\"{url}\"")), "the app page links it");
    let path = url.splitn(4, '/').nth(3).expect("an absolute URL");
    format!("/{path}")
}

/// The portal behind a proxy on loopback, so that a test can say where a request comes from.
fn proxied(c: String) -> String {
    c.replace("[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n")
}

/// A relayed "open BankID on this device" link (the same-device address check only logs, the
/// default): the attacker starts a BankID reset, has the portal open the app, and sends the link to
/// the account's owner, whose phone approves. The app sends the owner's phone back, never the
/// attacker's browser, and is not at the attacker's address: no reset starts, the owner's page says
/// what to do if they did not start this, and the return elsewhere is audited.
#[tokio::test]
async fn a_relayed_autostart_link_starts_no_reset_and_warns_the_victim() {
    let dc = require_dc!();
    let (_, t) = crate::reset::enrolled(&dc, "relay", proxied).await;
    t.sim.state.set_device_ip(Some("203.0.113.9")); // the victim's phone, somewhere else
    // (The attacker's browser: the test's, whose session plays no part in a reset.)
    let res = t.post_from("/reset", "/reset/bankid").await;
    let id = crate::sims::flow_id(&res);
    let launch = location(&t.app.get(&format!("/bankid/{id}/open")).await);
    // The victim's phone opens the link and approves.
    let order = t.app_autostart(&launch, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    let message = t.poll_message(&id).await;
    assert!(message.starts_with("Legitimeringen är klar i BankID-appen."), "{message}");
    let res = t.app.get(&format!("/bankid/{id}")).await;
    assert_eq!(res.status(), 200, "no reset flow: {:?}", res.headers().get("location"));
    // The app opens the return URL on the victim's phone, in a browser of its own.
    let back = app_returns_to(&t, &order).await;
    let victim = crate::helpers::new_client();
    let from_phone =
        |path: &str| victim.get(format!("{}{path}", t.app.address)).header("X-Forwarded-For", "203.0.113.9").send();
    let notice = location(&from_phone(&back).await.unwrap());
    let warned = from_phone(&notice).await.unwrap().text().await.unwrap();
    assert!(warned.contains("Började du inte själv? Då kan någon försöka lura dig"), "{warned}");
    // The attacker's order never counts, and after two minutes says so.
    t.app.clock.advance_seconds(2);
    let res = t.app.get(&format!("/bankid/{id}")).await;
    assert_eq!(res.status(), 200, "still no reset flow");
    t.app.clock.advance_seconds(121);
    assert!(t.poll_message(&id).await.starts_with("Legitimeringen i BankID-appen kunde inte kopplas"));
    let audit = t.app.audit().await;
    let relayed = |a: &stjarna::storage::AuditRecord| {
        a.event == "bankid-result" && a.detail.as_deref().is_some_and(|d| d.contains("another browser"))
    };
    assert!(audit.iter().any(relayed), "{audit:#?}");
    assert!(!audit.iter().any(|a| a.event == "reset-start" && a.outcome == "success"), "{audit:#?}");
}

/// On one device, the app sends the user back to the browser they began in, and the order goes on
/// there, also when BankID saw the app at another address (IPv4 beside the browser's IPv6). The
/// link is theirs alone, and a wrong nonce is no way back.
#[tokio::test]
async fn on_one_device_the_app_sends_the_user_back_and_the_reset_goes_on() {
    let dc = require_dc!();
    let (_, t) = crate::reset::enrolled(&dc, "sameapp", |c| c).await;
    t.sim.state.set_device_ip(Some("192.0.2.44"));
    let res = t.post_from("/reset", "/reset/bankid").await;
    let id = crate::sims::flow_id(&res);
    let launch = location(&t.app.get(&format!("/bankid/{id}/open")).await);
    let order = t.app_autostart(&launch, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    let back = app_returns_to(&t, &order).await;
    let forged = back.rsplit_once("n=").map(|(head, _)| format!("{head}n=forged")).unwrap();
    assert_eq!(t.app.get(&forged).await.status(), 404);
    let res = t.app.get(&back).await;
    assert_eq!(location(&res), format!("/bankid/{id}"));
    t.app.clock.advance_seconds(2);
    let flow = location(&t.app.get(&format!("/bankid/{id}")).await);
    assert!(flow.starts_with("/reset/"), "the reset starts: {flow}");
}

/// A phone whose app opens the return URL in its default browser, not the one the user began in
/// (Chrome on an iPhone opens Safari): that browser says to go back, and the order goes on in the
/// first, since BankID saw the app at its address. A return that comes too late counts for nothing.
#[tokio::test]
async fn a_return_in_another_browser_of_the_same_device_sends_the_user_back_to_the_first() {
    let dc = require_dc!();
    let (_, t) = crate::reset::enrolled(&dc, "twobrowsers", |c| c).await;
    let res = t.post_from("/reset", "/reset/bankid").await;
    let id = crate::sims::flow_id(&res);
    let launch = location(&t.app.get(&format!("/bankid/{id}/open")).await);
    let order = t.app_autostart(&launch, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    let back = app_returns_to(&t, &order).await;
    let safari = crate::helpers::new_client();
    let notice = location(&safari.get(format!("{}{back}", t.app.address)).send().await.unwrap());
    let told = safari.get(format!("{}{notice}", t.app.address)).send().await.unwrap().text().await.unwrap();
    assert!(told.contains("Gå tillbaka till den webbläsaren för att fortsätta."), "{told}");
    t.app.clock.advance_seconds(2);
    let flow = location(&t.app.get(&format!("/bankid/{id}")).await);
    assert!(flow.starts_with("/reset/"), "the reset starts in the first browser: {flow}");

    // Another order whose app was seen elsewhere and whose way back comes after two minutes.
    t.sim.state.set_device_ip(Some("192.0.2.44"));
    let id = crate::sims::flow_id(&t.post_from("/reset", "/reset/bankid").await);
    let launch = location(&t.app.get(&format!("/bankid/{id}/open")).await);
    let order = t.app_autostart(&launch, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    assert!(t.poll_message(&id).await.starts_with("Legitimeringen är klar i BankID-appen."));
    t.app.clock.advance_seconds(121);
    let back = app_returns_to(&t, &order).await;
    t.app.get(&back).await;
    assert!(t.poll_message(&id).await.starts_with("Legitimeringen i BankID-appen kunde inte kopplas"));
}
