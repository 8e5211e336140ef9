//! What an admin reads: the dashboard's counts, the audit trail (filters, pages, CSV export).

use std::collections::HashSet;

use crate::admin::admin_user;
use crate::helpers::{TestDc, csrf_in, location, spawn_app_with, text_of, unique};

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
    let page = app.get_html(&format!("/admin/audit?user={}&outcome=success&event=login", admin.name)).await;
    assert_eq!(text_of(&page, "audit-total").unwrap(), "1 händelse", "one, not ones");
    // A look at someone's trail is in the trail itself, under who looked (the two above).
    let page = app.get_html(&format!("/admin/audit?user={}&event=admin-view", admin.name)).await;
    assert_eq!(text_of(&page, "audit-total").unwrap(), "2 händelser");
    assert!(page.contains("sökning i granskningsloggen"), "{page}");
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
    // A personal number typed as the user is neither searched for, nor shown again, nor kept
    // in the trail (which holds none: the search itself would have put it there in clear).
    let page = app.get_html("/admin/audit?user=19811218-9876").await;
    assert!(text_of(&page, "audit-error").unwrap().starts_with("Sök på namn, kontonamn eller e-post"), "{page}");
    assert!(page.contains("name=\"user\" value=\"\" aria-invalid=\"true\""), "{page}");
    assert!(!page.contains("9876"), "{page}");
    let res = app.get("/admin/audit.csv?user=198112189876").await;
    assert!(res.status() == 303 && !location(&res).contains("9876"), "nor exported, nor sent back");
    for field in ["ip", "from"] {
        let page = app.get_html(&format!("/admin/audit?{field}=19811218-9876")).await;
        assert!(text_of(&page, "audit-error").is_some() && !page.contains("9876"), "{field}: {page}");
    }
    let kept = app.audit().await;
    assert!(kept.iter().all(|a| !a.detail.as_deref().unwrap_or_default().contains("9876")), "{kept:?}");
    // Days are the portal's (Europe/Stockholm): today's events are found under today's date.
    let today = app.get_html(&format!("/admin/audit?user={}&from={}", victim.name, stockholm_today())).await;
    assert_eq!(text_of(&today, "audit-total").unwrap(), "3 händelser");
    let res = app.get(&format!("/admin/audit.csv?user={}&outcome=failure", victim.name)).await;
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,event,outcome,username,user_id,source_ip,user_agent,request_id,detail,actor");
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
    // One prefix for the run's names (a random one per name could repeat, and the DC serves both
    // backends' runs).
    let run = unique("");
    for chunk in 0..10 {
        let dc = dc.clone();
        let ou = ou.to_string();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut ldap = dc.admin().await;
            let mut made = Vec::new();
            for i in 0..n / 10 {
                let name = format!("l{run}{chunk}x{i}");
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
    let admin = crate::admin::admin_user_in(&dc, &ou).await;
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
            actor: None,
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
async fn the_dashboard_counts_people_and_says_what_it_left_out() {
    let dc = require_dc!();
    let ou = dc.create_ou("scope").await;
    let admin = crate::admin::admin_user_in(&dc, &ou).await;
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

/// Today's date in Europe/Stockholm (the portal's default zone), `YYYY-MM-DD`.
fn stockholm_today() -> String {
    let tz = jiff::tz::TimeZone::get("Europe/Stockholm").unwrap();
    jiff::Timestamp::now().to_zoned(tz).date().to_string()
}
