//! An enrolled Mobile BankID used as proof: to verify, to log in, and what an unenrolled one is told.

use crate::helpers::{location, new_client};
use crate::sims::{ANNA, BERTIL, flow_id, logged_in, spawn_with_bankid};

#[tokio::test]
async fn verification_needs_the_enrolled_bankid() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "verify", |c| c).await;
    t.enrol(ANNA).await;

    let verify = |identity: &'static str| {
        let t = &t;
        async move {
            let res = t.post_from("/", "/verify/bankid").await;
            let id = flow_id(&res);
            let order = t.app_scan(&t.scan_qr_frame(&id).await, identity).await.unwrap();
            t.app_press(&order, "approve").await;
            t.poll_message(&id).await
        }
    };
    assert_eq!(verify(ANNA).await, "Ditt BankID är bekräftat.");
    assert!(verify(BERTIL).await.starts_with("Det BankID du använde har inte det personnummer"));
    let records = t.app.store().await.enrolments(&t.app.sessions().await[0].user_id).await.unwrap();
    assert!(records[0].last_used_at.is_some(), "a verification marks the service used");
}

#[tokio::test]
async fn an_enrolled_user_logs_in_with_bankid_instead_of_a_password() {
    let dc = require_dc!();
    let user = dc.create_user("bidlogin").await;
    let mut t = spawn_with_bankid(&dc, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    t.enrol(ANNA).await;

    t.app.client = new_client();
    let login_page = t.app.get_html("/login").await;
    assert!(login_page.contains("Logga in med Mobilt BankID"));
    let res = t.post_from("/login", "/login/bankid").await;
    let id = flow_id(&res);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    let res = t.app.get(&format!("/bankid/{id}")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    let home = t.app.get_html("/").await;
    assert!(home.contains(&user.display_name), "logged in as the enrolled user");
    assert!(
        t.app.audit().await.iter().any(|a| a.event == "login" && a.detail.as_deref() == Some("Mobile BankID, user"))
    );
    // The completed order is used once.
    t.app.client = new_client();
    assert_eq!(t.app.get(&format!("/bankid/{id}")).await.status(), 404);
}

/// A BankID login completed but never taken (the tab closed as the app finished, on a shared
/// computer) does not log in whoever opens its page later.
#[tokio::test]
async fn a_completed_login_left_untaken_expires() {
    let dc = require_dc!();
    let user = dc.create_user("bidleft").await;
    let mut t = spawn_with_bankid(&dc, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    t.enrol(ANNA).await;
    t.app.client = new_client();
    let id = flow_id(&t.post_from("/login", "/login/bankid").await);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    let status = t.app.get(&format!("/bankid/{id}/status")).await.text().await.unwrap();
    assert!(status.contains("\"complete\""), "{status}");
    t.app.clock.advance_seconds(301);
    let res = t.app.get(&format!("/bankid/{id}")).await;
    assert_eq!(location(&res), "/");
    assert!(!t.app.get_html("/login").await.contains(&user.display_name), "not logged in");
    assert!(
        !t.app.audit().await.iter().any(|a| a.event == "login"
            && a.outcome == "success"
            && a.detail.as_deref() == Some("Mobile BankID, user"))
    );
}

#[tokio::test]
async fn a_bankid_that_is_not_enrolled_cannot_log_in() {
    let dc = require_dc!();
    let t = spawn_with_bankid(&dc, |c| c).await;
    let res = t.post_from("/login", "/login/bankid").await;
    let id = flow_id(&res);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, BERTIL).await.unwrap();
    t.app_press(&order, "approve").await;
    assert!(t.poll_message(&id).await.starts_with("Ditt BankID är inte kopplat till något konto här."));
    assert!(t.app.sessions().await.is_empty());
}

#[tokio::test]
async fn a_bankid_that_is_not_enrolled_cannot_start_a_reset_and_is_told_what_to_do_instead() {
    let dc = require_dc!();
    let t = spawn_with_bankid(&dc, |c| c).await;
    let res = t.post_from("/reset", "/reset/bankid").await;
    let id = flow_id(&res);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, BERTIL).await.unwrap();
    t.app_press(&order, "approve").await;
    let message = t.poll_message(&id).await;
    assert!(message.starts_with("Ditt BankID är inte kopplat till något konto här."), "{message}");
    // Who forgot their password cannot log in with it to enrol first.
    assert!(!message.contains("Logga in med ditt lösenord"), "{message}");
    assert!(message.contains("Börja om med ditt användarnamn"), "{message}");
}
