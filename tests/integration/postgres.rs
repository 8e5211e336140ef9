//! The portal on PostgreSQL, and two instances sharing one database (as behind a load balancer
//! without sticky sessions): sessions, flows and limits agree, and the limits still never let AD
//! lock an account.

use futures_util::future::join_all;

use crate::helpers::{TestApp, csrf_in, location, new_client, spawn_app_with};

/// The configuration's database replaced by `url`, with the session secret every instance on one
/// PostgreSQL must share (check-config requires it).
fn on(url: &str) -> impl FnOnce(String) -> String + '_ {
    move |c: String| {
        let marker = "\n[database]\nurl = \"";
        let start = c.find(marker).expect("the test config's database") + marker.len() - "url = \"".len();
        let end = start + c[start..].find('\n').unwrap();
        let c = format!("{}url = \"{url}\"{}", &c[..start], &c[end..]);
        if c.contains("\n[session]\n") {
            c
        } else {
            c + "\n[session]\nsecret = \"shared-by-every-instance-0123456789\"\n"
        }
    }
}

#[tokio::test]
async fn an_enrolled_user_resets_the_password_with_the_portal_on_postgresql() {
    let dc = require_dc!();
    let Some(url) = crate::helpers::postgres_database().await else { return };
    let (user, t) = crate::reset::enrolled(&dc, "pgreset", on(&url)).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    let done = t.set_new_password(&flow, "Postgres-lösen-42!").await;
    assert!(crate::helpers::text_of(&done, "reset-message").unwrap().contains("bytt"), "{done}");
    assert_eq!(dc.bind(&user.dn, "Postgres-lösen-42!").await.0, 0, "AD has the new password");
}

#[tokio::test]
async fn two_instances_on_one_database_share_sessions_flows_and_limits() {
    let dc = require_dc!();
    let Some(url) = crate::helpers::postgres_database().await else { return };
    let many = |c: String| on(&url)(c).replace("[login]\n", "[login]\nmax_failures_per_ip = 10000\n");
    let a = spawn_app_with(&dc, many).await;
    let b = spawn_app_with(&dc, |c| on(&url)(c).replace("[login]\n", "[login]\nmax_failures_per_ip = 10000\n")).await;
    let user = dc.create_user("twoinst").await;

    // A session made on A works on B (cookies are per host, not per port).
    a.login(&user.name, &user.password).await;
    let page = a.client.get(b.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200, "the session made on A is known to B");

    // A reset started on A goes on on B.
    let browser = new_client();
    let csrf = csrf_in(&browser.get(a.url("/reset")).send().await.unwrap().text().await.unwrap());
    let res = browser.post(a.url("/reset")).form(&[("csrf", csrf.as_str()), ("username", user.name.as_str())]).send();
    let flow = location(&res.await.unwrap());
    let page = browser.get(b.url(&flow)).send().await.unwrap();
    assert_eq!(page.status(), 200, "the flow started on A is found on B");
    assert!(page.text().await.unwrap().contains("id=\"reset-services\""));

    // Forty parallel wrong logins spread over both never lock the account, ten times over.
    for round in 0..10 {
        let victim = dc.create_user("twoburst").await;
        let tries = (0..40).map(|n| {
            let app: &TestApp = if n % 2 == 0 { &a } else { &b };
            let (base, name) = (app.address.clone(), victim.name.clone());
            async move {
                let client = new_client();
                let page = client.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
                let form = [("csrf", csrf_in(&page)), ("username", name), ("password", "Wrong-pw-1!".into())];
                client.post(format!("{base}/login")).form(&form).send().await.unwrap().status().as_u16()
            }
        });
        join_all(tries).await;
        let bad = dc.attr(&victim.dn, "badPwdCount").await.unwrap_or_default().parse::<u32>().unwrap_or(0);
        assert!(bad <= 3, "round {round}: AD counted {bad} wrong passwords over both instances");
        assert_eq!(dc.bind(&victim.dn, &victim.password).await.0, 0, "round {round}: the account is not locked");
    }
}

#[tokio::test]
async fn a_reset_started_on_one_instance_finishes_on_the_other_and_each_mail_goes_out_once() {
    let dc = require_dc!();
    let Some(url) = crate::helpers::postgres_database().await else { return };
    // Instance A with the simulators; B with the very same configuration (same database, same
    // simulators, same secrets), as a second host behind the proxy.
    let config = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keep = config.clone();
    let (user, mut t) = crate::reset::enrolled(&dc, "pgtwo", move |c| {
        let c = on(&url)(c);
        *keep.lock().unwrap() = c.clone();
        c
    })
    .await;
    let same = config.lock().unwrap().clone();
    let b = crate::helpers::spawn_app_with_clock(&dc, t.app.clock.clone(), move |_| same).await;
    let address = format!("{}@example.test", user.name);
    // The enrolment notices were queued on A; both instances' mail workers are running.
    t.mail_to(&address, "Stjärna: en identitetstjänst har registrerats").await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let notices = t.mail.state.mails_to(&address);
    assert_eq!(
        notices.len(),
        2,
        "one notice per enrolment, none twice: {:?}",
        notices.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // The reset starts on A and finishes on B (same browser, no sticky sessions).
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    let a_address = std::mem::replace(&mut t.app.address, b.address.clone());
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    let done = t.set_new_password(&flow, "Andra-värden-42!").await;
    assert!(crate::helpers::text_of(&done, "reset-message").unwrap().contains("bytt"), "{done}");
    assert_eq!(dc.bind(&user.dn, "Andra-värden-42!").await.0, 0);
    t.app.address = a_address;
    // The reset notice, queued on B, is sent once too.
    t.mail_to(&address, "Stjärna: ditt lösenord har bytts").await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let changed = t.mail.state.mails_to(&address).into_iter().filter(|m| m.subject.contains("bytts")).count();
    assert_eq!(changed, 1);
}

/// The portal's own connections to PostgreSQL go over TLS when the URL asks for a verified
/// certificate (rustls, the CA from `sslrootcert`), and a server the CA does not vouch for is refused.
#[tokio::test]
async fn the_portal_reaches_postgresql_over_verified_tls_and_refuses_an_unknown_certificate() {
    let Some(url) = crate::helpers::postgres_database().await else { return };
    let ca = std::env::var("STJARNA_TEST_PG_CA").expect("./scripts/test names the cluster's CA in STJARNA_TEST_PG_CA");
    let database = url.rsplit_once('/').unwrap().1.to_string();
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
    let store = stjarna::storage::open(&verified, 2, None).await.expect("a verified TLS connection");
    store.ping().await.unwrap();

    let admin = std::env::var("STJARNA_TEST_PG_URL").unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin).await.unwrap();
    let (total, over_tls): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
         WHERE a.datname = $1",
    )
    .bind(&database)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(total >= 1, "the portal holds a connection to {database}");
    assert_eq!(over_tls, total, "every connection of the portal is encrypted");

    // Another CA (the test DC's) does not vouch for the database server: no connection at all.
    let other_ca = std::env::var("STJARNA_TEST_DC_CA").expect("the test DC's CA");
    let wrong = format!("{url}?sslmode=verify-full&sslrootcert={other_ca}");
    assert!(stjarna::storage::open(&wrong, 1, None).await.is_err(), "a certificate from an unknown CA is refused");
}
