//! Two domain controllers of one domain (the second joined with `samba-tool domain join`): with the
//! first one stopped, logins, unlocks and resets go through the second; and after a reset on the
//! second, the user's next login is checked there even when the first (which has not seen the new
//! password) answers again.

use std::time::{Duration, Instant};

use crate::helpers::{TestDc, TestUser, new_client, text_of};
use crate::reset::enrolled;
use crate::sims::ANNA;

const NEW_PASSWORD: &str = "Tre-glada-kor-på-bete7";

/// Waits until the second DC has `attr` of the user as `wanted` says (replication).
async fn replicated(second: &TestDc, user: &TestUser, attr: &str, wanted: impl Fn(Option<&str>) -> bool) {
    let started = Instant::now();
    while !wanted(second.attr(&user.dn, attr).await.as_deref()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{attr} of {} did not replicate to the second DC",
            user.name
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn with_the_first_dc_stopped_logins_unlocks_and_resets_go_through_the_second() {
    let Some(pair) = crate::helpers::test_dc_pair() else { return };
    let (first, second) = (&pair.first, &pair.second);
    let urls = format!("urls = [\"{}\", \"{}\"]", first.url, second.url);
    let (user, mut t) = enrolled(first, "failover", |c| {
        c.replace(&format!("url = \"{}\"", first.url), &urls)
            .replace("connect_timeout_seconds = 3", "connect_timeout_seconds = 1\nfailover_seconds = 1")
            .replace("operation_timeout_seconds = 5", "operation_timeout_seconds = 2")
    })
    .await;
    assert_eq!(t.app.login(&user.name, &user.password).await.status(), 303, "a login with both DCs up");
    first.lock(&user).await;
    replicated(second, &user, "sAMAccountName", |v| v.is_some()).await;
    replicated(second, &user, "lockoutTime", |v| v.is_some_and(|t| t != "0")).await;

    let stopped = pair.stop_first();
    // Unlocking: every step (the look-up, the verifications, the write) goes to the second DC.
    t.app.client = new_client();
    let flow = t.start_reset(&user.name).await;
    t.reset_sms(&flow).await;
    t.reset_bankid(&flow, ANNA).await;
    let res = t.post_in(&flow, "/unlock", &[]).await;
    let html = t.app.follow(res).await;
    assert_eq!(
        text_of(&html, "reset-message").as_deref(),
        Some("Ditt konto är upplåst. Logga in med ditt vanliga lösenord."),
        "unlocked through the second DC"
    );
    assert_eq!(second.attr(&user.dn, "lockoutTime").await.as_deref(), Some("0"), "the second DC made the unlock");

    // Logging in.
    t.app.client = new_client();
    assert_eq!(t.app.login(&user.name, &user.password).await.status(), 303, "a login through the second DC");

    // Resetting.
    t.app.client = new_client();
    t.reset_told_done(&user.name, NEW_PASSWORD).await; // through the second DC
    assert_eq!(second.bind(&user.dn, NEW_PASSWORD).await.0, 0, "the second DC has the new password");

    // The first DC answers again (and is used again once failover_seconds are over), but it has not
    // seen the reset: the user's next login is checked where the password was written.
    drop(stopped);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(first.bind(&user.dn, NEW_PASSWORD).await.0, 49, "the first DC has not seen the new password");
    t.app.client = new_client();
    let res = t.app.login(&user.name, NEW_PASSWORD).await;
    assert_eq!(res.status(), 303, "the login after the reset is checked on the DC that made it");

    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "unlock" && a.outcome == "success"), "{audit:?}");
    assert!(audit.iter().any(|a| a.event == "password-reset" && a.outcome == "success"));
}
