//! Mobile BankID through the simulator: RP API v6.0 over real HTTPS with mutual TLS.

use stjarna::simulators::bankid::Fault;

use crate::helpers::{location, new_client, text_of};
use crate::sims::{ANNA, BERTIL, BLOCKED, Backend, decode_svg_qr, logged_in, spawn_with, spawn_with_bankid};

#[tokio::test]
async fn enrols_through_the_qr_code_and_stores_only_protected_data() {
    let dc = require_dc!();
    let (user, t) = logged_in(&dc, "bankid", |c| c).await;
    let id = t.start_enrol().await;

    let page = t.app.get_html(&format!("/bankid/{id}")).await;
    assert_eq!(text_of(&page, "bankid-message").unwrap(), "Starta BankID-appen.");
    assert!(page.contains("id=\"bankid-qr\""), "the QR code is shown");
    // Without JavaScript the page reloads every five seconds (no faster: a screen reader starts
    // over at each reload), offers to update now, and its QR code still turns every second.
    assert!(
        page.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "without JavaScript the page refreshes itself"
    );
    assert!(page.contains(&format!("id=\"bankid-refresh\" href=\"/bankid/{id}\">Uppdatera</a>")));
    assert!(page.contains(&format!("src=\"/bankid/{id}/qr-animated.svg?t=")), "{page}");
    let animated = t.app.get_html(&format!("/bankid/{id}/qr-animated.svg")).await;
    let frames: Vec<String> = animated.split("<svg visibility=").skip(1).map(crate::sims::decode_svg_qr).collect();
    assert_eq!(frames.len(), 5, "five seconds of frames");
    let times: Vec<u64> = frames.iter().map(|p| p.split('.').nth(2).unwrap().parse().unwrap()).collect();
    assert_eq!(times, (times[0]..times[0] + 5).collect::<Vec<_>>(), "one frame a second: {frames:?}");
    assert!(animated.contains("<set attributeName=\"visibility\" to=\"visible\" begin=\"4s\"/>"));
    let order_ref = t.sim.state.awaiting_scan()[0].order_ref.clone();
    let at_bankid = t.sim.state.order(&order_ref).unwrap();
    assert_eq!(at_bankid.end_user_ip, "127.0.0.1", "endUserIp is the user's address");
    let account = format!("EXAMPLE\\\\{}", user.name); // the backslash escaped for simpleMarkdownV1
    assert_eq!(
        at_bankid.visible_text,
        format!(
            "Stjärna: registrera BankID för lösenordsåterställning för {account}.\n\nGodkänn bara om du själv nyss \
             startade detta på 127.0.0.1. Har någon bett dig att legitimera dig, avbryt."
        )
    );
    assert_eq!(at_bankid.required, None);
    let secret = at_bankid.qr_start_secret;
    assert!(!page.contains(&secret), "the QR secret never reaches the browser");

    // Each second has its own frame; a frame only counts while it is current.
    let stale = t.scan_qr_frame(&id).await;
    t.app.clock.advance_seconds(2);
    let payload = t.scan_qr_frame(&id).await;
    assert_ne!(stale, payload);
    assert!(payload.starts_with("bankid.") && payload.contains(".2."), "{payload}");
    assert_eq!(t.app_scan(&stale, ANNA).await.unwrap_err(), "QR-koden är inte giltig längre. Läs av den nya koden.");
    let order = t.app_scan(&payload, ANNA).await.expect("the current frame is accepted");
    assert_eq!(order, order_ref);
    assert_eq!(
        t.poll_message(&id).await,
        "Skriv in din säkerhetskod i BankID-appen och välj Identifiera eller Skriv under."
    );
    t.app_press(&order, "approve").await;
    assert_eq!(t.poll_message(&id).await, "Du har nu registrerat ditt BankID för återställning av lösenord.");

    let home = t.app.get_html("/").await;
    let doc = scraper::Html::parse_document(&home);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("#star-row .star.filled")).count(), 3);
    assert!(home.contains("Anna Andersson (19811218-****)"), "the enrolled BankID is shown masked");

    let store = t.app.store().await;
    let rows: Vec<(String, String, String, String)> =
        store.fetch_all("SELECT user_id, pn_encrypted, pn_hash, pn_masked FROM bankid_enrolments").await;
    assert_eq!(rows.len(), 1);
    let (_, encrypted, hash, masked) = &rows[0];
    assert_eq!(masked, "19811218-****");
    for stored in [encrypted, hash] {
        assert!(!stored.contains(ANNA) && !stored.contains("8112189876"), "no clear personal number at rest");
    }
    let key = stjarna::identity::DataKey::from_base64(crate::sims::DATA_KEY).unwrap();
    assert_eq!(key.decrypt(encrypted).unwrap(), ANNA);
    let audit = t.app.audit().await;
    for event in ["bankid-order", "enrol"] {
        assert!(audit.iter().any(|a| a.event == event && a.outcome == "success"), "{event} audited");
    }
    assert!(audit.iter().all(|a| !a.detail.as_deref().unwrap_or("").contains("8112189876")), "never in the log");
}

#[tokio::test]
async fn enrols_by_starting_the_app_on_the_same_device() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "autostart", |c| c).await;
    let id = t.start_enrol().await;
    let res = t.app.get(&format!("/bankid/{id}/open")).await;
    assert_eq!(res.status(), 303);
    let launch = location(&res);
    assert!(launch.starts_with(&t.sim.app_url) && launch.contains("autostarttoken="), "{launch}");
    assert_eq!(t.poll_message(&id).await, "Försöker starta BankID-appen.");
    let order = t.app_autostart(&launch, BERTIL).await.expect("the app opens the order");
    t.app_press(&order, "approve").await;
    assert_eq!(t.poll_message(&id).await, "Du har nu registrerat ditt BankID för återställning av lösenord.");
    assert!(t.app.get_html("/").await.contains("Bertil Berg (19701063-****)"));
}

#[tokio::test]
async fn a_cancel_in_the_app_or_on_the_page_stores_nothing() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "cancel", |c| c).await;

    let id = t.start_enrol().await;
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    assert_eq!(t.app_press(&order, "cancel").await, "Avbruten (userCancel)");
    assert_eq!(t.poll_message(&id).await, "Åtgärden avbruten.");

    let id = t.start_enrol().await;
    let home = t.app.get_html(&format!("/bankid/{id}")).await;
    let res = t.app.post(&format!("/bankid/{id}/cancel"), &[("csrf", &crate::helpers::csrf_in(&home))]).await;
    assert_eq!(location(&res), "/");
    let order_ref =
        t.sim.state.order(&t.sim.state.awaiting_scan().first().map(|o| o.order_ref.clone()).unwrap_or_default());
    assert!(order_ref.is_none(), "the order was cancelled at BankID too");
    assert_eq!(t.poll_message(&id).await, "Åtgärden avbruten. Försök igen.");

    assert!(t.app.store().await.enrolments(&t.app.sessions().await[0].user_id).await.unwrap().is_empty());
    assert!(t.app.audit().await.iter().any(|a| a.event == "bankid-cancel"));
}

/// Leaving the page (its `pagehide`) cancels the order, but not when the page is back within
/// seconds: a reload, or Back and Forward, fire `pagehide` too.
#[tokio::test]
async fn a_left_page_cancels_its_order_unless_it_comes_back() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "left", |c| c).await;
    let id = t.start_enrol().await;
    let order_ref = t.sim.state.awaiting_scan()[0].order_ref.clone();
    let cancelled = || {
        t.sim.state.order(&order_ref).map(|o| o.status)
            == Some(stjarna::simulators::bankid::Status::Failed("cancelled".into()))
    };
    let leave = async || {
        let page = t.app.get_html(&format!("/bankid/{id}")).await;
        let csrf = crate::helpers::csrf_in(&page);
        let res = t.app.post(&format!("/bankid/{id}/cancel"), &[("csrf", &csrf), ("left", "1")]).await;
        assert_eq!(res.status(), 204, "the beacon gets no page");
    };
    // A reload: the page polls again.
    leave().await;
    assert_eq!(t.poll_message(&id).await, "Starta BankID-appen.");
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert!(!cancelled(), "a page that came back keeps its order");
    assert_eq!(t.poll_message(&id).await, "Starta BankID-appen.");
    // Gone for good.
    leave().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cancelled() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(cancelled(), "a page that did not come back has its order cancelled at BankID");
    // (Audited just after the cancel at BankID.)
    let audited = async || {
        let audit = t.app.audit().await;
        audit.iter().any(|a| a.event == "bankid-cancel" && a.detail.as_deref() == Some("enrol, the page was left"))
    };
    while !audited().await && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(audited().await, "audited as a left page");
    assert_eq!(t.poll_message(&id).await, "Åtgärden avbruten. Försök igen.");
}

/// A leave is the session's: after a logout the browser is someone else's (a new CSRF cookie),
/// and a beacon for the user's order leaves it alone, as a cancel from there would be refused.
#[tokio::test]
async fn a_left_beacon_after_logout_leaves_the_order_alone() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "leftout", |c| c).await;
    let id = t.start_enrol().await;
    let order_ref = t.sim.state.awaiting_scan()[0].order_ref.clone();
    let old = crate::helpers::csrf_in(&t.app.get_html(&format!("/bankid/{id}")).await);
    assert_eq!(t.post_from("/", "/logout").await.status(), 303);
    let csrf = crate::helpers::csrf_in(&t.app.get_html("/login").await);
    assert_ne!(csrf, old, "the CSRF cookie was renewed at logout");
    let res = t.app.post(&format!("/bankid/{id}/cancel"), &[("csrf", &csrf), ("left", "1")]).await;
    assert_eq!(res.status(), 204, "the same answer as for the session's own");
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let status = t.sim.state.order(&order_ref).map(|o| o.status);
    assert!(
        status != Some(stjarna::simulators::bankid::Status::Failed("cancelled".into())),
        "the order is not this browser's any more: {status:?}"
    );
}

#[tokio::test]
async fn unscanned_and_unfinished_orders_expire() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "expiry", |c| c).await;

    // Nobody scans within 30 s.
    let id = t.start_enrol().await;
    t.app.clock.advance_seconds(30);
    assert!(t.poll_message(&id).await.starts_with("Misslyckades att läsa av QR-koden."));

    // Scanned, but never approved within 3 minutes.
    let id = t.start_enrol().await;
    t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app.clock.advance_seconds(180);
    assert!(t.poll_message(&id).await.starts_with("BankID-appen svarar inte."));
    let html = t.app.get_html(&format!("/bankid/{id}")).await;
    assert!(!html.contains("http-equiv=\"refresh\""), "a finished flow stops refreshing");
}

#[tokio::test]
async fn a_second_order_for_the_same_person_is_refused_and_the_first_cancelled() {
    let dc = require_dc!();
    let user = dc.create_user("inprogress").await;
    dc.modify(&user.dn, "employeeNumber", ANNA).await;
    let t = spawn_with_bankid(&dc, |c| {
        c.replace("[bankid]\n", "[bankid]\npersonal_number_attribute = \"employeeNumber\"\n")
    })
    .await;
    t.app.login(&user.name, &user.password).await;
    let first = t.start_enrol().await;
    let res = t.post_from("/", "/enrol/bankid").await;
    assert!(location(&res).starts_with("/?note="), "no new flow");
    let html = t.app.follow(res).await;
    assert!(
        text_of(&html, "home-notice")
            .unwrap()
            .starts_with("En identifiering eller underskrift för det här personnumret är redan påbörjad. Försök igen.")
    );
    assert_eq!(t.poll_message(&first).await, "Åtgärden avbruten. Försök igen.");
}

#[tokio::test]
async fn a_blocked_bankid_gets_rfa16() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "certerr", |c| c).await;
    let id = t.start_enrol().await;
    let order = t.app_scan(&t.scan_qr_frame(&id).await, BLOCKED).await.unwrap();
    t.app_press(&order, "approve").await;
    assert!(t.poll_message(&id).await.starts_with("Det BankID du försöker använda är för gammalt eller spärrat."));
    assert!(
        t.app
            .audit()
            .await
            .iter()
            .any(|a| a.event == "bankid-result" && a.detail.as_deref() == Some("enrol: certificateErr"))
    );
}

#[tokio::test]
async fn maintenance_shows_rfa5_and_stores_nothing() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "maint", |c| c).await;
    t.sim.state.inject(Fault::Maintenance, 1);
    let res = t.post_from("/", "/enrol/bankid").await;
    let html = t.app.follow(res).await;
    let message = text_of(&html, "home-notice").unwrap();
    assert!(message.starts_with("Internt fel. Försök igen. Referens: "), "{message}");
    let store = t.app.store().await;
    let flows: (i64,) = store.fetch_one("SELECT COUNT(*) FROM bankid_flows").await;
    assert_eq!(flows.0, 0);
    assert!(t.app.audit().await.iter().any(|a| a.event == "bankid-order" && a.outcome == "failure"));
    // Passing trouble while collecting keeps the order and shows RFA5 until BankID answers again.
    let id = t.start_enrol().await;
    t.sim.state.inject(Fault::InternalError, 1);
    assert_eq!(t.poll_message(&id).await, "Internt fel. Försök igen.");
    assert_eq!(t.poll_message(&id).await, "Starta BankID-appen.");
}

#[tokio::test]
async fn slow_answers_and_rate_limits_show_rfa5() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "slow", |c| c.replace("[bankid]\n", "[bankid]\ntimeout_seconds = 1\n")).await;
    for fault in [Fault::Slow(std::time::Duration::from_millis(1500)), Fault::TooManyRequests] {
        t.sim.state.inject(fault, 1);
        let html = t.app.follow(t.post_from("/", "/enrol/bankid").await).await;
        assert!(text_of(&html, "home-notice").unwrap().starts_with("Internt fel. Försök igen."), "{fault:?}");
    }
    // A slow answer within the timeout is only slow.
    t.sim.state.inject(Fault::Slow(std::time::Duration::from_millis(300)), 1);
    assert!(location(&t.post_from("/", "/enrol/bankid").await).starts_with("/bankid/"));
}

#[tokio::test]
async fn phone_orders_for_the_service_desk_work_through_both_backends() {
    use stjarna::identity::bankid::{BankId, Collect, IdkollenClient, PhoneOrder, RpClient};
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::install_crypto();
    let sim = stjarna::simulators::bankid::BankIdSimulator::start(stjarna::simulators::bankid::Options::new(
        dir.path().to_path_buf(),
    ))
    .await
    .unwrap();
    let timeout = std::time::Duration::from_secs(5);
    let rp = RpClient::new(&sim.api_url, &sim.certs.ca_pem, &sim.certs.client_pem, None, None, timeout).unwrap();
    let broker = IdkollenClient::new(
        &sim.broker_url,
        &sim.broker.account_id,
        secrecy::SecretString::from(sim.broker.secret_key.clone()),
        Some(&sim.certs.ca_pem),
        timeout,
    )
    .unwrap();
    let clients: [(&str, &dyn BankId); 2] = [("rp", &rp), ("idkollen", &broker)];
    for (name, client) in clients {
        let order = PhoneOrder {
            personal_number: BERTIL.into(),
            call_initiator_rp: true,
            user_visible_data: "Servicedesken vill bekräfta att det är du".into(),
        };
        let order_ref = client.phone_auth(&order).await.unwrap();
        assert_eq!(
            client.collect(&order_ref).await.unwrap(),
            Collect::Pending("outstandingTransaction".into()),
            "{name}"
        );
        // A second phone order for the same person while one is open: alreadyInProgress.
        assert_eq!(
            client.phone_auth(&order).await.unwrap_err(),
            stjarna::identity::bankid::BankIdError::AlreadyInProgress,
            "{name}"
        );
        let order_ref = client.phone_auth(&order).await.unwrap();
        sim.state.answer_phone(&order_ref, BERTIL).unwrap();
        assert_eq!(client.collect(&order_ref).await.unwrap(), Collect::Pending("userCallConfirm".into()), "{name}");
        sim.state.approve(&order_ref).unwrap();
        match client.collect(&order_ref).await.unwrap() {
            Collect::Complete(user) => {
                assert_eq!((user.personal_number.as_str(), user.name.as_str()), (BERTIL, "Bertil Berg"))
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Mutual TLS is required: a client without a certificate is turned away.
    let plain = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&sim.certs.ca_pem).unwrap()).unwrap()])
        .build()
        .unwrap();
    assert!(
        plain.post(format!("{}collect", sim.api_url)).json(&serde_json::json!({"orderRef": "x"})).send().await.is_err()
    );
}

#[tokio::test]
async fn only_the_personal_number_held_in_ad_can_be_enrolled() {
    let dc = require_dc!();
    let user = dc.create_user("pnr").await;
    dc.modify(&user.dn, "employeeNumber", "19811218-9876").await;
    let t = spawn_with_bankid(&dc, |c| {
        c.replace("[bankid]\n", "[bankid]\npersonal_number_attribute = \"employeeNumber\"\n")
    })
    .await;
    t.app.login(&user.name, &user.password).await;
    let id = t.start_enrol().await;
    let sent = t.sim.state.awaiting_scan()[0].required.clone();
    assert_eq!(sent.as_deref(), Some(ANNA), "the AD number is sent as requirement.personalNumber, in 12 digits");
    // BankID itself refuses another person's BankID for the order...
    let err = t.app_scan(&t.scan_qr_frame(&id).await, BERTIL).await.unwrap_err();
    assert_eq!(err, "Det här BankID:t har inte det personnummer som begärs.");
    // ...and should a BankID service ever let it through, the portal refuses it itself.
    t.sim.state.set_enforce_requirement(false);
    let order = t.app_scan(&t.scan_qr_frame(&id).await, BERTIL).await.unwrap();
    t.app_press(&order, "approve").await;
    assert!(
        t.poll_message(&id).await.starts_with("Det BankID du använde har inte det personnummer som är registrerat")
    );
    assert!(t.app.store().await.bankid_enrolment(&t.app.sessions().await[0].user_id).await.unwrap().is_none());
    assert!(
        t.app.audit().await.iter().any(|a| a.outcome == "failure" && a.detail.as_deref() == Some("enrol: mismatch"))
    );
    // The right person succeeds.
    t.sim.state.set_enforce_requirement(true);
    t.enrol(ANNA).await;
}

#[tokio::test]
async fn an_account_without_a_personal_number_in_ad_cannot_enrol() {
    let dc = require_dc!();
    let user = dc.create_user("nopnr").await;
    let t = spawn_with_bankid(&dc, |c| {
        c.replace("[bankid]\n", "[bankid]\npersonal_number_attribute = \"employeeNumber\"\n")
    })
    .await;
    t.app.login(&user.name, &user.password).await;
    let res = t.post_from("/", "/enrol/bankid").await;
    let html = t.app.follow(res).await;
    assert!(text_of(&html, "home-notice").unwrap().starts_with("Ditt konto saknar ett giltigt personnummer"));
    assert!(t.app.audit().await.iter().any(|a| a.event == "enrol" && a.outcome == "failure"));
}

#[tokio::test]
async fn another_user_cannot_see_or_complete_someone_elses_order() {
    let dc = require_dc!();
    let anna = dc.create_user("owner").await;
    let mallory = dc.create_user("other").await;
    let mut t = spawn_with_bankid(&dc, |c| c).await;
    t.app.login(&anna.name, &anna.password).await;
    let id = t.start_enrol().await;
    // Anna's browser has drawn a frame, so the order's QR secrets are held in memory: still hers only.
    t.scan_qr_frame(&id).await;
    let anna_client = std::mem::replace(&mut t.app.client, new_client());
    t.app.login(&mallory.name, &mallory.password).await;
    for path in [
        format!("/bankid/{id}"),
        format!("/bankid/{id}/status"),
        format!("/bankid/{id}/qr.svg"),
        format!("/bankid/{id}/open"),
    ] {
        assert_eq!(t.app.get(&path).await.status(), 404, "{path}");
    }
    let csrf = crate::helpers::csrf_in(&t.app.get_html("/").await);
    assert_eq!(t.app.post(&format!("/bankid/{id}/cancel"), &[("csrf", &csrf)]).await.status(), 404);
    // Anna's order is untouched and still hers to finish.
    t.app.client = anna_client;
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    t.app_press(&order, "approve").await;
    assert_eq!(t.poll_message(&id).await, "Du har nu registrerat ditt BankID för återställning av lösenord.");
    // A finished order draws no more frames.
    assert_eq!(t.app.get(&format!("/bankid/{id}/qr.svg")).await.status(), 404);
}

#[tokio::test]
async fn enrols_through_the_idkollen_broker() {
    let dc = require_dc!();
    let user = dc.create_user("broker").await;
    let t = spawn_with(&dc, Backend::Idkollen, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let id = t.start_enrol().await;
    let order = t.app_scan(&t.scan_qr_frame(&id).await, ANNA).await.unwrap();
    assert_eq!(
        t.poll_message(&id).await,
        "Skriv in din säkerhetskod i BankID-appen och välj Identifiera eller Skriv under."
    );
    t.app_press(&order, "approve").await;
    assert_eq!(t.poll_message(&id).await, "Du har nu registrerat ditt BankID för återställning av lösenord.");
    // The broker allows one status call a second per order; the client kept to it.
    let calls = t.sim.state.broker_status_calls();
    assert!(calls.len() >= 2);
}

#[test]
fn a_rendered_frame_decodes_to_the_reference_payload() {
    let payload = stjarna::identity::bankid::qr_payload(
        "67df3917-fa0d-44e5-b327-edcc928297f8",
        "d28db9a7-4cde-429e-a983-359be676944c",
        1,
    );
    let svg = stjarna::identity::bankid::qr_svg(&payload);
    assert_eq!(
        decode_svg_qr(&svg),
        "bankid.67df3917-fa0d-44e5-b327-edcc928297f8.1.949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2"
    );
}
