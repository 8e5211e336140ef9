//! Limits that hold under concurrency: real parallel requests against the portal and Samba.

use futures_util::future::join_all;

use stjarna::storage::prelude::*;

use crate::helpers::{csrf_in, new_client, spawn_app_with};

/// One wrong login from a browser of its own.
async fn wrong_login(base: String, name: String) -> u16 {
    let client = new_client();
    let page = client.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", csrf_in(&page)), ("username", name), ("password", "Wrong-pw-123!".to_string())];
    client.post(format!("{base}/login")).form(&form).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn forty_parallel_wrong_logins_never_lock_the_account() {
    let dc = require_dc!();
    // The address limit out of the way: what is tested is the per-user limit under a burst.
    let app = spawn_app_with(&dc, |c| c.replace("[login]\n", "[login]\nmax_failures_per_ip = 10000\n")).await;
    for round in 0..10 {
        let user = dc.create_user("burst").await;
        let tries = (0..40).map(|_| wrong_login(app.address.clone(), user.name.clone()));
        let statuses = join_all(tries).await;
        assert!(statuses.iter().all(|s| *s == 303), "round {round}: {statuses:?}");
        let bad = dc.attr(&user.dn, "badPwdCount").await.unwrap_or_default().parse::<u32>().unwrap_or(0);
        let lockout = dc.attr(&user.dn, "lockoutTime").await.unwrap_or_default();
        assert!(bad <= 3, "round {round}: AD counted {bad} wrong passwords");
        assert!(lockout.is_empty() || lockout == "0", "round {round}: AD locked the account ({lockout})");
        assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "round {round}: the password still works");
    }
}

#[tokio::test]
async fn parallel_guesses_at_a_mobile_code_get_three_tries_in_all() {
    let dc = require_dc!();
    let user = dc.create_user("guess").await;
    let t = crate::sims::spawn_with_sms(&dc, crate::sims::Gateway::Elks46, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let page = t.app.get_html("/enrol/sms").await;
    let form = [("csrf", csrf_in(&page)), ("country", "SE".into()), ("number", "0701234567".into())];
    let res = t.app.client.post(t.app.url("/enrol/sms")).form(&form).send().await.unwrap();
    let challenge = crate::helpers::location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    let csrf = csrf_in(&t.app.get_html(&challenge).await);
    // Twenty guesses at once, none of them right.
    let guesses = (0..20u32).map(|n| {
        let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + n) % 1_000_000);
        let form = [("csrf", csrf.clone()), ("code", guess)];
        let request = t.app.client.post(t.app.url(&challenge)).form(&form).send();
        async move { request.await.unwrap().status().as_u16() }
    });
    join_all(guesses).await;
    let audit = t.app.audit().await;
    let checked = audit
        .iter()
        .filter(|a| {
            a.event == "sms-check"
                && a.detail.as_deref().is_some_and(|d| d.starts_with("enrol:") && d.contains("wrong code"))
        })
        .count();
    assert_eq!(
        checked,
        3,
        "only three guesses were checked: {:?}",
        audit.iter().map(|a| &a.detail).collect::<Vec<_>>()
    );
    // And the right code no longer helps.
    let res = t.app.client.post(t.app.url(&challenge)).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send();
    res.await.unwrap();
    assert!(t.app.store().await.all_enrolments().await.unwrap().is_empty());
}

#[tokio::test]
async fn two_parallel_passwords_on_one_flow_write_ad_once() {
    let dc = require_dc!();
    let (user, t) = crate::reset::enrolled(&dc, "twice", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, crate::sims::ANNA).await;
    let csrf = csrf_in(&t.app.get_html(&format!("{flow}/password")).await);
    let posts = ["Forsta-lösenordet-42!", "Andra-lösenordet-42!"].map(|pw| {
        let form = [("csrf", csrf.clone()), ("password", pw.to_string()), ("repeat", pw.to_string())];
        let request = t.app.client.post(t.app.url(&format!("{flow}/password"))).form(&form).send();
        async move { request.await.unwrap().status().as_u16() }
    });
    join_all(posts).await;
    let audit = t.app.audit().await;
    let written = audit.iter().filter(|a| a.event == "password-reset" && a.outcome == "success").count();
    assert_eq!(written, 1, "exactly one password write");
    let binds = [dc.bind(&user.dn, "Forsta-lösenordet-42!").await.0, dc.bind(&user.dn, "Andra-lösenordet-42!").await.0];
    assert_eq!(binds.iter().filter(|rc| **rc == 0).count(), 1, "one of the two is the password: {binds:?}");
    let store = t.app.store().await;
    let counted: (i64,) = store.fetch_one("SELECT COUNT(*) FROM throttle_failures WHERE scope = 'reset-user'").await;
    assert_eq!(counted.0, 1, "the day's limit counted one reset");
}

#[tokio::test]
async fn parallel_verifications_of_one_flow_are_all_kept() {
    let dc = require_dc!();
    let app = crate::helpers::spawn_app(&dc).await;
    let store = app.store().await;
    let now = app.clock.now();
    use stjarna::clock::Clock;
    for round in 0..20 {
        let id = format!("flow-{round}");
        let flow = stjarna::storage::ResetFlowRecord {
            id: id.clone(),
            binding_hash: String::new(),
            typed_name: "anna".into(),
            user_id: Some("u".into()),
            verified: String::new(),
            sms_challenge: None,
            failures: 0,
            state: "identifying".into(),
            created_at: now,
            expires_at: now + 900,
            finished_at: None,
            outcome: None,
            pwd_last_set: None,
            written_maybe_at: None,
        };
        store.insert_reset_flow(&flow).await.unwrap();
        let (a, b) = tokio::join!(store.reset_verified(&id, "sms"), store.reset_verified(&id, "bankid"));
        assert!(a.unwrap() && b.unwrap());
        let verified = store.reset_flow(&id).await.unwrap().unwrap().verified;
        let mut kinds: Vec<&str> = verified.split(',').collect();
        kinds.sort();
        assert_eq!(kinds, ["bankid", "sms"], "round {round}: {verified}");
        assert!(!store.reset_verified(&id, "sms").await.unwrap(), "each service counts once");
    }
}

#[tokio::test]
async fn two_mail_workers_send_each_mail_once() {
    use std::sync::Arc;
    use stjarna::clock::{Clock, ManualClock};
    use stjarna::mail::{Mailer, Notice, Outbox};
    let dc = require_dc!();
    let sink = stjarna::simulators::mail::MailSimulator::start("127.0.0.1:0", "127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outbox.db");
    let mail = format!(
        "\n[mail]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Stjärna <noreply@example.test>\"\n",
        sink.smtp.port()
    );
    let settings = stjarna::config::from_toml_str(&(dc.config(&db) + &mail)).unwrap();
    let store = stjarna::storage::SqliteStorage::open(&format!("sqlite://{}", db.display()), 4).await.unwrap();
    store.migrate().await.unwrap();
    let store: Arc<dyn Storage> = Arc::new(store);
    let clock = ManualClock::starting_now();
    let outbox = Outbox::new(store.clone(), Arc::new(clock.clone()), "Stjärna", "");
    let meta = stjarna::audit::RequestMeta {
        source_ip: "192.0.2.1".into(),
        user_agent: String::new(),
        request_id: String::new(),
        lang: stjarna::i18n::Lang::Sv,
        actor: None,
    };
    for n in 0..12 {
        outbox.notify(&format!("u{n}@example.test"), "U", Notice::Reminder, &meta).await.unwrap();
    }
    let worker = || Mailer::new(store.clone(), Arc::new(clock.clone()), settings.mail.as_ref().unwrap()).unwrap();
    let (a, b) = (worker(), worker());
    let now = clock.now();
    let (x, y) = tokio::join!(a.run_once(now), b.run_once(now));
    assert_eq!(x.unwrap() + y.unwrap(), 12);
    for n in 0..12 {
        assert_eq!(sink.state.mails_to(&format!("u{n}@example.test")).len(), 1, "mail {n} went out once");
    }
    // Nothing is left for a later round, and nothing goes out twice.
    assert_eq!(a.run_once(now + 3600).await.unwrap(), 0);
}

#[tokio::test]
async fn the_janitor_deletes_finished_flows_challenges_and_mail_after_their_retention() {
    use stjarna::clock::Clock;
    let dc = require_dc!();
    let (user, t) = crate::reset::enrolled(&dc, "janitor", |c| c).await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    let count = async |table: &'static str| -> i64 {
        let store = t.app.store().await;
        let (n,): (i64,) = store.fetch_one(&format!("SELECT COUNT(*) FROM {table}")).await;
        n
    };
    // Every notice queued so far is sent (the mail worker runs in real time).
    t.mail_to(&format!("{}@example.test", user.name), "Stjärna: en identitetstjänst har registrerats").await;
    for _ in 0..100 {
        if count("mail_outbox WHERE sent_at IS NULL").await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let now = t.app.clock.now();
    let swept = t.app.janitor.run_once(now).await.unwrap();
    assert_eq!(swept.finished, 0, "nothing is old yet");
    assert!(count("reset_flows").await >= 1 && count("sms_challenges").await >= 2);
    // A week (the default retention) and a day later, all of it goes; the audit log stays.
    let swept = t.app.janitor.run_once(now + 8 * 86400).await.unwrap();
    assert!(swept.finished >= 3, "{swept:?}");
    assert_eq!(count("reset_flows").await, 0);
    assert_eq!(count("sms_challenges").await, 0);
    assert_eq!(count("mail_outbox WHERE sent_at IS NOT NULL").await, 0);
    assert!(count("audit_log").await > 0);
    assert_eq!(count("enrolments").await, 2, "enrolments are never swept");
}

#[tokio::test]
async fn many_parallel_polls_of_one_order_ask_the_broker_once() {
    let dc = require_dc!();
    let user = dc.create_user("polls").await;
    let t = crate::sims::spawn_with(&dc, crate::sims::Backend::Idkollen, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let id = t.start_enrol().await;
    t.app.clock.advance_seconds(2);
    // Twelve tabs (or instances) poll the order in the same instant.
    let polls = (0..12).map(|_| {
        let request = t.app.client.get(t.app.url(&format!("/bankid/{id}/status"))).send();
        async move { request.await.unwrap().status().as_u16() }
    });
    let statuses = join_all(polls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let calls = t.sim.state.broker_status_calls();
    assert_eq!(calls.len(), 1, "one status call for the order, not one per poll: {calls:?}");
    // Two seconds later the next poll collects again.
    t.app.clock.advance_seconds(2);
    t.app.get(&format!("/bankid/{id}/status")).await;
    assert_eq!(t.sim.state.broker_status_calls().len(), 2);
}

/// Fifteen BankID orders at once from one reset flow: ten reach BankID, the rest are told to wait
/// and audited. Before, one flow could start orders for as long as it lived (each one an order at
/// BankID or a broker's fee, a stored flow and its QR frames). An hour later the browser may
/// start orders again.
#[tokio::test]
async fn one_browser_starts_at_most_ten_bankid_orders_an_hour() {
    let dc = require_dc!();
    let (user, t) = crate::reset::enrolled(&dc, "orders", |c| c).await;
    let before = t.sim.state.awaiting_scan().len();
    let flow = t.start_reset(&user.name).await;
    let limit = stjarna::identity::bankid::ORDERS_PER_BROWSER_PER_HOUR as usize;
    // Orders that BankID did not start (an outage) are given back.
    t.sim.state.inject(stjarna::simulators::bankid::Fault::Maintenance, limit + 2);
    for _ in 0..limit + 2 {
        let res = t.post_in(&flow, "/bankid", &[]).await;
        let message = crate::helpers::text_of(&t.app.follow(res).await, "reset-message").unwrap_or_default();
        assert!(message.starts_with("Internt fel."), "BankID refused the order: {message}");
    }
    let csrf = csrf_in(&t.app.get_html(&flow).await);
    let starts = (0..15).map(|_| {
        let request = t.app.client.post(t.app.url(&format!("{flow}/bankid"))).form(&[("csrf", csrf.clone())]).send();
        async move { crate::helpers::location(&request.await.unwrap()) }
    });
    let places = join_all(starts).await;
    assert_eq!(places.iter().filter(|p| p.starts_with("/bankid/")).count(), limit, "{places:?}");
    assert_eq!(t.sim.state.awaiting_scan().len(), before + limit, "orders sent to BankID");
    let refused = places.iter().find(|p| p.starts_with(&flow)).expect("the others go back to the flow");
    let message = crate::helpers::text_of(&t.app.get_html(refused).await, "reset-message").unwrap_or_default();
    assert!(message.contains("för många BankID-identifieringar"), "{message}");
    let audit = t.app.audit().await;
    let blocked = audit.iter().filter(|a| a.event == "bankid-order" && a.outcome == "blocked").count();
    assert_eq!(blocked, 15 - limit, "each refusal is audited");

    t.app.clock.advance_seconds(3601);
    let flow = t.start_reset(&user.name).await;
    let res = t.post_in(&flow, "/bankid", &[]).await;
    assert!(crate::helpers::location(&res).starts_with("/bankid/"), "a new hour, a new order");
}

/// A logged-in user's orders are counted for the user, not for the browser's CSRF cookie, which
/// a client may drop for a new one before each order (it was the only key).
#[tokio::test]
async fn a_logged_in_user_starts_at_most_ten_bankid_orders_an_hour_whatever_the_cookies() {
    let dc = require_dc!();
    let (user, t) = crate::reset::enrolled(&dc, "orders-in", |c| c).await;
    let login = t.app.login(&user.name, &user.password).await;
    let set_cookie = |res: &reqwest::Response, name: &str| {
        let header = res.headers().get_all("set-cookie").iter().map(|h| h.to_str().unwrap().to_string());
        header.filter(|c| c.starts_with(&format!("{name}="))).map(|c| c.split(';').next().unwrap().to_string()).next()
    };
    let session = set_cookie(&login, "stjarna_session").expect("a session");
    let before = t.sim.state.awaiting_scan().len();
    let limit = stjarna::identity::bankid::ORDERS_PER_BROWSER_PER_HOUR as usize;
    let plain = crate::helpers::client_builder().build().unwrap();
    let mut places = Vec::new();
    for _ in 0..limit + 2 {
        // The session without its CSRF cookie: the portal hands out a new one, and its token.
        let page = plain.get(t.app.url("/")).header("cookie", &session).send().await.unwrap();
        let csrf_cookie = set_cookie(&page, "stjarna_csrf").expect("a new CSRF cookie");
        let token = csrf_in(&page.text().await.unwrap());
        let res = plain
            .post(t.app.url("/verify/bankid"))
            .header("cookie", format!("{session}; {csrf_cookie}"))
            .form(&[("csrf", token)])
            .send()
            .await
            .unwrap();
        places.push(crate::helpers::location(&res));
    }
    // The order that enrolled the user's BankID, a moment ago, counts too.
    assert_eq!(places.iter().filter(|p| p.starts_with("/bankid/")).count(), limit - 1, "{places:?}");
    assert_eq!(t.sim.state.awaiting_scan().len(), before + limit - 1);
}

/// A phone order makes the phone ask its owner to confirm. An agent, or whoever holds an agent's
/// session, could send one request after another to the same person until they confirm one to
/// make it stop ("MFA fatigue"): they were unlimited. Now five an hour per BankID (whichever of
/// the person's accounts is named), counted before the order (a burst of parallel starts cannot
/// slip past), audited when refused, and told to the agent as the warning it is; orders BankID
/// said it did not make are given back, an order that may have been made is not.
#[tokio::test]
async fn the_service_desk_cannot_bomb_a_caller_with_bankid_requests() {
    use crate::sims::{ANNA, Gateway, spawn_with_sms};
    use stjarna::simulators::bankid::Fault;
    let dc = require_dc!();
    let (agent, desk) = crate::admin::helpdesk_agent(&dc, "bomber").await;
    let (caller, second) = (dc.create_user("bombed").await, dc.create_user("bombed-adm").await);
    let edit = |c: String| desk(c).replace("[bankid]\n", "[bankid]\ntimeout_seconds = 1\n");
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, edit).await;
    // One person, one BankID, two accounts (an everyday one and an admin one).
    for account in [&caller, &second] {
        t.app.client = new_client();
        t.app.login(&account.name, &account.password).await;
        t.enrol(ANNA).await;
    }
    t.app.client = new_client();
    t.app.login(&agent.name, &agent.password).await;
    let start = async |t: &crate::sims::SimTest, name: &str| {
        let page = t.app.get_html("/admin/verify").await;
        let form = [("csrf", csrf_in(&page)), ("username", name.to_string()), ("method", "bankid".into())];
        t.app.client.post(t.app.url("/admin/verify")).form(&form).send().await.unwrap()
    };
    let started = |res: &reqwest::Response| crate::helpers::location(res).starts_with("/admin/verify/bankid/");
    let decline_all = |t: &crate::sims::SimTest| {
        for order in t.sim.state.phone_orders_for(ANNA) {
            t.sim.state.user_cancel(&order.order_ref).unwrap();
        }
    };
    let limit = stjarna::identity::bankid::PHONE_ORDERS_PER_BANKID_PER_HOUR as usize;
    // BankID down: it said it made no order, nothing is used up.
    t.sim.state.inject(Fault::Maintenance, limit + 1);
    for _ in 0..limit + 1 {
        let html = t.app.follow(start(&t, &caller.name).await).await;
        let message = crate::helpers::text_of(&html, "verify-message").unwrap_or_default();
        assert!(message.starts_with("Internt fel."), "BankID refused the order: {message}");
    }
    assert!(t.sim.state.phone_orders_for(ANNA).is_empty());
    // No answer in time: BankID may have made the order (here it did), so it counts.
    t.sim.state.inject(Fault::Slow(std::time::Duration::from_millis(1500)), 1);
    assert!(!started(&start(&t, &caller.name).await));
    // (BankID makes it once its slow answer is over.)
    for _ in 0..100 {
        if !t.sim.state.phone_orders_for(ANNA).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(t.sim.state.phone_orders_for(ANNA).len(), 1, "the order reached the phone");
    decline_all(&t);
    // The person declines each request; the agent starts another, naming either account.
    for n in 0..limit - 2 {
        let name = if n % 2 == 0 { &caller.name } else { &second.name };
        assert!(started(&start(&t, name).await), "order {n}");
        decline_all(&t);
    }
    // The last one the hour allows, raced by a burst: one is let through to BankID, five are
    // refused before it (with a check before and a count after, all six would have passed).
    let burst = join_all((0..6).map(|_| start(&t, &caller.name))).await;
    let places: Vec<_> = burst.iter().map(crate::helpers::location).collect();
    assert_eq!(burst.iter().filter(|r| started(r)).count(), 1, "{places:?}");
    let blocked = |audit: &[stjarna::storage::AuditRecord]| {
        audit.iter().filter(|a| a.event == "bankid-order" && a.outcome == "blocked").count()
    };
    assert_eq!(blocked(&t.app.audit().await), 5, "refused before BankID, and audited");
    decline_all(&t);
    // The other account's name reaches the same phone: refused too, with a warning.
    let html = t.app.follow(start(&t, &second.name).await).await;
    assert_eq!(
        crate::helpers::text_of(&html, "verify-message").unwrap(),
        "Det här BankID:t har fått 5 förfrågningar från servicedesken den senaste timmen; fler skickas inte \
         förrän om 60 minuter. Har personen nekat eller inte svarat kan den som ringer vara någon annan: \
         verifiera inte på annat sätt, ring i stället upp personen på ett nummer ni redan har."
    );
    assert!(t.sim.state.phone_orders_for(ANNA).is_empty(), "no request reached the phone");
    let audit = t.app.audit().await;
    assert_eq!(blocked(&audit), 6);
    let last = audit.iter().find(|a| a.outcome == "blocked").unwrap();
    let told = format!("phone/auth: too many requests to one BankID in an hour (by {})", agent.name);
    assert_eq!(last.detail.as_deref(), Some(told.as_str()));
    assert_eq!(last.username.as_deref(), Some(second.name.as_str()));

    t.app.clock.advance_seconds(3601);
    t.app.client = new_client();
    t.app.login(&agent.name, &agent.password).await;
    assert!(started(&start(&t, &caller.name).await), "a new hour");
}
