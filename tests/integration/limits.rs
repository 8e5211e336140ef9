//! Limits that hold under concurrency: real parallel requests against the portal and Samba.

use futures_util::future::join_all;

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
        assert!(statuses.iter().all(|s| *s == 200), "round {round}: {statuses:?}");
        let bad = dc.attr(&user.dn, "badPwdCount").await.unwrap_or_default().parse::<u32>().unwrap_or(0);
        let lockout = dc.attr(&user.dn, "lockoutTime").await.unwrap_or_default();
        assert!(bad <= 3, "round {round}: AD counted {bad} wrong passwords");
        assert!(lockout.is_empty() || lockout == "0", "round {round}: AD locked the account ({lockout})");
        assert_eq!(dc.bind(&user.dn, &user.password).await.0, 0, "round {round}: the password still works");
    }
}
