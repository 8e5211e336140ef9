//! The status page: each DC (reachable, in use), the policies as read, history on resets, BankID,
//! SMS and mail reachable, the outbox, the version; for administrators only.

use crate::helpers::text_of;
use crate::sims::{Gateway, spawn_with_sms};

#[tokio::test]
async fn administrators_see_each_part_of_the_portal_as_it_is_now() {
    let dc = require_dc!();
    let admin = dc.create_user("statusadm").await;
    dc.add_member(&format!("CN=IT-admins,CN=Users,{}", dc.base), &admin.dn).await;
    let user = dc.create_user("statususer").await;
    // After the real DC: one that refuses connections, one whose certificate is not from the
    // DCs' CA (the BankID simulator's TLS port), and one that takes the connection and never
    // answers (a listener nobody accepts on).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("ldaps://127.0.0.1:{}", silent.local_addr().unwrap().port());
    // And the real DC through a relay on another address: a certificate for another name.
    let dc_address = format!("{}:636", dc.url.trim_start_matches("ldaps://"));
    let renamed_url = format!("ldaps://127.0.0.1:{}", relay(dc_address));
    let mut untrusted_url = String::new();
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        let at = c.find("https://127.0.0.1:").expect("the BankID simulator's address") + "https://127.0.0.1:".len();
        let port: String = c[at..].chars().take_while(char::is_ascii_digit).collect();
        untrusted_url = format!("ldaps://127.0.0.1:{port}");
        let urls = format!(
            "urls = [\"{}\", \"ldaps://127.0.0.1:1\", \"{untrusted_url}\", \"{silent_url}\", \"{renamed_url}\"]",
            dc.url
        );
        c.replace(&format!("url = \"{}\"", dc.url), &urls)
    })
    .await;

    t.app.login(&user.name, &user.password).await;
    assert_eq!(t.app.get("/admin/status").await.status(), 403, "not for a user without a role");
    t.app.client = crate::helpers::new_client();
    t.app.login(&admin.name, &admin.password).await;
    let page = t.app.get_html("/admin/status").await;
    assert!(page.contains("id=\"nav-status\""), "the admin menu leads here");

    let dcs = text_of(&page, "status-dcs").unwrap();
    assert!(dcs.contains(&format!("{} Används nu Svarar", dc.url)), "{dcs}");
    // Why, in the page's language; what the library said is only in the log.
    assert!(
        dcs.contains(
            "ldaps://127.0.0.1:1 I reserv Svarar inte: det gick inte att ansluta (mer i loggen under referens "
        ),
        "{dcs}"
    );
    let why = |url: &str| dcs.split(url).nth(1).map(|rest| rest.split(" ldaps://").next().unwrap_or(rest).to_string());
    let untrusted = why(&untrusted_url).unwrap_or_default();
    assert!(untrusted.contains("Svarar inte: dess certifikat är inte betrott"), "{untrusted}");
    let silent_why = why(&silent_url).unwrap_or_default();
    assert!(silent_why.contains("Svarar inte: inget svar i tid"), "{silent_why}");
    let renamed = why(&renamed_url).unwrap_or_default();
    assert!(renamed.contains("Svarar inte: dess certifikat gäller ett annat namn än det i adressen"), "{renamed}");
    assert!(!dcs.contains("refused") && !dcs.contains("reached"), "no error text of the library: {dcs}");
    let policies = text_of(&page, "status-policies").unwrap();
    // As scripts/lib.sh provisions the domain: length 8, complexity, history 5, max age 42 days,
    // lockout after 5 over 30 minutes for 30 minutes.
    assert!(policies.contains("Domänens policy 8 Ja 5 0 42 5 30 30"), "{policies}");
    assert!(text_of(&page, "status-history").is_some());
    let backends = text_of(&page, "status-backends").unwrap();
    assert!(backends.contains("BankID Svarar"), "{backends}");
    assert!(backends.contains("SMS-gateway Svarar"), "{backends}");
    assert!(backends.contains("E-postserver Svarar"), "{backends}");
    assert!(text_of(&page, "status-outbox").unwrap().starts_with("E-post som väntar på att skickas:"));
    assert!(text_of(&page, "status-version").unwrap().contains(env!("CARGO_PKG_VERSION")));
    let posts = page.matches("method=\"post\"").count();
    let header = t.app.get_html("/admin/users").await.matches("method=\"post\"").count();
    assert_eq!(posts, header, "read-only: nothing to post but the header's own forms");
}

/// A TCP relay from a port on 127.0.0.1 to `to` (for as long as the test runs); its port.
fn relay(to: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            let Ok(outbound) = std::net::TcpStream::connect(&to) else { continue };
            let (mut from_client, mut to_dc) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut from_client, &mut to_dc));
            let (mut from_dc, mut to_client) = (outbound, inbound);
            std::thread::spawn(move || std::io::copy(&mut from_dc, &mut to_client));
        }
    });
    port
}
