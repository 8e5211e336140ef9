//! CSRF, security headers, static files, health.

use crate::helpers::{csrf_in, new_client, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_post_without_a_valid_csrf_token_is_refused() {
    let dc = require_dc!();
    let user = dc.create_user("csrf").await;
    let app = spawn_app(&dc).await;
    let token = app.csrf().await;
    for (path, form) in [
        ("/login", vec![("username", user.name.as_str()), ("password", user.password.as_str())]),
        ("/logout", vec![]),
        ("/language", vec![("lang", "en")]),
    ] {
        let res = app.post(path, &form).await;
        assert_eq!(res.status(), 403, "{path} without a token");
        let body = res.text().await.unwrap();
        assert!(body.contains("Formuläret har gått ut"), "{path}: a friendly page");
        let mut bad = form.clone();
        bad.push(("csrf", "00ff"));
        assert_eq!(app.post(path, &bad).await.status(), 403, "{path} with a wrong token");
    }
    // A token from another browser is worthless here.
    let other = new_client();
    let foreign = csrf_in(&other.get(app.url("/login")).send().await.unwrap().text().await.unwrap());
    assert_ne!(foreign, token);
    let res = app.post("/login", &[("csrf", &foreign), ("username", &user.name), ("password", &user.password)]).await;
    assert_eq!(res.status(), 403);
    assert!(app.sessions().await.is_empty(), "nothing was done");
}

/// An address whose query does not read (a number where letters are) gets the portal's own page
/// in the user's language, never the framework's text.
#[tokio::test]
async fn an_unreadable_query_gets_a_page_not_the_frameworks_text() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let res = app.get("/reset/some-flow?n=x").await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(!html.to_lowercase().contains("deserialize"), "{html}");
    assert!(html.contains("<html lang=\"sv\"") && html.contains("id=\"error-page\""), "{html}");
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let res = app.get("/login").await;
    let h = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let csp = h("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("cache-control"), "no-store");
    assert!(res.headers().get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("style=\""), "no inline script or style");
}

#[tokio::test]
async fn hsts_is_sent_when_the_portal_is_served_over_tls() {
    let dc = require_dc!();
    let app = spawn_app_with(&dc, |c| {
        c.replace("public_url = \"http://127.0.0.1\"", "public_url = \"https://losenord.example.test\"")
    })
    .await;
    let res = app.get("/login").await;
    let hsts = res.headers().get("strict-transport-security").expect("HSTS").to_str().unwrap();
    assert!(hsts.starts_with("max-age=31536000"));
}

#[tokio::test]
async fn the_stylesheet_is_cached_for_a_long_time() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let html = app.get_html("/login").await;
    let start = html.find("/static/style.").expect("a hashed stylesheet link");
    let href: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let res = app.get(&href).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(res.text().await.unwrap().contains(".star-row"));
    assert_eq!(app.get("/static/style.0000000000.css").await.status(), 404);
}

#[tokio::test]
async fn pages_and_error_pages_have_an_icon_and_browsers_find_it() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    assert!(app.get_html("/login").await.contains("<link rel=\"icon\" href=\"/favicon.svg\""));
    assert!(app.get_html("/no-such-page").await.contains("<link rel=\"icon\" href=\"/favicon.svg\""));
    for path in ["/favicon.svg", "/favicon.ico"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert!(res.text().await.unwrap().starts_with("<svg"));
    }
}

#[tokio::test]
async fn health_reports_database_and_directory() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["directory"], "ok");
}

#[tokio::test]
async fn unknown_pages_get_a_friendly_404() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Sidan finns inte"));
}

#[tokio::test]
async fn over_https_the_cookies_carry_the_host_prefix() {
    let dc = require_dc!();
    let user = dc.create_user("hostpfx").await;
    let app = spawn_app_with(&dc, |c| {
        c.replace("public_url = \"http://127.0.0.1\"", "public_url = \"https://losenord.example.test\"")
    })
    .await;
    let plain = crate::helpers::client_builder().build().unwrap();
    let res = plain.get(app.url("/login")).send().await.unwrap();
    let set = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set.starts_with("__Host-stjarna_csrf="), "{set}");
    assert!(set.contains("Secure") && set.contains("Path=/") && !set.contains("Domain"), "{set}");
    let seed = set.trim_start_matches("__Host-stjarna_csrf=").split(';').next().unwrap().to_string();
    let token = crate::helpers::csrf_in(&res.text().await.unwrap());
    let form = [("csrf", token.as_str()), ("username", user.name.as_str()), ("password", user.password.as_str())];
    // The unprefixed name (what a sibling sub-domain could plant) is not the portal's cookie.
    let planted = plain
        .post(app.url("/login"))
        .header("cookie", format!("stjarna_csrf={seed}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 403);
    let res = plain
        .post(app.url("/login"))
        .header("cookie", format!("__Host-stjarna_csrf={seed}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("__Host-stjarna_session=") && c.contains("Secure")), "{cookies:?}");
}

#[tokio::test]
async fn a_password_typed_as_the_name_never_reaches_the_audit_trail() {
    // People type their password into the name field, see the refusal, and log in right. The
    // audit trail (read by every administrator, forwarded to syslog) must not keep it.
    let dc = require_dc!();
    let admin = crate::admin::admin_user(&dc).await;
    let app = spawn_app(&dc).await;
    let password = "Sommar-Fika-2026!";
    // Nor the address the refusal redirects to (browser history, a proxy's access log), while
    // the form still shows what was typed.
    let csrf = csrf_in(&app.get_html("/login").await);
    let res = app.post("/login", &[("csrf", csrf.as_str()), ("username", password), ("password", "whatever")]).await;
    let to = crate::helpers::location(&res);
    assert!(to.starts_with("/login?note=") && !to.contains("Sommar"), "{to}");
    assert!(app.get_html(&to).await.contains(&format!("value=\"{password}\"")), "the name typed is kept in the form");
    let csrf = csrf_in(&app.get_html("/reset").await);
    assert_eq!(app.post("/reset", &[("csrf", &csrf), ("username", password)]).await.status(), 303);
    let huge = "a".repeat(10_000); // within the 16 KB form limit
    assert_eq!(app.post("/reset", &[("csrf", &csrf), ("username", &huge)]).await.status(), 303);

    let audit = app.audit().await;
    let about_it: Vec<_> = audit.iter().filter(|a| a.event == "login" || a.event == "reset-start").collect();
    assert_eq!(about_it.len(), 3, "{audit:?}");
    for entry in &about_it {
        let name = entry.username.as_deref().unwrap();
        assert!(name.len() == 11 && name.starts_with('?'), "a tag, not the text: {name}");
        let kept = format!("{:?} {:?} {:?}", entry.username, entry.user_id, entry.detail);
        assert!(!kept.contains("Sommar") && !kept.contains(&"a".repeat(20)), "{entry:?}");
    }
    let login = about_it.iter().find(|a| a.event == "login").unwrap();
    let same = about_it.iter().filter(|a| a.username == login.username).count();
    assert_eq!(same, 2, "one name, one tag, at the login and the reset alike; another name, another: {about_it:?}");

    // An administrator finds the name's entries by its tag, and the text typed finds nothing
    // (the search is no way to try guesses against a tag).
    app.login(&admin.name, &admin.password).await;
    let tag = login.username.as_deref().unwrap();
    let page = app.get_html(&format!("/admin/audit?user={}", urlencoding(tag))).await;
    assert_eq!(crate::helpers::text_of(&page, "audit-total").unwrap(), "2 händelser", "{page}");
    let page = app.get_html(&format!("/admin/audit?user={}", urlencoding(password))).await;
    assert_eq!(crate::helpers::text_of(&page, "audit-total").unwrap(), "0 händelser", "{page}");
    // A known account is named as itself, however it was typed (logging in again, from the
    // home page's form token).
    let csrf = csrf_in(&app.get_html("/").await);
    let typed = format!("EXAMPLE\\{}", admin.name.to_uppercase());
    app.post("/login", &[("csrf", csrf.as_str()), ("username", &typed), ("password", &admin.password)]).await;
    let logins: Vec<_> =
        app.audit().await.into_iter().filter(|a| a.event == "login" && a.outcome == "success").collect();
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert!(logins.iter().all(|a| a.username.as_deref() == Some(admin.name.as_str())), "{logins:?}");
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_link_from_another_site_cannot_search_read_or_export_in_a_staff_members_name() {
    let dc = require_dc!();
    let admin = crate::admin::admin_user(&dc).await;
    let user = dc.create_user("linked").await;
    let app = spawn_app(&dc).await;
    app.login(&admin.name, &admin.password).await;
    let search = format!("/admin/users?q={}", user.name);
    for (path, site, opens) in [
        (search.as_str(), "cross-site", search.as_str()),
        // An export's link opens the page it is on, not the download.
        ("/admin/audit.csv?user=x", "same-site", "/admin/audit?user=x"),
    ] {
        let res = app.client.get(app.url(path)).header("sec-fetch-site", site).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path} from {site}");
        let html = res.text().await.unwrap();
        assert_eq!(crate::helpers::text_of(&html, "error-next").unwrap(), "Öppna sidan");
        assert!(html.contains(&format!("href=\"{opens}\"")), "the link opens what was asked for, from here: {html}");
    }
    // Nor can it go round that page through the password prompt: where the prompt leads is not
    // the link's to choose.
    let prompt = app
        .client
        .get(app.url("/admin/reauth?back=%2Fadmin%2Faudit.csv"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(prompt.contains("name=\"back\" value=\"/\""), "{prompt}");
    let asked = app.client.get(app.url("/admin/reauth?back=%2Fadmin%2Faudit")).send().await.unwrap();
    assert!(asked.text().await.unwrap().contains("name=\"back\" value=\"/admin/audit\""));
    assert_eq!(staff_reads(&app).await, 0, "nothing looked up or exported in the agent's name");
    // From the portal's own page (or typed, or a bookmark), it opens.
    for site in ["same-origin", "none"] {
        let res = app.client.get(app.url(&search)).header("sec-fetch-site", site).send().await.unwrap();
        assert_eq!(res.status(), 200, "{site}");
    }
    assert_eq!(staff_reads(&app).await, 2);
}

async fn staff_reads(app: &crate::helpers::TestApp) -> usize {
    app.audit().await.iter().filter(|a| a.event == "admin-view" || a.event == "admin-export").count()
}
