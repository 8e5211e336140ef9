//! End to end in headless Chromium: log in and see the star row.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::helpers::{in_ci, spawn_app};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> Option<(fantoccini::Client, Driver, tempfile::TempDir)> {
    let driver_path =
        std::env::var("STJARNA_TEST_CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into());
    let chromium = std::env::var("STJARNA_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    if !std::path::Path::new(&driver_path).exists() {
        assert!(
            !in_ci(),
            "CI=true but chromedriver is missing at {driver_path}"
        );
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
                     "--disable-sync", "--lang=sv-SE", format!("--user-data-dir={}", profile.path().display())],
            "prefs": { "intl.accept_languages": "sv-SE,sv" }
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return Some((client, driver, profile)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not accept a session");
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
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&user.name)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(&user.password)
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let row = c.wait().for_element(Locator::Id("star-row")).await.unwrap();
    let stars = row.find_all(Locator::Css(".star")).await.unwrap();
    assert_eq!(stars.len(), 5);
    let label = row.attr("aria-label").await.unwrap().unwrap();
    assert_eq!(label, "0 av 5 stjärnor");
    let body = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(&user.display_name)
            && body.contains("Mobilt BankID")
            && body.contains("Mobilkod"),
        "{body}"
    );
    // The session cookie reached the browser despite being Secure on http://127.0.0.1.
    let screenshot = c.screenshot().await.unwrap();
    if let Ok(dir) = std::env::var("STJARNA_TEST_SCREENSHOTS") {
        std::fs::write(format!("{dir}/enrolment.png"), screenshot).unwrap();
    }
    c.close().await.unwrap();
}
