//! What operations get: the audit trail forwarded as each event is written, to a syslog collector
//! (RFC 5424, over UDP and over TCP with octet-counted frames) and to a JSON-lines file; and
//! metrics for Prometheus on a listener of their own.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::helpers::spawn_app_with;

fn forwarding(syslog: &str, file: &std::path::Path) -> impl FnOnce(String) -> String + use<> {
    let (syslog, file) = (syslog.to_string(), file.to_path_buf());
    move |c: String| {
        format!("{c}\n[audit]\nsyslog = \"{syslog}\"\njson_file = \"{}\"\nhostname = \"portal-a\"\n", file.display())
    }
}

/// An RFC 5424 message as the collector sees it: priority, version, and the fields that matter.
fn check_rfc5424(message: &str, user: &str) {
    // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG; authpriv (10) · 8 + notice (5) = 85.
    assert!(message.starts_with("<85>1 "), "{message}");
    let fields: Vec<&str> = message.splitn(8, ' ').collect();
    assert!(fields[1].ends_with('Z') && fields[1].contains('T'), "an RFC 3339 time: {message}");
    assert_eq!((fields[2], fields[3], fields[5]), ("portal-a", "stjarna", "login"), "{message}");
    assert_eq!(fields[6], "[audit@32473", "{message}");
    assert!(fields[7].starts_with("event=\"login\" outcome=\"success\""), "{message}");
    assert!(message.contains(&format!("user=\"{user}\"")), "{message}");
    assert!(!message.contains("Correct-"), "no password ever: {message}");
}

#[tokio::test]
async fn audit_events_reach_a_syslog_collector_over_udp_and_a_json_lines_file() {
    let dc = require_dc!();
    let collector = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let url = format!("udp://{}", collector.local_addr().unwrap());
    let mut app = spawn_app_with(&dc, forwarding(&url, &file)).await;
    let user = dc.create_user("syslogudp").await;
    app.login(&user.name, &user.password).await;

    let mut buf = vec![0u8; 8192];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(5), collector.recv_from(&mut buf)).await.expect("a datagram").unwrap();
    check_rfc5424(std::str::from_utf8(&buf[..n]).unwrap(), &user.name);

    let lines = std::fs::read_to_string(&file).unwrap();
    let events: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let login = events.iter().find(|e| e["event"] == "login").expect("the login in the file");
    assert_eq!(login["outcome"], "success");
    assert_eq!(login["username"], user.name.as_str());
    assert!(login["at"].as_str().unwrap().ends_with('Z'));
    assert!(login["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(login["actor"], serde_json::Value::Null, "the user did it themselves");

    // What a member of staff does about someone else names them in a field of its own.
    let admin = crate::admin::admin_user(&dc).await;
    app.client = crate::helpers::new_client();
    app.login(&admin.name, &admin.password).await;
    app.get_html(&format!("/admin/users?q={}", user.name)).await;
    let lines = std::fs::read_to_string(&file).unwrap();
    let events: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let search = events.iter().find(|e| e["event"] == "admin-view").expect("the search in the file");
    assert_eq!(search["actor"], admin.name.as_str());
    assert!(search["detail"].as_str().unwrap().ends_with(&format!("1 shown (by {})", admin.name)), "{search}");
}

#[tokio::test]
async fn audit_events_reach_a_syslog_collector_over_tcp_in_octet_counted_frames() {
    let dc = require_dc!();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("tcp://{}", collector.local_addr().unwrap());
    let app = spawn_app_with(&dc, forwarding(&url, &dir.path().join("a.jsonl"))).await;
    let user = dc.create_user("syslogtcp").await;
    app.login(&user.name, &user.password).await;

    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), collector.accept()).await.unwrap().unwrap();
    let mut received = Vec::new();
    // Frames are "LENGTH SP MESSAGE" (RFC 6587), one after the other on the connection.
    let message = loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "the portal closed the connection");
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((len, rest)) = text.split_once(' ') {
            let len: usize = len.parse().expect("a frame starts with its length");
            if rest.len() >= len {
                break rest[..len].to_string();
            }
        }
    };
    check_rfc5424(&message, &user.name);
}

/// The value of the series `name{labels}` in a Prometheus text page (0 when absent).
fn series(page: &str, name_and_labels: &str) -> f64 {
    page.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_are_scraped_on_their_own_listener_and_move_with_what_happens() {
    let dc = require_dc!();
    let app = spawn_app_with(&dc, |c| format!("{c}\n[metrics]\nlisten = \"127.0.0.1:0\"\n")).await;
    let url = app.metrics.clone().expect("a metrics listener");
    let scrape = || async { reqwest::get(&url).await.unwrap().text().await.unwrap() };
    let user = dc.create_user("metrics").await;
    let login_ok = r#"stjarna_events_total{event="login",outcome="success"}"#;
    let login_bad = r#"stjarna_events_total{event="login",outcome="failure"}"#;
    let page = scrape().await;
    let (ok0, bad0) = (series(&page, login_ok), series(&page, login_bad));

    app.login(&user.name, "Wrong-pw-1!").await;
    app.login(&user.name, &user.password).await;
    let page = scrape().await;
    assert!(series(&page, login_ok) >= ok0 + 1.0, "a successful login is counted:\n{page}");
    assert!(series(&page, login_bad) >= bad0 + 1.0, "a failed one too");
    let posts = r#"stjarna_http_requests_total{route="/login",status="303"}"#;
    assert!(series(&page, posts) >= 1.0, "requests by route pattern and status:\n{page}");
    assert!(page.contains("stjarna_http_request_duration_seconds_bucket{route=\"/login\""), "latency buckets");
    assert!(!page.contains(&user.name), "no user is named in metrics");
    assert!(page.contains("stjarna_outbox_queued "), "the outbox backlog, read at the scrape:\n{page}");
    assert!(page.contains("stjarna_outbox_oldest_seconds "), "and its oldest mail's age");

    // Never on the public port.
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
}

#[tokio::test]
async fn metrics_count_texts_and_their_cost_bankid_orders_limits_and_the_directory() {
    let dc = require_dc!();
    let with_metrics = |c: String| {
        let c = c.replace("\n[sms]\n", "\n[sms]\ncost_per_text = 0.5\n");
        format!("{c}\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
    };
    let t = crate::sims::spawn_with_sms(&dc, crate::sims::Gateway::Elks46, with_metrics).await;
    let url = t.app.metrics.clone().expect("a metrics listener");
    let scrape = || async { reqwest::get(&url).await.unwrap().text().await.unwrap() };
    let sent = r#"stjarna_sms_sent_total{gateway="46elks"}"#;
    let cost = r#"stjarna_sms_cost_hundredths_total{gateway="46elks"}"#;
    let started = r#"stjarna_bankid_orders_total{outcome="started"}"#;
    let cancelled = r#"stjarna_bankid_orders_total{outcome="cancelled"}"#;
    let blocked = r#"stjarna_rate_limit_blocks_total{scope="login-user"}"#;
    // The recorder is the process's, shared with tests running beside this one: counts only grow.
    let before = scrape().await;
    let other = dc.create_user("metricblock").await;
    for _ in 0..4 {
        t.app.login(&other.name, "Wrong-pw-1!").await;
    }
    let user = dc.create_user("metricsms").await;
    t.app.login(&user.name, &user.password).await;

    let csrf = crate::helpers::csrf_in(&t.app.get_html("/enrol/sms").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0701234599")]).await;
    assert_eq!(res.status(), 303, "the code is sent");
    let id = t.start_enrol().await;
    let home = t.app.get_html(&format!("/bankid/{id}")).await;
    t.app.post(&format!("/bankid/{id}/cancel"), &[("csrf", &crate::helpers::csrf_in(&home))]).await;

    let page = scrape().await;
    assert!(series(&page, sent) >= series(&before, sent) + 1.0, "a text sent, by gateway:\n{page}");
    assert!(series(&page, cost) >= series(&before, cost) + 50.0, "and what it cost, in hundredths");
    assert!(series(&page, started) >= series(&before, started) + 1.0, "a BankID order started");
    assert!(series(&page, cancelled) >= series(&before, cancelled) + 1.0, "and cancelled");
    assert!(series(&page, blocked) >= series(&before, blocked) + 1.0, "a login a limit refused");
    let open = format!(r#"stjarna_directory_connections{{dc="{}",pool="service",state="open"}}"#, dc.url);
    assert!(series(&page, &open) >= 1.0, "the directory's pools, per DC:\n{page}");

    // A domain controller that refuses connections is counted as such.
    let down = spawn_app_with(&dc, |c| {
        format!(
            "{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            c.replace(&format!("\"{}\"", dc.url), "\"ldaps://127.0.0.1:1\"")
        )
    })
    .await;
    let page = reqwest::get(down.metrics.clone().unwrap()).await.unwrap().text().await.unwrap();
    let refused = r#"stjarna_directory_errors_total{dc="ldaps://127.0.0.1:1",error="unreachable"}"#;
    assert!(series(&page, refused) >= 1.0, "the start-up check's failure is counted:\n{page}");
}
