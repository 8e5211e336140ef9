//! Administration against Samba AD: roles from nested groups, re-login, revocation, the audit
//! trail, and dashboard counts over hundreds of users.

use std::collections::HashSet;

use crate::helpers::{TestDc, TestUser, csrf_in, location, new_client, spawn_app_with, text_of, unique};
use crate::sims::{ANNA, Gateway, spawn_with_sms};

/// Config lines naming a helpdesk and a reporting group (the admin group is already configured).
fn role_groups(c: String, helpdesk: &str, reporting: &str) -> String {
    c.replace(
        "admin_group = ",
        &format!("helpdesk_group = \"{helpdesk}\"\nreporting_group = \"{reporting}\"\nadmin_group = "),
    )
}

async fn admin_user(dc: &TestDc) -> TestUser {
    let user = dc.create_user("adm").await;
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
        // Only an admin may revoke.
        let page = app.get_html("/").await;
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
    // A reason is required.
    let res = revoke(&t.app, &page, &user_id, " ").await;
    // Post/redirect/get, and the refusal reads as an error, not a success.
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert_eq!(back, format!("/admin/users/{user_id}?m=reason"));
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
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let subject = "Stjärna: en identitetstjänst har återkallats";
    let to = format!("{}@example.test", user.name);
    assert_eq!(t.mail.state.mails_to(&to).iter().filter(|m| m.subject == subject).count(), 1, "told once");
}

#[tokio::test]
async fn the_audit_viewer_filters_pages_and_exports_csv() {
    let dc = require_dc!();
    let admin = admin_user(&dc).await;
    let app = spawn_app_with(&dc, |c| c).await;
    let victim = dc.create_user("audited").await;
    for _ in 0..3 {
        app.login_error(&victim.name, "wrong").await;
    }
    app.login(&admin.name, &admin.password).await;
    let page = app.get_html(&format!("/admin/audit?user={}&outcome=failure", victim.name)).await;
    assert_eq!(text_of(&page, "audit-total").unwrap(), "3 händelser");
    let page = app.get_html(&format!("/admin/audit?user={}&outcome=success", admin.name)).await;
    assert_eq!(text_of(&page, "audit-total").unwrap(), "1 händelse", "one, not ones");
    let page = app.get_html("/admin/audit?event=login&ip=10.9.9.9").await;
    assert_eq!(text_of(&page, "audit-total").unwrap(), "0 händelser");
    let page = app.get_html("/admin/audit?from=2000-01-01&to=2000-01-02").await;
    assert_eq!(text_of(&page, "audit-total").unwrap(), "0 händelser");
    // A date that cannot be read filters nothing away silently: it is said, and nothing is
    // shown or exported (not the whole log).
    let bad = format!("user={}&from=1+december", victim.name);
    let page = app.get_html(&format!("/admin/audit?{bad}")).await;
    assert!(text_of(&page, "audit-error").unwrap().starts_with("Ett datum gick inte att läsa"), "{page}");
    assert!(page.contains("name=\"from\" type=\"date\" value=\"1 december\" aria-invalid=\"true\""), "{page}");
    assert_eq!(text_of(&page, "audit-total").unwrap(), "0 händelser");
    let res = app.get(&format!("/admin/audit.csv?{bad}")).await;
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with("/admin/audit?") && back.contains("from=1+december"), "{back}");
    // Days are the portal's (Europe/Stockholm): today's events are found under today's date.
    let today = app.get_html(&format!("/admin/audit?user={}&from={}", victim.name, stockholm_today())).await;
    assert_eq!(text_of(&today, "audit-total").unwrap(), "3 händelser");
    let res = app.get(&format!("/admin/audit.csv?user={}&outcome=failure", victim.name)).await;
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,event,outcome,username,user_id,source_ip,user_agent,request_id,detail");
    assert_eq!(lines.len(), 4);
    assert!(lines[1..].iter().all(|l| l.contains(",login,failure,") && l.contains(&victim.name)));
    // The export keeps UTC in ISO 8601, while the pages show the portal's time zone.
    let time = lines[1].split(',').next().unwrap();
    assert!(time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'), "{time}");
    let on_page = app.get_html(&format!("/admin/audit?user={}", victim.name)).await;
    assert!(on_page.contains(" CET<") || on_page.contains(" CEST<"), "local time on the page");
    // Event, outcome and detail in the page's language; the filters name them too.
    let row = text_of(&on_page, "audit-rows").unwrap();
    assert!(row.contains("Inloggning") && row.contains("Misslyckades") && row.contains("fel lösenord"), "{row}");
    assert!(on_page.contains("<option value=\"login\">Inloggning</option>"), "{on_page}");
    let mut en = app.get_html(&format!("/admin/audit?user={}", victim.name)).await;
    let csrf = csrf_in(&en);
    app.post("/language", &[("csrf", &csrf), ("lang", "en"), ("back", "/admin/audit")]).await;
    en = app.get_html(&format!("/admin/audit?user={}", victim.name)).await;
    let row = text_of(&en, "audit-rows").unwrap();
    assert!(row.contains("Login") && row.contains("Failed") && row.contains("invalid-credentials"), "{row}");
    app.post("/language", &[("csrf", &csrf), ("lang", "sv"), ("back", "/")]).await;
    let audit = app.audit().await;
    assert!(
        audit.iter().any(|a| a.event == "admin-export" && a.username.as_deref() == Some(admin.name.as_str())),
        "exports are audited"
    );
}

/// 300 users in an OU of their own, so that the counts are exact whatever else the DC holds.
async fn populate(dc: &TestDc, ou: &str, n: usize) -> Vec<String> {
    {
        let mut ldap = dc.admin().await;
        let attrs = vec![("objectClass", HashSet::from(["top", "organizationalUnit"]))];
        ldap.add(ou, attrs).await.unwrap().success().unwrap();
    }
    let mut names = Vec::new();
    let mut tasks = Vec::new();
    for chunk in 0..10 {
        let dc = dc.clone();
        let ou = ou.to_string();
        tasks.push(tokio::spawn(async move {
            let mut ldap = dc.admin().await;
            let mut made = Vec::new();
            for i in 0..n / 10 {
                let name = format!("l{}{chunk}x{i}", &unique("")[..5]);
                let dn = format!("CN={name},{ou}");
                let attrs = vec![
                    ("objectClass", HashSet::from(["top", "person", "organizationalPerson", "user"])),
                    ("sAMAccountName", HashSet::from([name.as_str()])),
                    // Enabled, with no password (PASSWD_NOTREQD): people the dashboard counts.
                    ("userAccountControl", HashSet::from(["544"])),
                ];
                ldap.add(&dn, attrs).await.unwrap().success().unwrap();
                made.push(name);
            }
            made
        }));
    }
    for t in tasks {
        names.extend(t.await.unwrap());
    }
    names
}

#[tokio::test]
async fn the_dashboard_counts_hundreds_of_users_page_by_page() {
    let dc = require_dc!();
    let ou = format!("OU={},{}", unique("load"), dc.base);
    let names = populate(&dc, &ou, 300).await;
    assert_eq!(names.len(), 300);
    let admin = dc.create_user_in("adm", &ou).await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let scoped = |c: String| c.replace("base_dn = \"DC=example,DC=test\"", &format!("base_dn = \"{ou}\""));
    let app = spawn_app_with(&dc, scoped).await;
    app.login(&admin.name, &admin.password).await;
    let admin_id = app.sessions().await[0].user_id.clone();
    // Two users enrolled straight in the database: one fully (3 + 2 stars), one partly.
    let settings = stjarna::config::from_toml_str(&scoped(dc.config(std::path::Path::new("/unused.db")))).unwrap();
    let directory = stjarna::directory::LdapDirectory::new(&settings.directory).unwrap();
    use stjarna::directory::Directory;
    let ids: Vec<String> = directory.all_user_ids().await.unwrap().into_iter().filter(|i| *i != admin_id).collect();
    assert_eq!(ids.len(), 300, "a paged search (pages of 200) finds them all");
    let store = app.store().await;
    for (user, service) in [(&ids[0], "bankid"), (&ids[0], "sms"), (&ids[1], "sms")] {
        store
            .execute("INSERT INTO enrolments (user_id, service, enrolled_at) VALUES ($1, $2, 0)", &[user, service])
            .await;
    }
    let now = stjarna::clock::Clock::now(&app.clock);
    for (event, days_ago) in [("password-reset", 0), ("password-reset", 0), ("unlock", 3), ("password-reset", 40)] {
        let entry = stjarna::storage::AuditRecord {
            id: 0,
            at: now - days_ago * 86400,
            event: event.into(),
            outcome: "success".into(),
            username: None,
            user_id: None,
            source_ip: None,
            user_agent: None,
            request_id: None,
            detail: None,
        };
        store.append_audit(&entry).await.unwrap();
    }
    let page = app.get_html("/admin").await;
    let n = |id: &str| text_of(&page, id).unwrap();
    assert_eq!(
        (n("count-users"), n("count-enrolled"), n("count-partly"), n("count-not")),
        ("301".into(), "1".into(), "1".into(), "299".into())
    );
    // Samba has no policy-hints control: the dashboard says resets do not enforce history.
    assert!(text_of(&page, "history-on-reset").unwrap().contains("lösenordshistorik"));
    let per_service = text_of(&page, "per-service").unwrap();
    assert_eq!(per_service, "Mobilt BankID: 1 Mobilkod: 2");
    let doc = scraper::Html::parse_document(&page);
    let titles: Vec<String> =
        doc.select(&scraper::Selector::parse("#chart svg rect title").unwrap()).map(|e| e.text().collect()).collect();
    let date = |days_ago: i64| {
        let day = (now - days_ago * 86400).div_euclid(86400) * 86400;
        stjarna::clock::format_rfc3339(day)[..10].to_string()
    };
    assert_eq!(
        titles,
        [format!("{}: 1 Upplåsta konton", date(3)), format!("{}: 2 Återställda lösenord", date(0))],
        "the last 30 days only, oldest first, dated"
    );
    // The not-enrolled report lists exactly the incomplete users.
    let csv = app.get("/admin/reports/not-enrolled.csv").await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + 300, "a header and everyone but the fully enrolled user");
}

#[tokio::test]
async fn the_service_desk_verifies_a_caller_by_sms_and_by_bankid_phone_auth() {
    let dc = require_dc!();
    let helpdesk_group = dc.create_group("hd").await;
    let agent = dc.create_user("agent").await;
    dc.add_member(&helpdesk_group, &agent.dn).await;
    let caller = dc.create_user("caller").await;
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        c.replace("admin_group = ", &format!("helpdesk_group = \"{helpdesk_group}\"\nadmin_group = "))
    })
    .await;
    t.app.login(&caller.name, &caller.password).await;
    t.enrol(ANNA).await;
    let csrf = csrf_in(&t.app.get_html("/enrol/sms").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0701234567")]).await;
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    let sms = location(&res);
    let csrf = csrf_in(&t.app.get_html(&sms).await);
    t.app.post(&sms, &[("csrf", &csrf), ("code", &code)]).await;

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
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", wrong)]).await;
    let retry = location(&res);
    let html = t.app.follow(res).await;
    assert!(text_of(&html, "verify-message").unwrap().starts_with("Fel kod"), "{html}");
    assert_eq!(t.app.get_html(&retry).await, html, "a reload shows the same and types nothing");
    let res = t.app.post(&action, &[("csrf", &csrf_in(&html)), ("user", &user_id), ("code", &code)]).await;
    let html = t.app.follow(res).await;
    assert_eq!(text_of(&html, "verify-message").unwrap(), format!("Verifierad: {} (2 stjärnor).", caller.display_name));

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
    assert_eq!(text_of(&html, "verify-message").unwrap(), format!("Verifierad: {} (3 stjärnor).", caller.display_name));
    let audit = t.app.audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.event == "bankid-order" && a.detail.as_deref() == Some("caller: phone/auth, call initiator RP"))
    );
    assert!(
        audit.iter().any(|a| a.event == "sms-check"
            && a.outcome == "success"
            && a.detail.as_deref() == Some("verify: verified"))
    );
}

#[tokio::test]
async fn enrolment_reminders_go_to_the_not_enrolled_at_most_once_a_week() {
    let dc = require_dc!();
    let ou = dc.create_ou("remind").await;
    let admin = dc.create_user_in("adm", &ou).await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
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
async fn the_dashboard_counts_people_and_says_what_it_left_out() {
    let dc = require_dc!();
    let ou = dc.create_ou("scope").await;
    let admin = dc.create_user_in("adm", &ou).await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let person = dc.create_user_in("person", &ou).await;
    let gone = dc.create_user_in("gone", &ou).await;
    dc.modify(&gone.dn, "userAccountControl", "514").await;
    let left = dc.create_user_in("left", &ou).await;
    dc.modify(&left.dn, "accountExpires", "132223104000000000").await; // 2020: the contract ended
    let mailbox = dc.create_user_in("mailbox", &ou).await;
    let scoped = |c: String| {
        c.replace("base_dn = \"DC=example,DC=test\"", &format!("base_dn = \"{ou}\""))
            + &format!("\n[admin]\nexclude_accounts = [\"{}\"]\n", mailbox.name.to_uppercase())
    };
    let app = spawn_app_with(&dc, scoped).await;
    app.login(&admin.name, &admin.password).await;
    let page = app.get_html("/admin").await;
    assert_eq!(
        text_of(&page, "count-users").unwrap(),
        "2",
        "the admin and the person; not the disabled, expired or excluded"
    );
    assert_eq!(
        text_of(&page, "counted").unwrap(),
        "Räknat: aktiva användarkonton i katalogens urval. Utanför räkningen: inaktiverade och utgångna konton (2), \
         inbyggda konton som Administrator och krbtgt (0), portalens tjänstekonto och undantagna konton (1)."
    );
    let csv = app.get("/admin/reports/not-enrolled.csv").await.text().await.unwrap();
    assert!(csv.contains(&person.name) && csv.contains(&admin.name), "{csv}");
    assert!(csv.starts_with("konto,namn,e-post,status,stjärnor\r\n"), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",Inte registrerad,")), "{csv}");
    assert!(!csv.contains(&gone.name) && !csv.contains(&mailbox.name), "{csv}");

    // The whole domain: AD's own accounts are left out as built-in, the portal's service account
    // as excluded.
    let app = spawn_app_with(&dc, |c| c).await;
    app.login(&admin.name, &admin.password).await;
    let counted = text_of(&app.get_html("/admin").await, "counted").unwrap();
    assert!(!counted.contains("Administrator och krbtgt (0)"), "{counted}");
    let csv = app.get("/admin/reports/not-enrolled.csv").await.text().await.unwrap();
    for account in ["Administrator", "krbtgt", "Guest", "svc-stjarna"] {
        assert!(!csv.lines().any(|l| l.starts_with(&format!("{account},"))), "{account} in {csv}");
    }
}

#[tokio::test]
async fn a_search_says_when_its_text_is_too_short_or_matches_more_than_it_shows() {
    let dc = require_dc!();
    let ou = dc.create_ou("many").await;
    let admin = dc.create_user_in("adm", &ou).await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
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

/// Today's date in Europe/Stockholm (the portal's default zone), `YYYY-MM-DD`.
fn stockholm_today() -> String {
    let tz = jiff::tz::TimeZone::get("Europe/Stockholm").unwrap();
    jiff::Timestamp::now().to_zoned(tz).date().to_string()
}
