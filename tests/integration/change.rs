//! Changing a password knowing the current one, against Samba AD.

use crate::helpers::{TestApp, csrf_in, location, logged_in, new_client, spawn_app, text_of};

const NEW: &str = "Tre-glada-kor-på-bete7";

/// Posts the change form; the page's message (done, or the error).
pub async fn change(app: &TestApp, username: Option<&str>, current: &str, new: &str) -> String {
    let page = app.get_html("/change").await;
    let csrf = csrf_in(&page);
    let mut form = vec![("csrf", csrf.as_str()), ("current", current), ("password", new), ("repeat", new)];
    if let Some(u) = username {
        form.push(("username", u));
    }
    let res = app.post("/change", &form).await;
    // A change that went through redirects to a page that shows it (post/redirect/get).
    let html = if res.status() == 303 { app.get_html(&location(&res)).await } else { res.text().await.unwrap() };
    text_of(&html, "change-done").or_else(|| text_of(&html, "password-error")).unwrap_or_else(|| panic!("{html}"))
}

#[tokio::test]
async fn a_reload_after_a_change_sends_nothing_again_and_a_forged_receipt_shows_nothing() {
    let dc = require_dc!();
    let user = dc.create_user("chgprg").await;
    let app = spawn_app(&dc).await;
    let csrf = csrf_in(&app.get_html("/change").await);
    let form = [
        ("csrf", csrf.as_str()),
        ("username", &user.name),
        ("current", &user.password),
        ("password", NEW),
        ("repeat", NEW),
    ];
    let res = app.post("/change", &form).await;
    assert_eq!(res.status(), 303, "post/redirect/get");
    let done = location(&res);
    assert!(done.starts_with("/change?done="), "{done}");
    for _ in 0..2 {
        // Reloading the outcome page is a GET: nothing is sent to AD again.
        let page = app.get_html(&done).await;
        assert!(text_of(&page, "change-done").is_some());
    }
    assert_eq!(dc.attr(&user.dn, "badPwdCount").await.as_deref().unwrap_or("0"), "0", "no failed bind from reloads");
    // Someone else's browser, or a made-up receipt, shows the plain form.
    let other = crate::helpers::new_client();
    let elsewhere = other.get(app.url(&done)).send().await.unwrap().text().await.unwrap();
    assert!(text_of(&elsewhere, "change-done").is_none(), "a receipt is the browser's own");
    let forged = app.get_html("/change?done=1.00").await;
    assert!(text_of(&forged, "change-done").is_none());
}

#[tokio::test]
async fn a_logged_in_user_changes_the_password() {
    let dc = require_dc!();
    let (user, app) = logged_in(&dc, "chg").await;
    assert!(app.get_html("/").await.contains("href=\"/change\""));
    assert_eq!(
        change(&app, None, &user.password, NEW).await,
        "Ditt lösenord är bytt. Använd det nya lösenordet från och med nu."
    );
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0, "the new password binds");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 49, "the old one does not");
    assert!(app.audit().await.iter().any(|a| a.event == "password-change" && a.outcome == "success"));
    // A weak new password is refused before AD sees it, and the refusal is audited.
    let weak = change(&app, None, NEW, "Sommar2026!").await;
    assert_eq!(weak, "Lösenordet uppfyller inte alla regler. Reglerna som inte är uppfyllda är markerade.");
    assert!(app.audit().await.iter().any(|a| a.event == "password-change"
        && a.outcome == "failure"
        && a.detail.as_deref().is_some_and(|d| d.starts_with("refused by local rules"))));
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0, "unchanged");
}

/// A change ends the user's other sessions (someone who had the old password and a session loses
/// it), keeps the one that changed, and tells the user by mail.
#[tokio::test]
async fn a_change_ends_the_other_sessions_and_is_told_by_mail() {
    let dc = require_dc!();
    let user = dc.create_user("chgends").await;
    let mut app = spawn_app(&dc).await;
    app.login(&user.name, &user.password).await;
    let elsewhere = std::mem::replace(&mut app.client, new_client());
    app.login(&user.name, &user.password).await;
    let theirs = |sessions: Vec<stjarna::storage::SessionRecord>| {
        sessions.into_iter().filter(|s| s.account_name == user.name).count()
    };
    assert_eq!(theirs(app.sessions().await), 2);
    assert!(change(&app, None, &user.password, NEW).await.starts_with("Ditt lösenord är bytt"));
    assert_eq!(theirs(app.sessions().await), 1, "the other session ended");
    assert!(app.get_html("/").await.contains("href=\"/change\""), "this one goes on");
    let mine = std::mem::replace(&mut app.client, elsewhere);
    assert_ne!(app.get("/").await.status(), 200, "the other browser is logged out");
    app.client = mine;
    let to = format!("{}@example.test", user.name).to_lowercase();
    let mails: Vec<(String, String)> =
        app.store().await.fetch_all("SELECT recipient, text_body FROM mail_outbox").await;
    let theirs: Vec<&String> = mails.iter().filter(|(r, _)| r.to_lowercase() == to).map(|(_, body)| body).collect();
    assert_eq!(theirs.len(), 1, "one mail: {mails:?}");
    assert!(theirs[0].contains("Ditt lösenord har bytts via självserviceportalen."), "{}", theirs[0]);
}

#[tokio::test]
async fn a_wrong_current_password_is_explained_and_counts_toward_throttling() {
    let dc = require_dc!();
    let user = dc.create_user("chgwrong").await;
    let app = spawn_app(&dc).await;
    for _ in 0..2 {
        assert_eq!(change(&app, Some(&user.name), "not-it", NEW).await, "Fel användarnamn eller nuvarande lösenord.");
    }
    let last = change(&app, Some(&user.name), "not-it", NEW).await;
    assert!(last.contains("Det var sista försöket"), "the third says it was the last: {last}");
    // The fourth is stopped before AD sees it, as a login would be.
    assert!(change(&app, Some(&user.name), &user.password, NEW).await.starts_with("För många misslyckade försök"));
    assert_eq!(
        app.login_error(&user.name, &user.password).await,
        "För många misslyckade försök. Försök igen om 32 minuter."
    );
    assert_eq!(dc.attr(&user.dn, "lockoutTime").await.unwrap_or("0".into()), "0", "never locked in AD");
}

#[tokio::test]
async fn a_reused_password_is_refused_by_ad_and_explained() {
    let dc = require_dc!();
    let user = dc.create_user("chgreuse").await;
    let app = spawn_app(&dc).await;
    assert!(change(&app, Some(&user.name), &user.password, NEW).await.starts_with("Ditt lösenord är bytt"));
    let back = change(&app, Some(&user.name), NEW, &user.password).await;
    assert_eq!(
        back,
        "Katalogen (Active Directory) godtog inte lösenordet: du har använt det tidigare. Välj ett lösenord du inte har haft."
    );
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0, "unchanged");
}

#[tokio::test]
async fn a_password_that_must_change_is_changed_from_the_login_page() {
    let dc = require_dc!();
    let user = dc.create_user("chgmust").await;
    dc.modify(&user.dn, "pwdLastSet", "0").await;
    let app = spawn_app(&dc).await;
    let res = app.login(&user.name, &user.password).await;
    let page = location(&res);
    assert!(page.starts_with("/change?note="), "{page}");
    assert!(change(&app, Some(&user.name), &user.password, NEW).await.starts_with("Ditt lösenord är bytt"));
    assert_eq!(app.login(&user.name, NEW).await.status(), 303);
    assert_eq!(dc.bind(&user.dn, NEW).await.0, 0);
}

/// A refused change redirects to the form with its message (post/redirect/get): reloading it sends
/// no password to AD again; once the current password is proved, the form shows the account's own
/// rules with the broken ones marked, and keeps the name typed.
#[tokio::test]
async fn reloading_a_refused_change_sends_nothing_and_keeps_the_marks() {
    let dc = require_dc!();
    let user = dc.create_user("chgref").await;
    let app = spawn_app(&dc).await;
    let post = async |current: &str, new: &str| {
        let csrf = csrf_in(&app.get_html("/change").await);
        let form = [
            ("csrf", csrf.as_str()),
            ("username", user.name.as_str()),
            ("current", current),
            ("password", new),
            ("repeat", new),
        ];
        let res = app.post("/change", &form).await;
        assert_eq!(res.status(), 303, "post/redirect/get");
        location(&res)
    };
    let wrong = post("Wrong-pw-123!", NEW).await;
    for _ in 0..3 {
        let page = app.get_html(&wrong).await;
        assert!(text_of(&page, "password-error").unwrap().starts_with("Fel användarnamn eller nuvarande lösenord"));
        assert!(page.contains(&format!("value=\"{}\"", user.name)), "the name typed is kept");
    }
    assert_eq!(dc.attr(&user.dn, "badPwdCount").await.as_deref(), Some("1"), "one try, however many reloads");

    // The user's name in the new password breaks a rule only the account's own rules have.
    let weak = post(&user.password, &format!("{}-Abc-123-xyz", user.name)).await;
    let page = app.get_html(&weak).await;
    assert!(text_of(&page, "password-error").unwrap().starts_with("Lösenordet uppfyller inte alla regler"));
    let doc = scraper::Html::parse_document(&page);
    let marked: Vec<String> = doc
        .select(&scraper::Selector::parse("li.bad").unwrap())
        .map(|li| li.value().attr("data-rule").unwrap_or_default().to_string())
        .collect();
    assert!(!marked.is_empty(), "the broken rule is marked: {page}");
    // Another browser with the same address sees the domain's plain form.
    let other = crate::helpers::new_client();
    let elsewhere = other.get(app.url(&weak)).send().await.unwrap().text().await.unwrap();
    let bad = scraper::Html::parse_document(&elsewhere).select(&scraper::Selector::parse("li.bad").unwrap()).count();
    assert!(text_of(&elsewhere, "password-error").is_none() && bad == 0, "{elsewhere}");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "nothing was changed");
}

#[tokio::test]
async fn a_form_posted_after_its_session_ended_says_so_and_an_empty_current_password_is_asked_for() {
    let dc = require_dc!();
    let (user, app) = logged_in(&dc, "chgend").await;
    let csrf = csrf_in(&app.get_html("/change").await);
    app.clock.advance_seconds(24 * 3600);
    let form = [("csrf", csrf.as_str()), ("current", &user.password), ("password", NEW), ("repeat", NEW)];
    let res = app.post("/change", &form).await;
    let told = app.told(&res).await;
    assert_eq!(
        told, "/login Din session har avslutats. Logga in igen; det du fyllde i skickades inte.",
        "told to log in again, not that the password was wrong"
    );
    assert!(app.audit().await.iter().all(|a| a.event != "password-change"), "no try was made");

    let error = change(&app, Some(&user.name), "", NEW).await;
    assert_eq!(error, "Skriv ditt nuvarande lösenord.");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "nothing changed");
}
