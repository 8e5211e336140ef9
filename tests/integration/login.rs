//! Logging in with the AD password, against the real DC.

use std::time::Instant;

use crate::helpers::{csrf_in, location, new_client, spawn_app, spawn_app_with, text_of};

#[tokio::test]
async fn the_right_password_logs_in_with_any_of_the_three_name_forms() {
    let dc = require_dc!();
    let user = dc.create_user("anna").await;
    for typed in [user.name.clone(), format!("{}@example.test", user.name), format!("EXAMPLE\\{}", user.name)] {
        let app = spawn_app(&dc).await;
        let res = app.login(&typed, &user.password).await;
        assert_eq!(res.status(), 303, "login as {typed}");
        assert_eq!(location(&res), "/");
        let home = app.get_html("/").await;
        assert!(home.contains(&user.display_name), "the page names the user ({typed})");
        assert!(text_of(&home, "star-row").is_some(), "the page shows the star row");
        let audit = app.audit().await;
        assert!(audit.iter().any(|a| a.event == "login"
            && a.outcome == "success"
            && a.username.as_deref() == Some(user.name.as_str())));
    }
}

#[tokio::test]
async fn the_username_hint_names_this_domain() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let hint = |html: &str| {
        let doc = scraper::Html::parse_document(html);
        let sel = scraper::Selector::parse("p.hint").unwrap();
        doc.select(&sel).next().map(|e| e.text().collect::<String>()).unwrap_or_default()
    };
    assert_eq!(hint(&app.get_html("/login").await), "Till exempel anna, anna@example.test eller EXAMPLE\\anna.");
    assert_eq!(hint(&app.get_html("/reset").await), "Till exempel anna, anna@example.test eller EXAMPLE\\anna.");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_audited() {
    let dc = require_dc!();
    let user = dc.create_user("wrong").await;
    let app = spawn_app(&dc).await;
    let error = app.login_error(&user.name, "not-the-password").await;
    assert_eq!(error, "Fel användarnamn eller lösenord.");
    assert!(app.sessions().await.is_empty());
    let audit = app.audit().await;
    let entry = audit.iter().find(|a| a.event == "login").expect("an audit entry");
    assert_eq!(entry.outcome, "failure");
    assert_eq!(entry.detail.as_deref(), Some("invalid-credentials"));
    assert_eq!(entry.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(entry.request_id.as_deref().is_some_and(|r| r.len() >= 32), "the request id is recorded");
}

#[tokio::test]
async fn an_empty_field_is_asked_for_and_costs_no_try() {
    let dc = require_dc!();
    let user = dc.create_user("empty").await;
    let app = spawn_app(&dc).await;
    assert_eq!(app.login_error(&user.name, "").await, "Skriv ditt lösenord.");
    assert_eq!(app.login_error("  ", "anything").await, "Skriv ditt användarnamn.");
    assert!(app.audit().await.iter().all(|a| a.event != "login"), "no try was made, so none is audited");
    // Nor counted: the limit's tries are all still there (the last one says so).
    for _ in 0..2 {
        assert_eq!(app.login_error(&user.name, "").await, "Skriv ditt lösenord.");
    }
    assert_eq!(app.login_error(&user.name, "not-the-password").await, "Fel användarnamn eller lösenord.");
}

#[tokio::test]
async fn an_unknown_user_looks_exactly_like_a_wrong_password() {
    let dc = require_dc!();
    let user = dc.create_user("known").await;
    let app = spawn_app(&dc).await;
    let page = |app: &crate::helpers::TestApp, name: String, pw: &'static str| {
        let client = app.client.clone();
        let url = app.url("/login");
        async move {
            let csrf = crate::helpers::csrf_in(&client.get(&url).send().await.unwrap().text().await.unwrap());
            let started = Instant::now();
            let res = client
                .post(&url)
                .form(&[("csrf", csrf.as_str()), ("username", &name), ("password", pw)])
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body = res.text().await.unwrap().replace(&name, "NAME").replace(&csrf, "TOKEN");
            (status, body, started.elapsed())
        }
    };
    let (s1, known, t1) = page(&app, user.name.clone(), "wrong-password").await;
    let (s2, unknown, t2) = page(&app, crate::helpers::unique("ghost"), "wrong-password").await;
    assert_eq!(s1, s2);
    assert_eq!(known, unknown, "the pages must not differ");
    // Both answers wait out the configured floor (150 ms in tests), whatever the directory did.
    assert!(t1.as_millis() >= 150 && t2.as_millis() >= 150, "{t1:?} {t2:?}");
}

#[tokio::test]
async fn a_locked_account_reads_like_an_unknown_user_and_unlocking_is_offered_to_all() {
    let dc = require_dc!();
    let user = dc.create_user("locked").await;
    dc.lock(&user).await;
    let app = spawn_app(&dc).await;
    // AD answers 775 whatever the password: saying "locked" would tell anyone the account exists.
    let unknown = app.login_error("no-such-user-here", "Wrong-pw-1!").await;
    assert_eq!(app.login_error(&user.name, &user.password).await, unknown);
    let page = app.get_html("/login").await;
    assert!(text_of(&page, "forgot").unwrap().contains("låst konto"), "the way to unlock is on every login page");
}

#[tokio::test]
async fn a_disabled_account_is_explained() {
    let dc = require_dc!();
    let user = dc.create_user("disabled").await;
    dc.modify(&user.dn, "userAccountControl", "514").await;
    let app = spawn_app(&dc).await;
    let error = app.login_error(&user.name, &user.password).await;
    assert!(error.contains("inaktiverat"), "{error}");
    let audit = app.audit().await;
    assert!(audit.iter().any(|a| a.detail.as_deref() == Some("account-disabled")));
}

#[tokio::test]
async fn a_password_that_must_be_changed_leads_to_the_change_page() {
    let dc = require_dc!();
    let user = dc.create_user("mustchange").await;
    dc.modify(&user.dn, "pwdLastSet", "0").await;
    let app = spawn_app(&dc).await;
    let res = app.login(&user.name, &user.password).await;
    assert!(location(&res).starts_with("/change?note="), "{}", location(&res));
    let page = app.get_html(&location(&res)).await;
    assert_eq!(text_of(&page, "change-notice").unwrap(), "Du måste byta lösenord innan du kan logga in.");
    assert!(page.contains(&format!("value=\"{}\"", user.name)), "the username is filled in");
    // Nobody else can put those words and a name on the page with a link.
    let forged = app.get_html(&format!("/change?why=must-change&u={}", user.name)).await;
    assert!(text_of(&forged, "change-notice").is_none() && !forged.contains(&format!("value=\"{}\"", user.name)));
}

#[tokio::test]
async fn admin_membership_through_a_nested_group_is_recognised() {
    let dc = require_dc!();
    let admin = dc.create_user("admin").await;
    let plain = dc.create_user("plain").await;
    // Stjarna Admins <- IT-admins <- (new group) <- admin: two levels of nesting.
    let team = dc.create_group("team").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &team).await;
    dc.add_member(&team, &admin.dn).await;
    let mut app = spawn_app(&dc).await;
    assert_eq!(app.login(&admin.name, &admin.password).await.status(), 303);
    app.client = crate::helpers::new_client();
    assert_eq!(app.login(&plain.name, &plain.password).await.status(), 303);
    let sessions = app.sessions().await;
    let is_admin = |dn: &str| sessions.iter().find(|s| s.user_dn == dn).map(|s| s.is_admin);
    assert_eq!(is_admin(&admin.dn), Some(true));
    assert_eq!(is_admin(&plain.dn), Some(false));
}

#[tokio::test]
async fn throttling_stops_well_before_the_domain_locks_the_account() {
    let dc = require_dc!();
    let user = dc.create_user("throttle").await;
    let app = spawn_app(&dc).await;
    // The DC locks at 5; with the default margin of 2 the portal stops after 3 failures, and says
    // so on the third.
    for _ in 0..2 {
        assert_eq!(app.login_error(&user.name, "wrong").await, "Fel användarnamn eller lösenord.");
    }
    let last = app.login_error(&user.name, "wrong").await;
    assert!(last.starts_with("Fel användarnamn eller lösenord. Det var sista försöket"), "{last}");
    // It counts as AD does: until AD's observation window (30 minutes here, and two for the
    // clocks) has passed without a failure, not just login.window_minutes (15).
    let error = app.login_error(&user.name, "wrong").await;
    assert_eq!(error, "För många misslyckade försök. Försök igen om 32 minuter.");
    // Even the right password is not tried while throttled...
    assert!(app.login_error(&user.name, &user.password).await.contains("För många"));
    // ...so the directory never locked the account, and the password still works there.
    assert_eq!(dc.attr(&user.dn, "lockoutTime").await.unwrap_or("0".into()), "0");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0);
    assert!(app.audit().await.iter().any(|a| a.outcome == "blocked"));
    // After 15 minutes AD still remembers the failures, so the portal does too...
    app.clock.advance_seconds(15 * 60 + 1);
    assert!(app.login_error(&user.name, &user.password).await.contains("För många"));
    // ...and once AD's window has passed, the user may log in again.
    app.clock.advance_seconds(17 * 60);
    assert_eq!(app.login(&user.name, &user.password).await.status(), 303);
}

/// A fine-grained policy (PSO) that locks sooner than the domain is obeyed: the portal reads
/// which policy applies with the user and stops before the PSO's threshold, on the login page and
/// on the change page alike. What a visitor is told follows the domain's policy, as for a name
/// that is nobody's: the PSO's lower limit once told an account (often an admin's) apart.
#[tokio::test]
async fn a_stricter_fine_grained_policy_never_lets_ad_lock_the_account() {
    let dc = require_dc!();
    let user = dc.create_user("psolock").await;
    // The PSO locks at 3 (the domain at 5): with the margin of 2 one failure is all AD may see.
    dc.create_pso(&user.dn, 8, 3).await;
    let app = spawn_app(&dc).await;
    let ghost = crate::helpers::unique("ghost");
    // After one failure the account's own count is full: even the right password is answered as
    // a wrong one (anything else would tell the account apart), and nothing reaches AD.
    let mut told = Vec::new();
    for password in ["wrong", "wrong", user.password.as_str(), "wrong"] {
        told.push(app.login_error(&user.name, password).await);
    }
    let mut nobody = Vec::new();
    for _ in 0..4 {
        nobody.push(app.login_error(&ghost, "wrong").await);
    }
    assert_eq!(told, nobody, "the account under a PSO reads as a name that is nobody's");
    assert!(told[3].contains("För många"), "{told:?}");
    let csrf = csrf_in(&app.get_html("/change").await);
    let form =
        [("csrf", csrf.as_str()), ("username", &user.name), ("current", "wrong"), ("password", "x"), ("repeat", "x")];
    let refused = app.error_after(app.post("/change", &form).await, "password-error").await;
    assert!(refused.contains("För många"), "{refused}");
    assert_eq!(dc.attr(&user.dn, "badPwdCount").await.as_deref(), Some("1"));
    assert_eq!(dc.attr(&user.dn, "lockoutTime").await.unwrap_or("0".into()), "0", "AD never locked the account");
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0);
}

#[tokio::test]
async fn unknown_users_are_throttled_like_known_ones() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let ghost = crate::helpers::unique("ghost");
    for _ in 0..3 {
        app.login_error(&ghost, "wrong").await;
    }
    assert!(app.login_error(&ghost, "wrong").await.starts_with("För många misslyckade försök"));
}

#[tokio::test]
async fn failures_from_one_address_are_limited() {
    let dc = require_dc!();
    let app = spawn_app_with(&dc, |c| c.replace("[login]", "[login]\nmax_failures_per_ip = 2")).await;
    app.login_error(&crate::helpers::unique("a"), "x").await;
    app.login_error(&crate::helpers::unique("b"), "x").await;
    let error = app.login_error(&crate::helpers::unique("c"), "x").await;
    assert!(error.starts_with("För många misslyckade försök"), "{error}");
}

#[tokio::test]
async fn an_unreachable_directory_gives_a_clear_page() {
    let dc = require_dc!();
    // Nothing listens on 127.0.0.1:1.
    let app = spawn_app_with(&dc, |c| c.replace(&dc.url, "ldaps://127.0.0.1:1")).await;
    let res = app.login("anna", "whatever").await;
    let body = app.follow(res).await;
    let error = text_of(&body, "login-error").unwrap();
    assert!(error.contains("Katalogtjänsten (Active Directory) svarar inte just nu"), "{error}");
    assert!(error.contains("Referens:"), "a reference id is shown: {error}");
    for internal in ["127.0.0.1:1", "Connection refused", "ldaps://", "os error"] {
        assert!(!body.contains(internal), "internal detail {internal:?} leaked");
    }
}

/// Post/redirect/get: a refused login redirects to the login page with its message (and the name
/// typed); reloading that page tries no password (AD would count each try), and the address shows
/// nothing in another browser or once it is old.
#[tokio::test]
async fn reloading_a_refused_login_tries_no_password() {
    let dc = require_dc!();
    let user = dc.create_user("prg").await;
    let mut app = spawn_app(&dc).await;
    let res = app.login(&user.name, "Wrong-pw-123!").await;
    let page = location(&res);
    assert!(page.starts_with("/login?"), "{page}");
    for _ in 0..3 {
        let html = app.get_html(&page).await;
        assert_eq!(text_of(&html, "login-error").unwrap(), "Fel användarnamn eller lösenord.");
        let typed = scraper::Html::parse_document(&html)
            .select(&scraper::Selector::parse("#username").unwrap())
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_string));
        assert_eq!(typed.as_deref(), Some(user.name.as_str()), "the name typed is kept");
    }
    assert_eq!(dc.attr(&user.dn, "badPwdCount").await.as_deref(), Some("1"), "one try, however many reloads");
    let failures = app.audit().await.iter().filter(|a| a.event == "login" && a.outcome == "failure").count();
    assert_eq!(failures, 1);
    // The note is sealed: the address does not show the name typed, and a note changed in it
    // (under the same signature) shows nothing.
    assert!(!page.contains(&user.name), "{page}");
    let (path, query) = page.split_once('?').unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let forged: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            if k == "note" {
                let flipped = if v.ends_with('A') { 'B' } else { 'A' };
                (k, format!("{}{flipped}", &v[..v.len() - 1]))
            } else {
                (k, v)
            }
        })
        .collect();
    let forged = format!("{path}?{}", serde_urlencoded::to_string(&forged).unwrap());
    assert_ne!(forged, page);
    let html = app.get_html(&forged).await;
    assert!(text_of(&html, "login-error").is_none() && !html.contains(&user.name), "{html}");
    // Moved to another page that shows notices and a name typed (the change form): nothing there.
    let res = app.get(&format!("/change?{query}")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"current\""), "the change form: {html}");
    assert!(text_of(&html, "password-error").is_none() && !html.contains(&user.name), "{html}");
    // The same address in another browser (a link someone sent) shows no message and no name.
    let mine = std::mem::replace(&mut app.client, new_client());
    let html = app.get_html(&page).await;
    assert!(text_of(&html, "login-error").is_none() && !html.contains(&user.name), "{html}");
    // Nor in this browser after ten minutes.
    app.client = mine;
    app.clock.advance_seconds(601);
    assert!(text_of(&app.get_html(&page).await, "login-error").is_none());
}

#[tokio::test]
async fn reauthentication_is_throttled_and_rereads_the_roles() {
    let dc = require_dc!();
    let user = dc.create_user("att-reauth").await;
    let t = crate::helpers::spawn_app(&dc).await;
    t.login(&user.name, &user.password).await;
    let mut last = String::new();
    for _ in 0..4 {
        let csrf = csrf_in(&t.get_html("/reauth?back=/").await);
        let res = t.post("/reauth", &[("csrf", &csrf), ("back", "/"), ("password", "wrong-Pw-1!")]).await;
        last = t.error_after(res, "reauth-error").await;
    }
    assert!(last.contains("minut"), "the fourth guess is throttled like a login: {last}");
    let lockout = dc.attr(&user.dn, "lockoutTime").await.unwrap_or_default();
    assert!(lockout.is_empty() || lockout == "0", "the portal never locks the account");
    // A disabled account loses its session at the next re-authentication.
    // Past the throttle window (AD's observation window, 30 minutes, and two for the clocks),
    // keeping the session alive.
    t.clock.advance_seconds(16 * 60);
    t.get("/").await;
    t.clock.advance_seconds(17 * 60);
    // Checked against AD now; disabled right after, so the session's own check (once a minute)
    // has not seen it yet when the password is given again.
    t.get("/").await;
    dc.modify(&user.dn, "userAccountControl", "514").await;
    let csrf = csrf_in(&t.get_html("/reauth?back=/").await);
    let res = t.post("/reauth", &[("csrf", &csrf), ("back", "/"), ("password", &user.password)]).await;
    assert_eq!(location(&res), "/login");
    assert_eq!(t.get("/").await.status(), 303, "the session ended");
}
