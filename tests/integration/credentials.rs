//! Sessions follow the credentials and the roles: a revocation ends the user's sessions, and an
//! admin removed from the admin group loses the session within the minute of the session check.

use crate::helpers::{TestDc, csrf_in, location, new_client, spawn_app, text_of};
use crate::reset::enrolled;

#[tokio::test]
async fn a_revocation_ends_every_session_of_the_user() {
    let dc = require_dc!();
    let admin = dc.create_user("cred-adm").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let (user, mut t) = enrolled(&dc, "cred-rev", |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let users_browser = t.app.client.clone();
    assert_eq!(t.app.get("/").await.status(), 200);
    let user_id = t.app.sessions().await.iter().find(|s| s.account_name == user.name).unwrap().user_id.clone();

    t.app.client = new_client();
    t.app.login(&admin.name, &admin.password).await;
    let page = t.app.get_html(&format!("/admin/users/{user_id}")).await;
    let form = [("csrf", csrf_in(&page)), ("service", "all".to_string()), ("reason", "Lost phone".to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    t.app.post(&format!("/admin/users/{user_id}/revoke"), &form).await;

    t.app.client = users_browser;
    assert!(location(&t.app.get("/").await).starts_with("/login"), "the user's session ended");
    assert!(t.app.sessions().await.iter().all(|s| s.user_id != user_id));
}

async fn admin_page(t: &crate::helpers::TestApp) -> u16 {
    t.get("/admin").await.status().as_u16()
}

#[tokio::test]
async fn an_admin_removed_from_the_group_loses_the_session_within_a_minute() {
    let dc = require_dc!();
    let group = format!("CN=IT-admins,CN=Users,{}", dc.base);
    let admin = dc.create_user("cred-was").await;
    dc.add_member(&group, &admin.dn).await;
    let t = spawn_app(&dc).await;
    t.login(&admin.name, &admin.password).await;
    assert_eq!(admin_page(&t).await, 200);
    dc.remove_member(&group, &admin.dn).await;
    // Within the re-authentication's fifteen minutes, but past the session check's minute: the
    // session that carried the role ends (it used to last until the next password prompt).
    t.clock.advance_seconds(61);
    let res = t.get("/admin").await;
    assert!(location(&res).starts_with("/login"), "{:?}", res.headers().get("location"));
    t.login(&admin.name, &admin.password).await;
    assert_eq!(admin_page(&t).await, 403, "no longer an admin");
    // A member of staff whose roles did not change keeps the session.
    let helpdesk = dc.create_user("cred-stay").await;
    dc.add_member(&group, &helpdesk.dn).await;
    let other = spawn_app(&dc).await;
    other.login(&helpdesk.name, &helpdesk.password).await;
    other.clock.advance_seconds(61);
    assert_eq!(admin_page(&other).await, 200, "still an admin, still in");
}

async fn reauth(t: &crate::helpers::TestApp, password: &str) {
    let csrf = csrf_in(&t.get_html("/admin/reauth?back=/admin").await);
    let res = t.post("/admin/reauth", &[("csrf", &csrf), ("back", "/admin"), ("password", password)]).await;
    assert_eq!(res.status(), 303, "{:?}", text_of(&res.text().await.unwrap(), "reauth-error"));
}

#[tokio::test]
async fn an_account_adminsdholder_protects_is_privileged_too() {
    let dc: TestDc = require_dc!();
    let (user, t) = enrolled(&dc, "cred-ac", |c| c).await;
    dc.modify(&user.dn, "adminCount", "1").await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "protected").is_some(), "adminCount=1 sends the user to the service desk");
    assert!(text_of(&page, "reset-enough").is_none());
}

#[tokio::test]
async fn an_expired_account_ends_its_sessions_and_is_neither_reset_nor_let_in_with_bankid() {
    let dc: TestDc = require_dc!();
    let (user, mut t) = enrolled(&dc, "cred-exp", |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let users_browser = std::mem::replace(&mut t.app.client, new_client());
    // The contract ended: accountExpires is in the past (1 January 2020 as a FILETIME).
    dc.modify(&user.dn, "accountExpires", "132223104000000000").await;
    let pwd_last_set = dc.attr(&user.dn, "pwdLastSet").await;

    let flow = t.start_reset(&user.name).await;
    assert!(text_of(&t.app.get_html(&flow).await, "closed").is_none(), "nothing is said before a proof");
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    let page = t.app.get_html(&flow).await;
    assert!(text_of(&page, "closed").expect("told after the proof").contains("servicedesken"), "{page}");
    assert!(text_of(&page, "reset-enough").is_none(), "{page}");
    // Nor by posting the steps directly.
    let res = t
        .post_in(&flow, "/password", &[("password", "Tre-glada-kor-på-bete7"), ("repeat", "Tre-glada-kor-på-bete7")])
        .await;
    assert_eq!(location(&res), flow);
    let res = t.post_in(&flow, "/unlock", &[]).await;
    assert_eq!(location(&res), flow);
    assert_eq!(dc.attr(&user.dn, "pwdLastSet").await, pwd_last_set, "AD was not written");

    // Logging in with the enrolled BankID is refused.
    let res = t.post_from("/login", "/login/bankid").await;
    let id = crate::sims::flow_id(&res);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, crate::sims::ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    let res = t.app.get(&format!("/bankid/{id}")).await;
    let page = t.app.follow(res).await;
    assert!(page.contains("har gått ut"), "{page}");
    assert_ne!(t.app.get("/").await.status(), 200, "not logged in");

    // The session made before the expiry ends at its next check.
    t.app.client = users_browser;
    t.app.clock.advance_seconds(61);
    assert!(location(&t.app.get("/").await).starts_with("/login"), "the session ended");
}

#[tokio::test]
async fn an_admin_logged_in_with_bankid_gives_the_password_before_the_admin_pages() {
    // A BankID login QR code relayed to a phished admin, or an admin's stolen phone, must not
    // open the admin pages: they need the AD password given in the session.
    let dc: TestDc = require_dc!();
    let admin = dc.create_user("cred-bid").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let mut t = crate::sims::spawn_with_bankid(&dc, |c| c).await;
    t.app.login(&admin.name, &admin.password).await;
    assert_eq!(admin_page(&t.app).await, 200, "a password login opens them");
    t.enrol(crate::sims::ANNA).await;

    t.app.client = new_client();
    let res = t.post_from("/login", "/login/bankid").await;
    let id = crate::sims::flow_id(&res);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, crate::sims::ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    t.app.clock.advance_seconds(2);
    assert_eq!(location(&t.app.get(&format!("/bankid/{id}")).await), "/", "logged in");
    assert!(location(&t.app.get("/admin").await).starts_with("/admin/reauth"), "the password first");
    reauth(&t.app, &admin.password).await;
    assert_eq!(admin_page(&t.app).await, 200);
}

#[tokio::test]
async fn a_session_begun_with_bankid_alone_adds_no_service_until_the_password_is_given() {
    // Two relayed QR codes (a login, then the step-up) must not let the attacker add their own
    // phone, which would later fill the star row of a reset with another relayed BankID.
    let dc: TestDc = require_dc!();
    let user = dc.create_user("cred-relay").await;
    let mut t = crate::sims::spawn_with_sms(&dc, crate::sims::Gateway::Elks46, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    t.enrol(crate::sims::ANNA).await;
    t.app.client = new_client();
    let approve = async |t: &crate::sims::SimTest, res: reqwest::Response| {
        let id = crate::sims::flow_id(&res);
        let order = t.app_scan(&t.scan_qr_frame(&id).await, crate::sims::ANNA).await.unwrap();
        t.app_press(&order, "approve").await;
        t.app.clock.advance_seconds(2);
        location(&t.app.get(&format!("/bankid/{id}")).await)
    };
    let res = t.post_from("/login", "/login/bankid").await;
    assert_eq!(approve(&t, res).await, "/", "logged in");
    let res = t.post_from("/", "/verify/bankid").await;
    approve(&t, res).await;
    let to = location(&t.app.get("/enrol/sms").await);
    assert!(to.starts_with("/reauth"), "the password first: {to}");
    let prompt = t.app.get_html(&to).await;
    assert!(prompt.contains("också när du loggade in med BankID"), "not the admin pages' text: {prompt}");
    assert!(prompt.contains("href=\"/reset\""), "a way out for who forgot it");
    let csrf = crate::helpers::csrf_in(&t.app.get_html("/").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0709999999")]).await;
    assert!(location(&res).starts_with("/reauth"), "the password first: {}", location(&res));
    assert!(t.sms.as_ref().unwrap().state.last_code_to("+46709999999").is_none(), "no code to the new number");
}

/// The session cookie as the browser holds it.
fn session_cookie(jar: &reqwest::cookie::Jar, base: &str) -> String {
    use reqwest::cookie::CookieStore;
    let all = jar.cookies(&base.parse().unwrap()).unwrap();
    all.to_str().unwrap().split("; ").find_map(|c| c.strip_prefix("stjarna_session=")).unwrap().to_string()
}

#[tokio::test]
async fn a_copied_session_cookie_ends_when_its_owner_changes_the_password_or_gives_it_again() {
    let dc: TestDc = require_dc!();
    let admin = dc.create_user("cred-copy").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let mut t = spawn_app(&dc).await;
    let (owner, jar) = crate::attacks::jar_client();
    t.client = owner.clone();
    t.login(&admin.name, &admin.password).await;
    let base = t.address.clone();
    // A thief copies the cookie (an open laptop, a synced browser profile).
    let copy = |cookie: String| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, format!("stjarna_session={cookie}").parse().unwrap());
        let client = crate::helpers::client_builder().default_headers(headers);
        client.build().unwrap()
    };
    t.client = copy(session_cookie(&jar, &base));
    assert_eq!(t.get("/").await.status(), 200, "the copy works, as a copied cookie does");

    // The owner, worried, gives the password again on the admin pages: the copy ends.
    t.client = owner.clone();
    t.clock.advance_seconds(16 * 60);
    let first = session_cookie(&jar, &base);
    reauth(&t, &admin.password).await;
    assert_eq!(admin_page(&t).await, 200, "the owner goes on");
    t.client = copy(first);
    assert!(location(&t.get("/").await).starts_with("/login"), "the first copy ended");
    t.client = owner.clone();
    let stolen = session_cookie(&jar, &base);
    t.client = copy(stolen.clone());
    assert_eq!(t.get("/").await.status(), 200, "a copy taken now works");

    // The owner changes the password in the session: that copy ends too, and the owner goes on.
    t.client = owner;
    let done = crate::change::change(&t, None, &admin.password, "Tre-glada-kor-på-bete7").await;
    assert!(done.starts_with("Ditt lösenord är bytt"), "{done}");
    assert_eq!(t.get("/").await.status(), 200, "the owner goes on");
    t.client = copy(stolen);
    assert!(location(&t.get("/").await).starts_with("/login"), "the copy ended");
}

#[tokio::test]
async fn a_service_desk_reset_to_change_at_next_logon_ends_a_session_that_changed_the_password() {
    // A thief with the password logs in and changes it; the owner calls the service desk, which
    // resets it with "must change at next logon" (pwdLastSet 0). The thief's session must end.
    let dc: TestDc = require_dc!();
    let user = dc.create_user("cred-mustchg").await;
    let t = spawn_app(&dc).await;
    t.login(&user.name, &user.password).await;
    let done = crate::change::change(&t, None, &user.password, "Tjuvens-eget-lösen-4").await;
    assert!(done.contains("bytt"), "{done}");
    dc.modify(&user.dn, "pwdLastSet", "0").await;
    t.clock.advance_seconds(61);
    assert!(location(&t.get("/").await).starts_with("/login"), "the session ended");
}

/// After a change made in the portal, the session takes AD's new `pwdLastSet` as its own once the
/// DC asked has it; while that DC still has the value from before the change, the roles are
/// checked all the same: an admin removed from the group loses the session within the minute.
#[tokio::test]
async fn an_admin_removed_from_the_group_loses_the_session_while_the_dc_lags_behind_a_change() {
    let dc = require_dc!();
    let group = format!("CN=IT-admins,CN=Users,{}", dc.base);
    let admin = dc.create_user("cred-lag").await;
    dc.add_member(&group, &admin.dn).await;
    let t = spawn_app(&dc).await;
    t.login(&admin.name, &admin.password).await;
    // The portal's clock ten minutes ahead of the DC's: to the session check, AD's pwdLastSet
    // after the change is from before it, as a DC the change has not reached would answer.
    t.clock.advance_seconds(600);
    let done = crate::change::change(&t, None, &admin.password, "Tre-glada-kor-på-bete7").await;
    assert!(done.starts_with("Ditt lösenord är bytt"), "{done}");
    assert_eq!(admin_page(&t).await, 200);
    dc.remove_member(&group, &admin.dn).await;
    t.clock.advance_seconds(61);
    let res = t.get("/admin").await;
    assert!(location(&res).starts_with("/login"), "{:?}", res.headers().get("location"));
}
