//! Once AD has the new password, the user is told it is done, and what must follow (the other
//! sessions ending, the mail) follows, even when the portal's own records cannot be written.
//! An error page there would tell the user the reset or change failed, and invite them to do it
//! again with the password that AD no longer has.

use crate::change::change;
use crate::helpers::{new_client, spawn_app, text_of};
use crate::reset::enrolled;

const NEW: &str = "Tre-glada-kor-på-bete7";

#[tokio::test]
async fn a_reset_is_done_when_its_audit_entry_cannot_be_written() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "rstaud", |c| c).await;
    // Someone is logged in as the user elsewhere: that session must end all the same.
    t.app.login(&user.name, &user.password).await;
    let elsewhere = std::mem::replace(&mut t.app.client, new_client());
    t.app.store().await.refuse_audit("password-reset").await;

    t.reset_told_done(&user.name, NEW).await;
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0, "AD has the new password");
    let audit = t.app.audit().await;
    assert!(
        !audit.iter().any(|a| a.event == "password-reset" && a.outcome == "success"),
        "the database refused the entry (else this test proves nothing)"
    );
    let mail = t.mail_to(&format!("{}@example.test", user.name), "Stjärna: ditt lösenord har bytts").await;
    assert!(mail.text.contains("Ditt lösenord har återställts"), "{}", mail.text);
    t.app.client = elsewhere;
    assert_ne!(t.app.get("/").await.status(), 200, "the other browser is logged out");
}

#[tokio::test]
async fn a_change_is_done_when_its_audit_entry_cannot_be_written() {
    let dc = require_dc!();
    let user = dc.create_user("chgaud").await;
    let mut app = spawn_app(&dc).await;
    app.login(&user.name, &user.password).await;
    let elsewhere = std::mem::replace(&mut app.client, new_client());
    app.store().await.refuse_audit("password-change").await;

    let done = change(&app, Some(&user.name), &user.password, NEW).await;
    assert!(done.starts_with("Ditt lösenord är bytt"), "{done}");
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0, "AD has the new password");
    assert!(!app.audit().await.iter().any(|a| a.event == "password-change"), "the database refused the entry");
    let to = format!("{}@example.test", user.name).to_lowercase();
    let mails: Vec<(String, String)> =
        app.store().await.fetch_all("SELECT recipient, text_body FROM mail_outbox").await;
    assert!(
        mails.iter().any(|(r, body)| r.to_lowercase() == to && body.contains("Ditt lösenord har bytts")),
        "the mail is queued: {mails:?}"
    );
    app.client = elsewhere;
    assert_ne!(app.get("/").await.status(), 200, "the other browser is logged out");
}

#[tokio::test]
async fn sessions_the_database_would_not_end_are_audited_and_end_at_their_next_check() {
    let dc = require_dc!();
    let (user, mut t) = enrolled(&dc, "rstses", |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let elsewhere = std::mem::replace(&mut t.app.client, new_client());
    t.app.store().await.refuse_session_end().await;

    t.reset_told_done(&user.name, NEW).await;
    let audit = t.app.audit().await;
    assert!(
        audit.iter().any(|a| a.event == "session-expired"
            && a.outcome == "failure"
            && a.detail.as_deref().is_some_and(|d| d.contains("could not be ended"))),
        "{audit:?}"
    );
    assert!(audit.iter().any(|a| a.event == "password-reset" && a.outcome == "success"), "{audit:?}");

    // The database works again; the other browser's session is still stored, and its next check
    // against AD (at most a minute later) sees the new password and ends it.
    t.app.store().await.allow("refuse_session_end").await;
    t.app.client = elsewhere;
    assert_eq!(t.app.get("/").await.status(), 200, "the delete was refused (else this test proves nothing)");
    t.app.clock.advance_seconds(61);
    assert_ne!(t.app.get("/").await.status(), 200, "the other browser is logged out");
}

#[tokio::test]
async fn a_reset_whose_flow_cannot_be_marked_done_is_still_told_as_done() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "rstfin", |c| c).await;
    t.app.store().await.refuse_flow_end().await;
    let flow = t.reset_told_done(&user.name, NEW).await;
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0, "AD has the new password");
    // The flow stayed "being saved" (else this test proves nothing); reloaded, it says so, and
    // that the new password is worth a try.
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "reset-message").is_some_and(|m| m.contains("försök logga in med det nya")), "{page}");
}
