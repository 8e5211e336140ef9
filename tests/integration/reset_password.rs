//! The new password a reset sets, against Samba AD: our rules and AD's, the breach check through
//! a k-anonymity range query, and "must change at the next logon".

use std::time::Duration;

use crate::helpers::{location, text_of};
use crate::reset::{NEW_PASSWORD, enrolled};
use crate::sims::ANNA;

#[tokio::test]
async fn weak_passwords_are_refused_by_us_and_by_ad() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "weak", |c| c + "\n[password]\nprecheck = false\nmin_length = 1\n").await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let html = t.set_new_password(&flow, "bara-gemener").await;
    assert_eq!(
        text_of(&html, "password-error").unwrap(),
        "Katalogen (Active Directory) godtog inte lösenordet: det är inte tillräckligt komplext. Blanda stora och små bokstäver, siffror och tecken, och undvik ditt namn."
    );
    let html = t.set_new_password(&flow, "Ab1!").await;
    assert_eq!(
        text_of(&html, "password-error").unwrap(),
        "Katalogen (Active Directory) godtog inte lösenordet: det är för kort."
    );
    assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "nothing changed");
    assert!(
        t.app
            .audit()
            .await
            .iter()
            .any(|a| a.event == "password-reset" && a.detail.as_deref().unwrap_or("").starts_with("refused by AD: "))
    );
    // The flow is still open for a better password.
    assert!(t.set_new_password(&flow, NEW_PASSWORD).await.contains("Ditt lösenord är bytt"));
}

#[tokio::test]
async fn a_breached_password_is_refused_through_a_k_anonymity_range_query() {
    let dc = require_dc!();
    let pwned = stjarna::simulators::pwned::PwnedSimulator::start("127.0.0.1:0").await.unwrap();
    let url = pwned.url.clone();
    let (user, t) = enrolled(&dc, "pwned", |c| c + &format!("\n[password]\npwned_range_url = \"{url}\"\n")).await;
    let leaked = "Unik-Men-Läckt-2026x";
    pwned.state.add(leaked);
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let rules = t.app.get_html(&format!("{flow}/password")).await;
    assert!(rules.contains("Inte med i kända dataläckor"));
    let direct = stjarna::reset::pwned::PwnedRange::new(&url, Duration::from_secs(3)).unwrap();
    assert_eq!(direct.is_breached(leaked).await, Some(true), "the range service knows it");
    let html = t.set_new_password(&flow, leaked).await;
    assert!(text_of(&html, "password-error").unwrap().starts_with("Lösenordet uppfyller inte alla regler."));
    let doc = scraper::Html::parse_document(&html);
    let bad: Vec<String> = doc
        .select(&scraper::Selector::parse("#password-rules li.bad").unwrap())
        .map(|e| e.value().attr("data-rule").unwrap().to_string())
        .collect();
    assert_eq!(bad, ["not_breached"]);
    // Only five hex digits of the hash ever left the portal (ours above, and the portal's).
    let queries = pwned.state.queries();
    assert_eq!(queries.len(), 2);
    assert!(queries.iter().all(|q| q.len() == 5 && q.chars().all(|c| c.is_ascii_hexdigit())), "{queries:?}");
    assert!(t.set_new_password(&flow, NEW_PASSWORD).await.contains("Ditt lösenord är bytt"));
}

#[tokio::test]
async fn a_reset_can_require_a_new_password_at_next_logon() {
    let dc = require_dc!();
    let (user, t) = enrolled(&dc, "mustchg", |c| {
        c.replace("min_response_ms = 300", "min_response_ms = 300\nmust_change_at_next_logon = true")
    })
    .await;
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    assert!(t.set_new_password(&flow, NEW_PASSWORD).await.contains("Ditt lösenord är bytt"));
    assert_eq!(dc.attr(&user.dn, "pwdLastSet").await.as_deref(), Some("0"));
    let res = t.app.login(&user.name, NEW_PASSWORD).await;
    assert!(location(&res).starts_with("/change?note="), "{}", location(&res));
    let page = t.app.get_html(&location(&res)).await;
    assert_eq!(text_of(&page, "change-notice").unwrap(), "Du måste byta lösenord innan du kan logga in.");
}
