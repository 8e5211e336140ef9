//! End to end in headless Chromium: log in and see the star row.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::helpers::{in_ci, spawn_app};

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn browser() -> Option<(fantoccini::Client, Driver, tempfile::TempDir)> {
    let driver_path = std::env::var("STJARNA_TEST_CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into());
    let chromium = std::env::var("STJARNA_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    if !std::path::Path::new(&driver_path).exists() {
        assert!(!in_ci(), "CI=true but chromedriver is missing at {driver_path}");
        eprintln!("skipped: no chromedriver at {driver_path}");
        return None;
    }
    let port = free_port();
    let driver = Driver(
        Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--lang=sv-SE", "--window-size=1200,900",
                     format!("--user-data-dir={}", profile.path().display())],
            "prefs": { "intl.accept_languages": "sv-SE,sv" }
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&url).await {
            Ok(client) => return Some((client, driver, profile)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not accept a session");
}

/// Logs in through the form, as a person would.
pub async fn log_in(c: &fantoccini::Client, url: &str, name: &str, password: &str) {
    c.goto(url).await.unwrap();
    c.find(Locator::Id("username")).await.unwrap().send_keys(name).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();
}

#[tokio::test]
async fn a_user_enrols_bankid_in_a_real_browser_with_the_simulated_app() {
    let dc = require_dc!();
    let user = dc.create_user("e2ebankid").await;
    let t = crate::sims::spawn_with_bankid(&dc, |c| c).await;
    let _ticker = real_time(&t.app.clock);
    let Some((c, _driver, _profile)) = browser().await else {
        return;
    };
    log_in(&c, &t.app.url("/login"), &user.name, &user.password).await;
    c.wait().for_element(Locator::Id("enrol-bankid")).await.unwrap().click().await.unwrap();
    let qr = c.wait().for_element(Locator::Id("bankid-qr")).await.unwrap();
    // With JavaScript the frames come one a second (the animated image is for pages without it).
    let mut src = String::new();
    for _ in 0..50 {
        src = qr.attr("src").await.unwrap().unwrap_or_default();
        if src.contains("/qr.svg") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(src.contains("/qr.svg"), "{src}");
    // On a wide screen the QR code (for the phone) comes first; on a phone, BankID on this device.
    let tops = "return [document.getElementById('bankid-qr').getBoundingClientRect().top, \
                document.getElementById('bankid-open').getBoundingClientRect().top]";
    let order = async || {
        let v = c.execute(tops, vec![]).await.unwrap();
        let v: Vec<f64> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        v[0] < v[1]
    };
    assert!(order().await, "wide: the QR code first");
    c.set_window_size(390, 844).await.unwrap();
    assert!(!order().await, "phone: open BankID on this device first");
    c.set_window_size(1200, 900).await.unwrap();
    screenshot(&c, "bankid-qr").await;

    // "Open BankID on this device": the simulated app opens in a new tab, and back in the portal
    // the page has followed the order by itself (JavaScript polling).
    approve_in_app(&c, crate::sims::ANNA).await;
    let done = c.find(Locator::Css("#bankid-message[data-state='complete']")).await.unwrap();
    assert_eq!(done.text().await.unwrap(), "Du har nu registrerat ditt BankID för återställning av lösenord.");
    c.find(Locator::Id("bankid-next")).await.unwrap().click().await.unwrap();
    let row = c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    assert_eq!(row.find_all(Locator::Css(".star.filled")).await.unwrap().len(), 3);
    screenshot(&c, "enrolled-bankid").await;

    // Leaving a page with an order running cancels the order.
    c.find(Locator::Id("verify-bankid")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("bankid-qr")).await.unwrap();
    let order_ref = t.sim.state.awaiting_scan()[0].order_ref.clone();
    c.goto(&t.app.url("/")).await.unwrap();
    // (After a few seconds: a page that comes back at once was only reloaded.)
    let mut cancelled = false;
    for _ in 0..120 {
        let status = t.sim.state.order(&order_ref).map(|o| o.status);
        if status == Some(stjarna::simulators::bankid::Status::Failed("cancelled".into())) {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cancelled, "the abandoned order was cancelled at BankID");
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_user_enrols_a_mobile_code_in_a_real_browser() {
    let dc = require_dc!();
    let user = dc.create_user("e2esms").await;
    let t = crate::sims::spawn_with_sms(&dc, crate::sims::Gateway::Elks46, |c| c).await;
    let Some((c, _driver, _profile)) = browser().await else { return };
    log_in(&c, &t.app.url("/login"), &user.name, &user.password).await;
    c.wait().for_element(Locator::Id("enrol-sms")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("number")).await.unwrap().send_keys("070-123 45 67").await.unwrap();
    // A second submission while the first is on its way is not sent (a double click would text
    // two codes, and the first to arrive would then be the wrong one).
    let script = "var f = document.getElementById('send-code').form; var sent = [];
        for (var i = 0; i < 2; i++) { var e = new Event('submit', { bubbles: true, cancelable: true });
          f.dispatchEvent(e); sent.push(!e.defaultPrevented); }
        f.removeAttribute('data-sent'); return sent;";
    let sent = c.execute(script, vec![]).await.unwrap();
    assert_eq!(sent, serde_json::json!([true, false]), "the first submission goes, the second does not");
    c.find(Locator::Id("send-code")).await.unwrap().click().await.unwrap();
    let sent = c.wait().for_element(Locator::Id("sms-sent")).await.unwrap().text().await.unwrap();
    assert!(sent.contains("+46 70 *** ** 67"), "{sent}");
    // The wait for another code counts down (and is said once).
    let seconds = |text: String| text.chars().filter(char::is_ascii_digit).collect::<String>().parse::<u32>().unwrap();
    let wait = c.find(Locator::Id("resend-wait")).await.unwrap();
    let first = seconds(wait.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let later = seconds(wait.text().await.unwrap());
    assert!(later < first && later + 4 >= first, "{first} s, then {later} s");
    assert_eq!(c.find_all(Locator::Css("#resend-wait, #sms-error")).await.unwrap().len(), 1);
    // Read the code off the simulated phone, as the user reads it off theirs.
    let phone = reqwest::get(format!("{}/phone?to=%2B46701234567", t.sms.as_ref().unwrap().url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = t.sms.as_ref().unwrap().state.last_code_to("+46701234567").unwrap();
    assert!(phone.contains(&code), "the simulated phone shows the message");
    c.find(Locator::Id("code")).await.unwrap().send_keys(&code).await.unwrap();
    c.find(Locator::Id("confirm-code")).await.unwrap().click().await.unwrap();
    let done = c.wait().for_element(Locator::Id("sms-done")).await.unwrap().text().await.unwrap();
    assert_eq!(done, "Du har nu registrerat ditt mobiltelefonnummer för återställning av lösenord!");
    c.find(Locator::Id("sms-continue")).await.unwrap().click().await.unwrap();
    let row = c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    assert_eq!(row.find_all(Locator::Css(".star.filled")).await.unwrap().len(), 2);
    screenshot(&c, "enrolled-sms").await;
    c.close().await.unwrap();
}

/// Saves the page as `docs/screenshots/{name}.png` when the test run asks for screenshots
/// (`STJARNA_TEST_SCREENSHOTS`: the README shows them, so they stay current).
pub async fn screenshot(c: &fantoccini::Client, name: &str) {
    if let Ok(dir) = std::env::var("STJARNA_TEST_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), c.screenshot().await.unwrap()).unwrap();
    }
}

/// Clicks a button that submits a form, and waits until the next page has replaced this one (an
/// element found before the new page arrives would go stale under the test).
pub async fn submit(c: &fantoccini::Client, id: &str) {
    submit_css(c, &format!("#{id}")).await
}

/// As `submit`, for the button that `css` selects.
pub async fn submit_css(c: &fantoccini::Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("clicking {css} led to no new page");
}

/// The browser lives in real time: the app's test clock follows it, a second a second, until the
/// returned guard is dropped.
pub fn real_time(clock: &stjarna::clock::ManualClock) -> Ticker {
    let clock = clock.clone();
    Ticker(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            clock.advance_seconds(1);
        }
    }))
}

pub struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// "Open BankID on this device" on a waiting BankID page: the simulated app opens in a new tab,
/// where `identity` approves; back in the portal the page follows the order to its end (a BankID
/// page that says so, or, identifying for a reset, the reset itself).
pub async fn approve_in_app(c: &fantoccini::Client, identity: &str) {
    c.wait().for_element(Locator::Id("bankid-open")).await.unwrap().click().await.unwrap();
    let portal = switch_to_new_tab(c).await;
    c.wait().for_element(Locator::Id("identity")).await.unwrap().select_by_value(identity).await.unwrap();
    c.find(Locator::Id("open")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("approve")).await.unwrap().click().await.unwrap();
    // The app page refreshes itself while it waits: read the status again if it was replaced.
    let mut status = String::new();
    for _ in 0..50 {
        if let Ok(text) = c.wait().for_element(Locator::Id("order-status")).await.unwrap().text().await {
            status = text;
        }
        if status.starts_with("Klart!") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status.starts_with("Klart!"), "the app approved: {status}");
    c.close_window().await.unwrap();
    c.switch_to_window(portal).await.unwrap();
    for _ in 0..200 {
        if !c.current_url().await.unwrap().path().starts_with("/bankid/")
            || c.find(Locator::Css("#bankid-message[data-state='complete']")).await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    panic!("BankID did not complete at {}: {body}", c.current_url().await.unwrap());
}

/// Waits for a new tab, switches to it, and returns the tab it came from.
async fn switch_to_new_tab(c: &fantoccini::Client) -> fantoccini::wd::WindowHandle {
    let from = c.window().await.unwrap();
    for _ in 0..50 {
        if let Some(w) = c.windows().await.unwrap().into_iter().find(|w| *w != from) {
            c.switch_to_window(w).await.unwrap();
            return from;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no new tab opened");
}

#[tokio::test]
async fn a_user_resets_the_password_in_a_real_browser_with_sms_and_bankid() {
    let dc = require_dc!();
    let (user, t) = crate::reset::enrolled(&dc, "e2ereset", |c| c).await;
    let _ticker = real_time(&t.app.clock);
    let Some((c, _driver, _profile)) = browser().await else { return };
    c.goto(&t.app.url("/login")).await.unwrap();
    c.find(Locator::Id("forgot")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("username")).await.unwrap().send_keys(&user.name).await.unwrap();
    c.find(Locator::Id("reset-start")).await.unwrap().click().await.unwrap();

    // The mobile code first.
    let seen = t.texts_count("+46701234567");
    c.wait().for_element(Locator::Id("use-sms")).await.unwrap().click().await.unwrap();
    let code_field = c.wait().for_element(Locator::Id("code")).await.unwrap();
    let code = t.next_code_to("+46701234567", seen).await;
    code_field.send_keys(&code).await.unwrap();
    submit(&c, "confirm-code").await;
    screenshot(&c, "reset-stars").await;

    // Then BankID on this device, in the simulated app.
    c.wait().for_element(Locator::Id("use-bankid")).await.unwrap().click().await.unwrap();
    approve_in_app(&c, crate::sims::ANNA).await;
    assert!(c.find(Locator::Css("#bankid-message[data-state='complete']")).await.is_ok(), "BankID confirmed");
    c.find(Locator::Id("bankid-next")).await.unwrap().click().await.unwrap();

    // The star row is full: choose a new password, with the rules checked as it is typed.
    c.wait().for_element(Locator::Id("choose-password")).await.unwrap().click().await.unwrap();
    // A common password is refused by the server, and with JavaScript on the page still shows
    // which rule it broke.
    c.wait().for_element(Locator::Id("password")).await.unwrap().send_keys("Sommar2026!").await.unwrap();
    c.find(Locator::Id("repeat")).await.unwrap().send_keys("Sommar2026!").await.unwrap();
    c.find(Locator::Id("set-password")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("password-error")).await.unwrap();
    let common = c.find(Locator::Css("li[data-rule='not_common']")).await.unwrap();
    assert_eq!(common.attr("class").await.unwrap().as_deref(), Some("bad"), "the refused rule stays marked");
    let password = c.wait().for_element(Locator::Id("password")).await.unwrap();
    password.send_keys("bara-gemener-hela-vagen").await.unwrap();
    let classes = c.find(Locator::Css("li[data-rule='classes']")).await.unwrap();
    assert_eq!(classes.attr("class").await.unwrap().as_deref(), Some("bad"), "the live check marks the broken rule");
    password.clear().await.unwrap();
    password.send_keys("Tre-glada-kor-på-bete7").await.unwrap();
    c.find(Locator::Id("repeat")).await.unwrap().send_keys("Tre-glada-kor-på-bete7").await.unwrap();
    for rule in ["min_length", "classes", "no_personal_info", "matches"] {
        let item = c.find(Locator::Css(&format!("li[data-rule='{rule}']"))).await.unwrap();
        assert_eq!(item.attr("class").await.unwrap().as_deref(), Some("ok"), "{rule}");
    }
    screenshot(&c, "reset-password").await;
    c.find(Locator::Id("set-password")).await.unwrap().click().await.unwrap();
    let done = c.wait().for_element(Locator::Id("reset-message")).await.unwrap().text().await.unwrap();
    assert_eq!(done, "Ditt lösenord är bytt och ditt konto är upplåst. Du kan logga in med det nya lösenordet.");
    assert_eq!(dc.bind(&user.dn, "Tre-glada-kor-på-bete7").await.0, 0);
    c.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_opens_the_dashboard_and_a_user_page_in_a_real_browser() {
    let dc = require_dc!();
    let admin = dc.create_user("e2eadm").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let someone = dc.create_user("e2esomeone").await;
    let app = spawn_app(&dc).await;
    let Some((c, _driver, _profile)) = browser().await else { return };
    log_in(&c, &app.url("/login"), &admin.name, &admin.password).await;
    c.wait().for_element(Locator::Id("nav-admin")).await.unwrap().click().await.unwrap();
    let users = c.wait().for_element(Locator::Id("count-users")).await.unwrap().text().await.unwrap();
    screenshot(&c, "admin-dashboard").await;
    assert!(users.parse::<usize>().unwrap() >= 2, "{users}");
    assert!(c.find(Locator::Css("#chart svg")).await.is_ok(), "the chart is drawn");
    c.find(Locator::Id("nav-users")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("q")).await.unwrap().send_keys(&someone.name).await.unwrap();
    c.find(Locator::Css("form.search button")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("#user-results a")).await.unwrap().click().await.unwrap();
    let name = c.wait().for_element(Locator::Id("user-name")).await.unwrap().text().await.unwrap();
    assert_eq!(name, someone.display_name);
    let status = c.find(Locator::Id("user-status")).await.unwrap().text().await.unwrap();
    assert!(status.starts_with("Inte registrerad"), "{status}");
    screenshot(&c, "admin-user").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_user_logs_in_in_a_real_browser_and_sees_the_star_row() {
    let dc = require_dc!();
    let user = dc.create_user("browser").await;
    let app = spawn_app(&dc).await;
    let Some((c, _driver, _profile)) = browser().await else {
        return;
    };

    c.goto(&app.url("/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    c.find(Locator::Id("username")).await.unwrap().send_keys(&user.name).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(&user.password).await.unwrap();
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();

    let row = c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    let stars = row.find_all(Locator::Css(".star")).await.unwrap();
    assert_eq!(stars.len(), 5);
    let label = row.attr("aria-label").await.unwrap().unwrap();
    assert_eq!(label, "0 av 5 stjärnor");
    let body = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(body.contains(&user.display_name) && body.contains("Mobilt BankID") && body.contains("Mobilkod"), "{body}");
    // The card keeps its distance from the header (the wrapper's padding once overrode main's).
    let padding =
        c.execute("return getComputedStyle(document.querySelector('main')).paddingTop", vec![]).await.unwrap();
    assert_eq!(padding.as_str(), Some("32px"));
    // The session cookie reached the browser despite being Secure on http://127.0.0.1.
    screenshot(&c, "enrolment").await;
    c.close().await.unwrap();
}
