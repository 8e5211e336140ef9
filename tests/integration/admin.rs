//! Administration against Samba AD: roles from nested groups, re-login, revocation, the audit
//! trail, and dashboard counts over hundreds of users.

use crate::helpers::{TestDc, TestUser, csrf_in, location, new_client, spawn_app, spawn_app_with, text_of};
use crate::sims::{ANNA, Gateway, spawn_with_sms};

/// Config lines naming a helpdesk and a reporting group (the admin group is already configured).
fn role_groups(c: String, helpdesk: &str, reporting: &str) -> String {
    c.replace(
        "admin_group = ",
        &format!("helpdesk_group = \"{helpdesk}\"\nreporting_group = \"{reporting}\"\nadmin_group = "),
    )
}

/// A service-desk agent: a new group, configured as the helpdesk group by the edit returned,
/// and a user in it.
pub(crate) async fn helpdesk_agent(dc: &TestDc, prefix: &str) -> (TestUser, impl Fn(String) -> String + use<>) {
    let group = dc.create_group(&format!("{prefix}-hd")).await;
    let agent = dc.create_user(prefix).await;
    dc.add_member(&group, &agent.dn).await;
    let edit = move |c: String| c.replace("admin_group = ", &format!("helpdesk_group = \"{group}\"\nadmin_group = "));
    (agent, edit)
}

pub(crate) async fn admin_user(dc: &TestDc) -> TestUser {
    let user = dc.create_user("adm").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &user.dn).await;
    user
}

/// An administrator whose account is in `ou`.
pub(crate) async fn admin_user_in(dc: &TestDc, ou: &str) -> TestUser {
    let user = dc.create_user_in("adm", ou).await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &user.dn).await;
    user
}

#[tokio::test]
async fn each_role_sees_only_its_pages() {
    let dc = require_dc!();
    let helpdesk_group = dc.create_group("hd").await;
    let reporting_group = dc.create_group("rep").await;
    let (plain, helpdesk, reporter, admin) =
        (dc.create_user("plain").await, dc.create_user("hd").await, dc.create_user("rep").await, admin_user(&dc).await);
    // Roles through nested groups: the user is in a team that is in the role group.
    let team = dc.create_group("team").await;
    dc.add_member(&helpdesk_group, &team).await;
    dc.add_member(&team, &helpdesk.dn).await;
    dc.add_member(&reporting_group, &reporter.dn).await;
    let mut app = spawn_app_with(&dc, |c| role_groups(c, &helpdesk_group, &reporting_group)).await;
    let target = dc.create_user("target").await;
    let target_id = {
        app.login(&target.name, &target.password).await;
        app.sessions().await[0].user_id.clone()
    };
    let pages = [
        "/admin",
        "/admin/users?q=test",
        "/admin/audit",
        "/admin/audit.csv",
        "/admin/reports/not-enrolled.csv",
        "/admin/status",
    ];
    let expect = |who: &str| -> Vec<u16> {
        match who {
            "plain" => vec![403, 403, 403, 403, 403, 403],
            "helpdesk" => vec![403, 200, 403, 403, 403, 403],
            "reporting" => vec![200, 403, 200, 200, 200, 403],
            _ => vec![200, 200, 200, 200, 200, 200],
        }
    };
    for (who, user) in [("plain", &plain), ("helpdesk", &helpdesk), ("reporting", &reporter), ("admin", &admin)] {
        app.client = new_client();
        app.login(&user.name, &user.password).await;
        let mut got = Vec::new();
        for p in pages {
            got.push(app.get(p).await.status().as_u16());
        }
        assert_eq!(got, expect(who), "{who}");
        // The header's admin link leads to a page the role may see (the service desk's is the user
        // search, not the dashboard).
        let page = app.get_html("/").await;
        let link = page
            .split_once("\" class=\"nav-link\" id=\"nav-admin\"")
            .and_then(|(before, _)| before.rsplit("href=\"").next().map(str::to_string));
        let want = match who {
            "plain" => None,
            "helpdesk" => Some("/admin/users"),
            _ => Some("/admin"),
        };
        assert_eq!(link.as_deref(), want, "{who}'s admin link");
        if let Some(link) = &link {
            assert_eq!(app.get(link).await.status(), 200, "{who} following the admin link");
        }
        // Only an admin may revoke.
        let res = app
            .post(
                &format!("/admin/users/{target_id}/revoke"),
                &[("csrf", &csrf_in(&page)), ("service", "all"), ("reason", "test")],
            )
            .await;
        assert_eq!(res.status().as_u16(), if who == "admin" { 303 } else { 403 }, "{who} revoking");
    }
    let forbidden = {
        app.client = new_client();
        app.login(&plain.name, &plain.password).await;
        app.get("/admin").await.text().await.unwrap()
    };
    assert!(forbidden.contains("Ingen behörighet"));
}

#[tokio::test]
async fn admin_pages_ask_for_the_password_again_after_fifteen_minutes() {
    let dc = require_dc!();
    let admin = admin_user(&dc).await;
    let app = spawn_app_with(&dc, |c| c).await;
    app.login(&admin.name, &admin.password).await;
    assert_eq!(app.get("/admin").await.status(), 200);
    app.clock.advance_seconds(10 * 60);
    assert_eq!(app.get("/").await.status(), 200, "activity keeps the session");
    app.clock.advance_seconds(6 * 60);
    let res = app.get("/admin/audit").await;
    assert_eq!(location(&res), "/admin/reauth?back=%2Fadmin%2Faudit");
    // A search or filter survives the password asked again.
    let res = app.get("/admin/users?q=anna").await;
    assert_eq!(location(&res), "/admin/reauth?back=%2Fadmin%2Fusers%3Fq%3Danna");
    let page = app.get_html("/admin/reauth?back=/admin/audit").await;
    // An empty password is asked for, and is no failed try.
    let res = app.post("/admin/reauth", &[("csrf", &csrf_in(&page)), ("back", "/admin/audit"), ("password", "")]).await;
    assert_eq!(app.error_after(res, "reauth-error").await, "Skriv ditt lösenord.");
    assert!(!app.audit().await.iter().any(|a| a.event == "admin-reauth"), "no try counted");
    let res =
        app.post("/admin/reauth", &[("csrf", &csrf_in(&page)), ("back", "/admin/audit"), ("password", "wrong")]).await;
    assert!(app.error_after(res, "reauth-error").await.contains("Fel"));
    let res = app
        .post("/admin/reauth", &[("csrf", &csrf_in(&page)), ("back", "/admin/audit"), ("password", &admin.password)])
        .await;
    assert_eq!(location(&res), "/admin/audit");
    assert_eq!(app.get("/admin/audit").await.status(), 200);
    let audit = app.audit().await;
    assert!(audit.iter().any(|a| a.event == "admin-reauth" && a.outcome == "failure"));
    assert!(audit.iter().any(|a| a.event == "admin-reauth" && a.outcome == "success"));
}

/// Sends the revocation form of `page` (a user's page) for their BankID with `reason`.
async fn revoke(app: &crate::helpers::TestApp, page: &str, user_id: &str, reason: &str) -> reqwest::Response {
    let form = [("csrf", csrf_in(page)), ("service", "bankid".into()), ("reason", reason.into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post(&format!("/admin/users/{user_id}/revoke"), &form).await
}

#[tokio::test]
async fn an_admin_finds_a_user_and_revokes_with_a_reason_and_the_user_is_told() {
    let dc = require_dc!();
    let admin = admin_user(&dc).await;
    let user = dc.create_user("revokee").await;
    dc.modify(&user.dn, "mobile", "+46701234567").await;
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    t.enrol(ANNA).await;
    let user_id = t.app.sessions().await[0].user_id.clone();
    t.app.client = new_client();
    t.app.login(&admin.name, &admin.password).await;
    let found = t.app.get_html(&format!("/admin/users?q={}", &user.name[..9])).await;
    assert!(found.contains(&format!("/admin/users/{user_id}")), "search by part of the username");
    let page = t.app.get_html(&format!("/admin/users/{user_id}")).await;
    assert_eq!(text_of(&page, "user-name").unwrap(), user.display_name);
    assert_eq!(text_of(&page, "user-mobile").unwrap(), "+46 70 *** ** 67", "masked");
    assert!(text_of(&page, "user-status").unwrap().starts_with("Delvis registrerad"));
    assert!(page.contains("data-service=\"bankid\""));
    // What staff looked up is in the trail, by whom (a stolen session's reading too); the views
    // are found by the user's name, but do not fill the trail the user's own page shows.
    let audit = t.app.audit().await;
    let views: Vec<_> = audit.iter().filter(|a| a.event == "admin-view").collect();
    let by = format!("(by {})", admin.name);
    assert_eq!(views[1].detail.as_deref(), Some(format!("search for “{}”: 1 shown {by}", &user.name[..9]).as_str()));
    assert_eq!(views[0].detail.as_deref(), Some(format!("user page viewed {by}").as_str()));
    assert_eq!((views[0].username.as_deref(), views[0].user_id.as_deref()), (Some(user.name.as_str()), None));
    assert!(
        !text_of(&t.app.get_html(&format!("/admin/users/{user_id}")).await, "user-audit")
            .unwrap_or_default()
            .contains("visad")
    );
    // A reason is required.
    let res = revoke(&t.app, &page, &user_id, " ").await;
    // Post/redirect/get, and the refusal reads as an error, not a success.
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with(&format!("/admin/users/{user_id}?note=")), "{back}");
    // A link cannot say it: the message is sealed for this browser.
    let forged = t.app.get_html(&format!("/admin/users/{user_id}?m=revoked")).await;
    assert!(text_of(&forged, "admin-message").is_none());
    let refused = t.app.get_html(&back).await;
    assert_eq!(text_of(&refused, "admin-message").unwrap(), "Ange en anledning till återkallelsen.");
    assert!(refused.contains("class=\"error\" role=\"alert\" id=\"admin-message\""), "an error box");
    let res = revoke(&t.app, &page, &user_id, "Telefonen stulen").await;
    assert_eq!(res.status(), 303, "post/redirect/get: a reload does not revoke again");
    let html = t.app.get_html(&location(&res)).await;
    assert!(text_of(&html, "admin-message").unwrap().starts_with("Registreringen är återkallad"));
    assert!(html.contains("class=\"success\" role=\"status\" id=\"admin-message\""));
    assert!(!html.contains("data-service=\"bankid\""));
    assert!(t.app.store().await.bankid_enrolment(&user_id).await.unwrap().is_none(), "the BankID binding is gone");
    t.mail_to(&format!("{}@example.test", user.name), "Stjärna: en identitetstjänst har återkallats").await;
    let audit = t.app.audit().await;
    let entry = audit.iter().find(|a| a.event == "revoke").unwrap();
    assert_eq!(entry.user_id.as_deref(), Some(user_id.as_str()));
    assert!(
        entry.detail.as_deref().unwrap().contains("Telefonen stulen")
            && entry.detail.as_deref().unwrap().contains(&admin.name)
    );

    // The same form sent again (a double click, Back and resend): nothing more happens, and the
    // page says there was nothing to revoke.
    let res = revoke(&t.app, &page, &user_id, "Telefonen stulen").await;
    let html = t.app.get_html(&location(&res)).await;
    assert!(text_of(&html, "admin-message").unwrap().starts_with("Det fanns inget att återkalla"), "{html}");
    assert_eq!(t.app.audit().await.iter().filter(|a| a.event == "revoke").count(), 1, "audited once");
    let subject = "Stjärna: en identitetstjänst har återkallats";
    let to = format!("{}@example.test", user.name);
    let told = || t.mail.state.mails_to(&to).iter().filter(|m| m.subject == subject).count();
    // The mail goes out from the queue: wait for it, then a little longer for a second one.
    for _ in 0..100 {
        if told() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(told(), 1, "told once");
}

#[tokio::test]
async fn enrolment_reminders_go_to_the_not_enrolled_at_most_once_a_week() {
    let dc = require_dc!();
    let ou = dc.create_ou("remind").await;
    let admin = crate::admin::admin_user_in(&dc, &ou).await;
    let lazy = dc.create_user_in("lazy", &ou).await;
    let scoped = |c: String| c.replace("base_dn = \"DC=example,DC=test\"", &format!("base_dn = \"{ou}\""));
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, scoped).await;
    t.app.login(&admin.name, &admin.password).await;
    assert_eq!(remind(&t).await, "2 påminnelser har lagts i utkorgen.", "the admin is not enrolled either");
    t.mail_to(&format!("{}@example.test", lazy.name), "Stjärna: registrera dig för självservice av lösenord").await;
    assert_eq!(remind(&t).await, "0 påminnelser har lagts i utkorgen.", "not again within the week");
    // Two days on, after the janitor's round (which purges limit counters older than that), still
    // not again: reminders keep a record of their own.
    t.app.clock.advance_seconds(2 * 86400);
    use stjarna::clock::Clock;
    t.app.janitor.run_once(t.app.clock.now()).await.unwrap();
    t.app.client = new_client();
    t.app.login(&admin.name, &admin.password).await;
    assert_eq!(remind(&t).await, "0 påminnelser har lagts i utkorgen.", "not again within the week");
    t.app.clock.advance_seconds(6 * 86400);
    t.app.client = new_client();
    t.app.login(&admin.name, &admin.password).await;
    assert_eq!(remind(&t).await, "2 påminnelser har lagts i utkorgen.");
}

async fn remind(t: &crate::sims::SimTest) -> String {
    let page = t.app.get_html("/admin").await;
    let res = t.app.post("/admin/reminders", &[("csrf", &csrf_in(&page))]).await;
    let page = t.app.get_html(&location(&res)).await;
    text_of(&page, "reminders-sent").unwrap()
}

#[tokio::test]
async fn a_search_says_when_its_text_is_too_short_or_matches_more_than_it_shows() {
    let dc = require_dc!();
    let ou = dc.create_ou("many").await;
    let admin = crate::admin::admin_user_in(&dc, &ou).await;
    for _ in 0..51 {
        dc.create_user_in("many", &ou).await;
    }
    let scoped = |c: String| c.replace("base_dn = \"DC=example,DC=test\"", &format!("base_dn = \"{ou}\""));
    let app = spawn_app_with(&dc, scoped).await;
    app.login(&admin.name, &admin.password).await;

    let page = app.get_html("/admin/users?q=m").await;
    assert_eq!(text_of(&page, "search-hint").unwrap(), "Skriv minst 2 tecken för att söka.");
    assert!(text_of(&page, "no-results").is_none(), "not 'no user found': nothing was searched");

    let page = app.get_html("/admin/users?q=many").await;
    assert_eq!(
        text_of(&page, "search-hint").unwrap(),
        "Fler användare matchar än de 50 som visas här. Skriv mer av namnet för att begränsa sökningen."
    );
    assert_eq!(page.matches("href=\"/admin/users/").count(), 50, "the first 50");
}

/// A caller's personal number typed into the user search is neither searched for nor kept: not in
/// the audit trail (nor its export), not in the search box.
#[tokio::test]
async fn a_personal_number_typed_into_the_search_is_not_kept() {
    let dc = require_dc!();
    let admin = crate::admin::admin_user(&dc).await;
    let app = spawn_app(&dc).await;
    app.login(&admin.name, &admin.password).await;
    for typed in ["19850312-1234", "850312-1234", "198503121234"] {
        let page = app.get_html(&format!("/admin/users?q={typed}")).await;
        assert_eq!(
            text_of(&page, "search-hint").unwrap(),
            "Sök på namn, kontonamn eller e-postadress. Personnummer söks inte och sparas inte."
        );
        assert!(!page.contains("1234"), "not shown back: {typed}: {page}");
    }
    assert!(app.audit().await.iter().all(|r| !format!("{r:?}").contains("1234")), "not in the audit trail");
    // An account name with digits is still searched.
    let page = app.get_html("/admin/users?q=anna1234").await;
    assert!(page.contains("anna1234"), "shown back");
}
