//! The storage contract: what every backend must do, decisions above all, tried with real
//! parallel tasks. Each test runs on every backend: the embedded SQLite, and PostgreSQL on the
//! throwaway cluster ./scripts/test starts (a database of its own per test).

use std::sync::Arc;

use futures_util::future::join_all;
use stjarna::storage::prelude::*;
use stjarna::storage::{
    BankIdEnrolmentRecord, BankIdFlowRecord, EnrolMode, MailRecord, PgStorage, ResetFlowRecord, SqliteStorage,
};

/// A fresh, migrated store per backend (the temporary directory lives as long as the store).
async fn backends() -> Vec<(Arc<dyn Storage>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStorage::open(&format!("sqlite://{}", dir.path().join("c.db").display()), 8).await.unwrap();
    store.migrate().await.unwrap();
    let mut all: Vec<(Arc<dyn Storage>, tempfile::TempDir)> = vec![(Arc::new(store), dir)];
    if let Some(url) = crate::helpers::postgres_database().await {
        let store = PgStorage::open(&url, 16).await.unwrap();
        store.migrate().await.unwrap();
        all.push((Arc::new(store), tempfile::tempdir().unwrap()));
    }
    all
}

const NOW: i64 = 1_800_000_000;

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
        store.release_attempt(granted[0].0).await.unwrap();
        assert!(store.reserve_attempt("login-user", "id:u", NOW, NOW - 900, 3).await.unwrap().is_some());
        assert!(store.reserve_attempt("login-user", "id:u", NOW, NOW - 900, 3).await.unwrap().is_none());
        assert!(store.reserve_attempt("login-ip", "id:u", NOW, NOW - 900, 3).await.unwrap().is_some());
        // Outside the window nothing counts.
        assert!(store.reserve_attempt("login-user", "id:u", NOW + 901, NOW + 1, 3).await.unwrap().is_some());
    }
}

fn flow(id: &str) -> ResetFlowRecord {
    ResetFlowRecord {
        id: id.into(),
        binding_hash: String::new(),
        typed_name: "anna".into(),
        user_id: Some("u".into()),
        verified: String::new(),
        sms_challenge: None,
        failures: 0,
        state: "identifying".into(),
        created_at: NOW,
        expires_at: NOW + 900,
        finished_at: None,
        outcome: None,
    }
}

#[tokio::test]
async fn one_claim_of_a_flow_wins_and_a_release_gives_it_back() {
    for (store, _dir) in backends().await {
        store.insert_reset_flow(&flow("f")).await.unwrap();
        assert!(!store.claim_reset_flow("f").await.unwrap(), "nothing proved: nothing to claim");
        assert!(store.reset_verified("f", "sms").await.unwrap());
        let claims = join_all((0..20).map(|_| store.claim_reset_flow("f"))).await;
        assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
        assert!(!store.reset_verified("f", "bankid").await.unwrap(), "no verification while writing");
        store.release_reset_flow("f").await.unwrap();
        assert!(store.claim_reset_flow("f").await.unwrap());
        assert!(store.finish_reset_flow("f", "done", Some("reset"), NOW).await.unwrap());
        assert!(!store.finish_reset_flow("f", "done", Some("reset"), NOW).await.unwrap(), "finished once");
    }
}

#[tokio::test]
async fn a_code_has_its_tries_and_no_more() {
    for (store, _dir) in backends().await {
        let challenge = stjarna::storage::SmsChallengeRecord {
            id: "c".into(),
            purpose: "verify".into(),
            binding_hash: String::new(),
            user_id: "u".into(),
            number_encrypted: String::new(),
            number_hash: String::new(),
            number_masked: String::new(),
            code_hash: String::new(),
            attempts: 0,
            sent_at: NOW,
            state: "pending".into(),
            finished_at: None,
        };
        store.insert_sms_challenge(&challenge).await.unwrap();
        let claims = join_all((0..30).map(|_| store.claim_sms_attempt("c", 3))).await;
        let mut got: Vec<i64> = claims.into_iter().filter_map(|c| c.unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2, 3]);
        assert!(store.finish_sms_challenge("c", "verified", NOW).await.unwrap());
        assert!(!store.finish_sms_challenge("c", "failed", NOW).await.unwrap(), "final once");
    }
}

fn mail(n: i64) -> MailRecord {
    MailRecord {
        id: 0,
        recipient: format!("u{n}@example.test"),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: "h".into(),
        created_at: NOW,
        attempts: 0,
        next_attempt_at: NOW,
        sent_at: None,
        last_error: None,
    }
}

#[tokio::test]
async fn parallel_workers_claim_each_mail_once_and_a_lease_runs_out() {
    for (store, _dir) in backends().await {
        for n in 0..30 {
            store.queue_mail(&mail(n)).await.unwrap();
        }
        let rounds = join_all((0..6).map(|_| store.claim_due_mail(NOW, NOW + 300, 10))).await;
        let mut ids: Vec<i64> = rounds.into_iter().flat_map(|r| r.unwrap()).map(|m| m.id).collect();
        let claimed = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!((claimed, ids.len()), (30, 30), "every mail claimed, none twice");
        assert!(store.claim_due_mail(NOW + 299, NOW + 600, 10).await.unwrap().is_empty(), "leased");
        store.mail_sent(ids[0], NOW).await.unwrap();
        let again = store.claim_due_mail(NOW + 301, NOW + 600, 100).await.unwrap();
        assert_eq!(again.len(), 29, "a lease that ran out makes the mail due again; a sent one is done");
    }
}

#[tokio::test]
async fn a_reminder_is_claimed_once_per_interval() {
    for (store, _dir) in backends().await {
        let claims = join_all((0..10).map(|_| store.claim_reminder("u", NOW, NOW - 7 * 86400))).await;
        assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
        assert!(!store.claim_reminder("u", NOW + 86400, NOW + 86400 - 7 * 86400).await.unwrap());
        assert!(store.claim_reminder("u", NOW + 8 * 86400, NOW + 86400).await.unwrap());
    }
}

fn order(id: &str) -> BankIdFlowRecord {
    BankIdFlowRecord {
        id: id.into(),
        purpose: "enrol".into(),
        binding_hash: String::new(),
        user_id: Some("u".into()),
        required_pn_hash: None,
        order_ref: id.into(),
        auto_start_token: String::new(),
        qr_start_token: String::new(),
        qr_start_secret: String::new(),
        mode: "qr".into(),
        state: "pending".into(),
        hint_code: None,
        started_at: NOW,
        last_collect_at: None,
        finished_at: None,
        result_user_id: None,
        context: None,
    }
}

#[tokio::test]
async fn an_order_completes_once_with_its_enrolment_or_not_at_all() {
    for (store, _dir) in backends().await {
        let bankid = |pn: &str| BankIdEnrolmentRecord {
            user_id: "u".into(),
            pn_encrypted: String::new(),
            pn_hash: pn.into(),
            pn_masked: pn.into(),
            name: String::new(),
            enrolled_at: NOW,
        };
        store.insert_bankid_flow(&order("a")).await.unwrap();
        store.insert_bankid_flow(&order("b")).await.unwrap();
        let anna = bankid("anna");
        let (a, b) = tokio::join!(
            store.complete_bankid_enrolment("a", &anna, EnrolMode::Add, NOW),
            store.complete_bankid_enrolment("a", &anna, EnrolMode::Add, NOW)
        );
        let mut results = [a.unwrap(), b.unwrap()];
        results.sort();
        assert_eq!(results, [None, Some(true)], "the order completes once");
        // A second BankID is refused and its order stays pending (the caller fails it).
        assert_eq!(
            store.complete_bankid_enrolment("b", &bankid("bertil"), EnrolMode::Add, NOW).await.unwrap(),
            Some(false)
        );
        assert_eq!(store.bankid_flow("b").await.unwrap().unwrap().state, "pending");
        assert_eq!(store.bankid_enrolment("u").await.unwrap().unwrap().pn_hash, "anna");
        // Collects are claimed once per interval.
        let claims = join_all((0..10).map(|_| store.claim_bankid_collect("b", NOW, NOW - 2))).await;
        assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
    }
}
