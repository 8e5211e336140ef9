//! The storage contract for limits and the audit trail: record-then-decide under bursts, runs of
//! failures as AD counts them, and the audit search, on every backend.

use futures_util::future::join_all;

use crate::contract::{NOW, backends};

#[tokio::test]
async fn a_limit_grants_exactly_its_number_to_a_burst() {
    for (store, _dir) in backends().await {
        let tries = (0..50).map(|_| {
            let store = store.clone();
            async move { store.reserve_attempt("login-user", "id:u", NOW, NOW - 900, 3).await.unwrap() }
        });
        let granted: Vec<_> = join_all(tries).await.into_iter().flatten().collect();
        assert_eq!(granted.len(), 3, "three of fifty");
        let mut positions: Vec<i64> = granted.iter().map(|g| g.1).collect();
        positions.sort();
        assert_eq!(positions, [1, 2, 3]);
        // A released attempt frees its place; other keys and scopes are apart.
        store.release_attempts(&[granted[0].0], None).await.unwrap();
        assert!(store.reserve_attempt("login-user", "id:u", NOW, NOW - 900, 3).await.unwrap().is_some());
        assert!(store.reserve_attempt("login-user", "id:u", NOW, NOW - 900, 3).await.unwrap().is_none());
        assert!(store.reserve_attempt("login-ip", "id:u", NOW, NOW - 900, 3).await.unwrap().is_some());
        // Outside the window nothing counts.
        assert!(store.reserve_attempt("login-user", "id:u", NOW + 901, NOW + 1, 3).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_run_of_failures_ends_only_after_a_quiet_gap() {
    for (store, _dir) in backends().await {
        let reserve = async |at: i64| store.reserve_in_run("login-user", "id:r", NOW + at, 100, 3).await.unwrap();
        assert_eq!(reserve(0).await.map(|r| r.1), Some(1));
        assert_eq!(reserve(90).await.map(|r| r.1), Some(2));
        assert_eq!(reserve(180).await.map(|r| r.1), Some(3));
        assert_eq!(reserve(270).await, None, "spaced out inside the gap, still one run");
        assert_eq!(reserve(279).await, None, "a second short of the gap");
        assert_eq!(reserve(280).await.map(|r| r.1), Some(1), "quiet for the gap: a new run");
        // A burst decides exactly: two more of the run's three.
        let burst = join_all((0..20).map(|_| store.reserve_in_run("login-user", "id:r", NOW + 300, 100, 3))).await;
        assert_eq!(burst.into_iter().filter(|r| r.as_ref().unwrap().is_some()).count(), 2);
        // Clearing old counters keeps a run still going on (AD's window may be long)...
        for (key, at) in [("id:long", NOW - 5 * 86400), ("id:long", NOW - 86400), ("id:done", NOW - 5 * 86400)] {
            store.record_failure("login-user", key, at).await.unwrap();
        }
        store.record_failure("sms-user", "id:long", NOW - 5 * 86400).await.unwrap();
        let deleted = store.delete_failures_before(NOW - 2 * 86400, Some(("login-user", NOW - 3 * 86400))).await;
        assert_eq!(deleted.unwrap(), 2, "the quiet key's and the other scope's");
        assert_eq!(store.failures_since("login-user", "id:long", 0).await.unwrap().len(), 2);
        assert!(store.failures_since("login-user", "id:done", 0).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn attempts_are_released_together_and_a_key_cleared_in_one_step() {
    for (store, _dir) in backends().await {
        let reserve =
            async |scope: &str, key: &str| store.reserve_attempt(scope, key, NOW, NOW - 900, 5).await.unwrap();
        let ip = reserve("login-ip", "10.0.0.1").await.unwrap();
        let user = reserve("login-user", "id:v").await.unwrap();
        let other = reserve("login-user", "id:w").await.unwrap();
        store.record_failure("login-user", "id:v", NOW - 10).await.unwrap();
        store.record_failure("login-user", "name:v", NOW - 10).await.unwrap();
        assert_eq!((ip.1, user.1, other.1), (1, 1, 1), "each the first of its key");
        store.release_attempts(&[ip.0, user.0], Some(("login-user", &["id:v", "name:v"]))).await.unwrap();
        assert!(store.failures_since("login-ip", "10.0.0.1", 0).await.unwrap().is_empty());
        assert!(
            store.failures_since("login-user", "id:v", 0).await.unwrap().is_empty(),
            "cleared, the older failure too"
        );
        assert!(store.failures_since("login-user", "name:v", 0).await.unwrap().is_empty(), "every key given");
        assert_eq!(store.failures_since("login-user", "id:w", 0).await.unwrap().len(), 1, "another key is untouched");
        assert_eq!(reserve("login-user", "id:w").await.unwrap().1, 2, "the position counts the earlier one");
        store.release_attempts(&[other.0], None).await.unwrap();
        assert_eq!(store.failures_since("login-user", "id:w", 0).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn the_audit_trail_is_searched_by_name_as_typed() {
    for (store, _dir) in backends().await {
        let entry =
            |username: Option<&str>, user_id: Option<&str>, actor: Option<&str>| stjarna::storage::AuditRecord {
                id: 0,
                at: NOW,
                event: "login".into(),
                outcome: "success".into(),
                username: username.map(str::to_string),
                user_id: user_id.map(str::to_string),
                source_ip: None,
                user_agent: None,
                request_id: None,
                detail: None,
                actor: actor.map(str::to_string),
            };
        for e in [
            entry(Some("Ab_c"), Some("id-1"), None),
            entry(None, Some("id-1"), None),
            entry(Some("abxc"), Some("id-2"), None),
            entry(None, Some("id-2"), Some("Ab_c")),
            entry(Some("ab_cd"), Some("id-3"), None),
            entry(None, Some("id-3"), None),
        ] {
            store.append_audit(&e).await.unwrap();
        }
        let search = async |text: &str| {
            let filter = stjarna::storage::AuditFilter { user: Some(text.to_string()), ..Default::default() };
            let (rows, total) = store.audit_search(&filter, 0, 100).await.unwrap();
            assert_eq!(rows.len() as i64, total);
            let mut found: Vec<(Option<String>, Option<String>)> =
                rows.into_iter().map(|r| (r.username, r.user_id)).collect();
            found.sort();
            found
        };
        let pair = |u: Option<&str>, id: &str| (u.map(str::to_string), Some(id.to_string()));
        // `_` is a letter here, not any letter: abxc is not found. Ab_c's id-only entry is (by its
        // exact name, whatever its case), ab_cd's is not (a name it is only part of); what Ab_c
        // did about id-2 is.
        assert_eq!(
            search("ab_C").await,
            [pair(None, "id-1"), pair(None, "id-2"), pair(Some("Ab_c"), "id-1"), pair(Some("ab_cd"), "id-3")]
        );
        assert!(search("%").await.is_empty(), "a wildcard typed finds nothing");
        store.append_audit(&entry(Some("Åsa"), Some("id-4"), None)).await.unwrap();
        assert_eq!(search("Åsa").await, [pair(Some("Åsa"), "id-4")], "a letter beyond ASCII, as written");
        assert_eq!(search("id-3").await, [pair(None, "id-3"), pair(Some("ab_cd"), "id-3")], "an exact id");
    }
}
