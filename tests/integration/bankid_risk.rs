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
        format!("Stjärna: registrera BankID för lösenordsåterställning för EXAMPLE\\\\{}.", user.name)
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
