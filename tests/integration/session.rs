//! Sessions: cookies, idle and absolute expiry, logout.

use crate::helpers::{csrf_in, location, logged_in, new_client, spawn_app, spawn_app_with, text_of};

#[tokio::test]
async fn the_session_cookie_is_opaque_httponly_secure_and_samesite() {
    let dc = require_dc!();
    let user = dc.create_user("cookie").await;
    let app = spawn_app(&dc).await;
    let res = app.login(&user.name, &user.password).await;
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|h| h.to_str().unwrap().to_string()).collect();
    let session = cookies.iter().find(|c| c.starts_with("stjarna_session=")).expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    let token = session.trim_start_matches("stjarna_session=").split(';').next().unwrap();
    assert!(token.len() >= 43, "256 random bits");
    // The database keeps a hash, never the cookie value.
    let stored = app.sessions().await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].id_hash, token);
    // The CSRF cookie is replaced at login.
    assert!(
        cookies.iter().any(|c| c.starts_with("stjarna_csrf=") && c.contains("HttpOnly") && c.contains("SameSite=Lax"))
    );
}

#[tokio::test]
async fn logging_in_again_rotates_the_session_id() {
    let dc = require_dc!();
    let user = dc.create_user("rotate").await;
    let app = spawn_app(&dc).await;
    let first = app.login(&user.name, &user.password).await;
    let cookie = |res: &reqwest::Response| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .map(|h| h.to_str().unwrap().to_string())
            .find(|c| c.starts_with("stjarna_session="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let old = cookie(&first);
    // Logging in again from the same browser (the form is posted while a session exists).
    let csrf = csrf_in(&app.get_html("/").await);
    let second = app.post("/login", &[("csrf", &csrf), ("username", &user.name), ("password", &user.password)]).await;
    assert_eq!(second.status(), 303);
    let new = cookie(&second);
    assert_ne!(old, new);
    // The old id no longer opens a session.
    let stale = crate::helpers::client_builder().build().unwrap();
    let res = stale.get(app.url("/")).header("cookie", &old).send().await.unwrap();
    assert_eq!(location(&res), "/login");
    assert_eq!(app.sessions().await.len(), 1);
}

#[tokio::test]
async fn a_session_ends_after_thirty_idle_minutes() {
    let dc = require_dc!();
    let (user, app) = logged_in(&dc, "idle").await;
    // Activity keeps the session alive past 30 minutes in all.
    app.clock.advance_seconds(20 * 60);
    assert_eq!(app.get("/").await.status(), 200);
    app.clock.advance_seconds(20 * 60);
    assert_eq!(app.get("/").await.status(), 200);
    // 30 minutes without a request ends it.
    app.clock.advance_seconds(30 * 60);
    let res = app.get("/").await;
    assert_eq!(res.status(), 303);
    let told = app.told(&res).await;
    assert!(
        told.starts_with("/login Du har loggats ut") && told.contains("inte har varit aktiv på 30 minuter"),
        "{told}"
    );
    assert!(app.sessions().await.is_empty());
    assert!(
        app.audit()
            .await
            .iter()
            .any(|a| a.event == "session-expired" && a.username.as_deref() == Some(user.name.as_str()))
    );
}

#[tokio::test]
async fn a_session_has_an_absolute_lifetime() {
    let dc = require_dc!();
    let user = dc.create_user("absolute").await;
    let app = spawn_app_with(&dc, |c| c + "\n[session]\nabsolute_lifetime_minutes = 60\n").await;
    app.login(&user.name, &user.password).await;
    for _ in 0..2 {
        app.clock.advance_seconds(25 * 60);
        assert_eq!(app.get("/").await.status(), 200);
    }
    app.clock.advance_seconds(25 * 60);
    assert!(app.told(&app.get("/").await).await.starts_with("/login Du har loggats ut"));
}

#[tokio::test]
async fn logout_ends_the_session() {
    let dc = require_dc!();
    let (_, app) = logged_in(&dc, "logout").await;
    let home = app.get_html("/").await;
    let res = app.post("/logout", &[("csrf", &csrf_in(&home))]).await;
    assert_eq!(app.told(&res).await, "/login Du är nu utloggad.", "signed for the browser's new CSRF cookie");
    assert!(app.sessions().await.is_empty());
    assert_eq!(location(&app.get("/").await), "/login");
    assert!(app.audit().await.iter().any(|a| a.event == "logout" && a.outcome == "success"));
}

#[tokio::test]
async fn the_enrolment_page_shows_services_stars_and_an_empty_row() {
    let dc = require_dc!();
    let (_, app) = logged_in(&dc, "stars").await;
    let home = app.get_html("/").await;
    assert_eq!(
        text_of(&home, "enrolment-status").unwrap(),
        "Du är inte registrerad. Fyll stjärnraden för att kunna återställa ditt lösenord själv."
    );
    let doc = scraper::Html::parse_document(&home);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("#star-row .star")).count(), 5, "a row of enrolment_stars");
    assert_eq!(doc.select(&sel("#star-row .star.filled")).count(), 0);
    let services: Vec<String> =
        doc.select(&sel("#available-services .service-name")).map(|e| e.text().collect()).collect();
    assert_eq!(services, ["Mobilt BankID", "Mobilkod"]);
    let stars: Vec<String> =
        doc.select(&sel("#available-services .service-stars")).map(|e| e.text().collect()).collect();
    assert_eq!(stars, ["★★★", "★★"]);
    // Both services can be enrolled here.
    assert!(doc.select(&sel("#enrol-bankid")).next().is_some());
    assert!(doc.select(&sel("#enrol-sms")).next().is_some());
    assert_eq!(doc.select(&sel("#available-services button[disabled]")).count(), 0);
}

#[tokio::test]
async fn enrolled_services_fill_the_star_row() {
    let dc = require_dc!();
    let (_, app) = logged_in(&dc, "filled").await;
    let user_id = app.sessions().await[0].user_id.clone();
    enrol(&app, &user_id, "bankid").await;
    let home = app.get_html("/").await;
    let doc = scraper::Html::parse_document(&home);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("#star-row .star.filled")).count(), 3);
    assert!(text_of(&home, "enrolment-status").unwrap().starts_with("Du är delvis registrerad"));
    let done: Vec<String> = doc.select(&sel("#enrolled-services .service-name")).map(|e| e.text().collect()).collect();
    assert_eq!(done, ["Mobilt BankID"]);
    enrol(&app, &user_id, "sms").await;
    let home = app.get_html("/").await;
    assert!(text_of(&home, "enrolment-status").unwrap().starts_with("Du är registrerad"));
    assert_eq!(scraper::Html::parse_document(&home).select(&sel("#star-row .star.filled")).count(), 5);
}

/// Records an enrolment through the app's storage (enrolment flows come with their own tests).
async fn enrol(app: &crate::helpers::TestApp, user_id: &str, service: &str) {
    use stjarna::storage::{BankIdEnrolmentRecord, EnrolMode, SmsEnrolmentRecord};
    let store = app.store().await;
    // The session that asked goes on (the others would end with the change).
    let keep = app.sessions().await.into_iter().find(|s| s.user_id == user_id).map(|s| s.id_hash);
    let (user_id, at) = (user_id.to_string(), 0);
    let done = match service {
        "bankid" => {
            let r = BankIdEnrolmentRecord {
                user_id,
                pn_encrypted: "x".into(),
                pn_hash: format!("pn-{}", rand::random::<u64>()),
                pn_masked: "19800101-****".into(),
                name: "Test Testsson".into(),
                enrolled_at: at,
            };
            store.enrol_bankid(&r, EnrolMode::Add).await.unwrap()
        }
        _ => {
            let r = SmsEnrolmentRecord {
                user_id,
                number_encrypted: "x".into(),
                number_hash: format!("nr-{}", rand::random::<u64>()),
                number_masked: "070-*** ** 12".into(),
                enrolled_at: at,
            };
            store.enrol_sms(&r, EnrolMode::Add, keep.as_deref()).await.unwrap() == stjarna::storage::EnrolWrite::Done
        }
    };
    assert!(done, "enrolled {service}");
}

#[tokio::test]
async fn a_password_set_elsewhere_or_a_disabled_account_ends_the_session_within_a_minute() {
    let dc = require_dc!();
    let (user, other) = (dc.create_user("sesspw").await, dc.create_user("sessdis").await);
    let mut app = spawn_app(&dc).await;
    app.login(&other.name, &other.password).await;
    let others = std::mem::replace(&mut app.client, new_client());
    app.login(&user.name, &user.password).await;

    // The service desk sets the password in AD: the stolen session ends at the next check.
    dc.set_password(&user.dn, "Satt-vid-skrivbordet-9x").await;
    assert_eq!(app.get("/").await.status(), 200, "asked again only once a minute");
    app.clock.advance_seconds(60);
    assert!(app.told(&app.get("/").await).await.starts_with("/login Du har loggats ut"));
    assert_eq!(location(&app.get("/").await), "/login", "and it stays ended");
    let audit = app.audit().await;
    let ended = audit.iter().find(|a| a.event == "session-expired" && a.username.as_deref() == Some(&user.name));
    assert!(ended.and_then(|a| a.detail.as_deref()).is_some_and(|d| d.contains("password was set elsewhere")));

    // An account disabled in AD: the same. Until then the session goes on through the checks.
    app.client = others;
    assert_eq!(app.get("/").await.status(), 200, "nothing changed for this one");
    dc.modify(&other.dn, "userAccountControl", "514").await;
    app.clock.advance_seconds(60);
    assert!(app.told(&app.get("/").await).await.starts_with("/login Du har loggats ut"));
}
