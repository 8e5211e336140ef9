//! The storage contract: what every backend must do, decisions above all, tried with real
//! parallel tasks. Each test runs on every backend: the embedded SQLite, and PostgreSQL on the
//! throwaway cluster ./scripts/test starts (a database of its own per test).

use std::sync::Arc;

use futures_util::future::join_all;
use stjarna::storage::prelude::*;
use stjarna::storage::{BankIdEnrolmentRecord, BankIdFlowRecord, EnrolMode, MailRecord, ResetFlowRecord};

/// A fresh, migrated store per backend, opened as the application opens it (what it keeps in
/// memory included); the temporary directory lives as long as the store.
pub(crate) async fn backends() -> Vec<(Arc<dyn Storage>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut all: Vec<(Arc<dyn Storage>, tempfile::TempDir)> =
        vec![(stjarna::storage::open(&url, 8, None).await.unwrap(), dir)];
    if let Some(url) = crate::helpers::postgres_database().await {
        all.push((stjarna::storage::open(&url, 16, None).await.unwrap(), tempfile::tempdir().unwrap()));
    }
    all
}

pub(crate) const NOW: i64 = 1_800_000_000;

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
        pwd_last_set: Some("1340000000000000000".into()),
        written_maybe_at: None,
    }
}

#[tokio::test]
async fn one_claim_of_a_flow_wins_and_a_release_gives_it_back() {
    for (store, _dir) in backends().await {
        store.insert_reset_flow(&flow("f")).await.unwrap();
        assert!(!store.claim_reset_flow("f", NOW, 5).await.unwrap(), "nothing proved: nothing to claim");
        assert!(store.reset_verified("f", "sms").await.unwrap());
        let claims = join_all((0..20).map(|_| store.claim_reset_flow("f", NOW, 5))).await;
        assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
        assert!(!store.reset_verified("f", "bankid").await.unwrap(), "no verification while writing");
        store.release_reset_flow("f", None).await.unwrap();
        assert!(store.claim_reset_flow("f", NOW, 5).await.unwrap());
        store.release_reset_flow("f", Some(NOW + 5)).await.unwrap();
        store.release_reset_flow("f", Some(NOW + 6)).await.unwrap();
        let released = store.reset_flow("f").await.unwrap().unwrap();
        assert_eq!(released.written_maybe_at, Some(NOW + 5), "a release of a flow not claimed changes nothing");
        assert_eq!(released.pwd_last_set.as_deref(), Some("1340000000000000000"), "kept");
        assert!(store.claim_reset_flow("f", NOW, 5).await.unwrap());
        store.release_reset_flow("f", None).await.unwrap();
        assert_eq!(store.reset_flow("f").await.unwrap().unwrap().written_maybe_at, Some(NOW + 5), "kept too");
        assert!(!store.finish_reset_flow("f", "done", Some("reset"), NOW).await.unwrap(), "not claimed");
        assert!(store.claim_reset_flow("f", NOW, 5).await.unwrap());
        // A flow being written is not ended by what an older read of it concluded (time, a
        // change elsewhere): only the claim's holder finishes it.
        assert!(!store.end_reset_flow("f", "superseded", NOW).await.unwrap());
        assert!(store.finish_reset_flow("f", "done", Some("reset"), NOW).await.unwrap());
        assert!(!store.finish_reset_flow("f", "done", Some("reset"), NOW).await.unwrap(), "finished once");
        store.insert_reset_flow(&flow("g")).await.unwrap();
        assert!(store.end_reset_flow("g", "expired", NOW).await.unwrap());
        assert!(!store.end_reset_flow("g", "failed", NOW).await.unwrap(), "ended once");
        // Nor is a flow past its time or its failures taken, whatever a page read before said.
        store.insert_reset_flow(&flow("h")).await.unwrap();
        assert!(store.reset_verified("h", "sms").await.unwrap());
        assert!(!store.claim_reset_flow("h", NOW + 901, 5).await.unwrap(), "past its time");
        store.reset_failure("h").await.unwrap();
        assert!(!store.claim_reset_flow("h", NOW + 900, 1).await.unwrap(), "at its failures");
        assert!(store.claim_reset_flow("h", NOW + 900, 2).await.unwrap(), "until its last second");
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
async fn the_outbox_backlog_counts_what_waits_and_since_when() {
    for (store, _dir) in backends().await {
        assert_eq!(store.outbox_backlog().await.unwrap(), (0, None));
        for n in 0..3 {
            store.queue_mail(&MailRecord { created_at: NOW + n, ..mail(n) }).await.unwrap();
        }
        let first = store.claim_due_mail(NOW + 10, NOW + 300, 1).await.unwrap();
        store.mail_sent(first[0].id, NOW + 10).await.unwrap();
        let waiting = store.outbox_backlog().await.unwrap();
        assert_eq!(waiting.0, 2, "two wait");
        assert!(waiting.1.is_some_and(|at| at > NOW), "the oldest waiting is not the one sent: {waiting:?}");
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

pub(crate) fn order(id: &str) -> BankIdFlowRecord {
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
        return_nonce_hash: None,
        returned_at: None,
        start_address: None,
    }
}

pub(crate) fn session(id: &str, user: &str) -> stjarna::storage::SessionRecord {
    stjarna::storage::SessionRecord {
        id_hash: id.into(),
        user_id: user.into(),
        user_dn: String::new(),
        account_name: user.into(),
        display_name: user.into(),
        is_admin: false,
        created_at: NOW,
        last_seen_at: NOW,
        roles: String::new(),
        authenticated_at: NOW,
        proof_service: None,
        proof_at: None,
        pwd_last_set: Some("1000".into()),
        pwd_checked_at: Some(NOW),
    }
}

pub(crate) fn bankid_of(user: &str) -> BankIdEnrolmentRecord {
    BankIdEnrolmentRecord {
        user_id: user.into(),
        pn_encrypted: String::new(),
        pn_hash: format!("h-{user}"),
        pn_masked: "m".into(),
        name: "n".into(),
        enrolled_at: NOW,
    }
}

/// What the store keeps in memory never hides a write made through it: each read comes right
/// after the change (the busy pages read sessions, enrolments and flows from memory).
#[tokio::test]
async fn every_write_is_read_back_at_once() {
    for (store, _dir) in backends().await {
        for (id, user) in [("s1", "u1"), ("s2", "u1"), ("s3", "u2")] {
            store.insert_session(&session(id, user)).await.unwrap();
            assert!(store.session(id).await.unwrap().is_some(), "read once, and kept");
        }
        store.touch_session("s1", NOW + 70).await.unwrap();
        assert_eq!(store.session("s1").await.unwrap().unwrap().last_seen_at, NOW + 70);
        store.session_proof("s1", "sms", NOW + 71).await.unwrap();
        assert_eq!(store.session("s1").await.unwrap().unwrap().proof_at, Some(NOW + 71));
        store.session_reauthenticated("s1", NOW + 72, "admin").await.unwrap();
        assert!(store.session("s1").await.unwrap().unwrap().is_admin);
        assert_eq!(store.session("s1").await.unwrap().unwrap().pwd_last_set.as_deref(), Some("1000"));
        store.session_password_renewed("s1", None, NOW + 73).await.unwrap();
        let s1 = store.session("s1").await.unwrap().unwrap();
        assert_eq!((s1.pwd_last_set, s1.pwd_checked_at), (None, Some(NOW + 73)));
        // A check that read the session before that renewal does not overwrite it.
        assert!(!store.session_password_checked("s1", Some("1000"), NOW + 74, Some(NOW)).await.unwrap());
        assert_eq!(store.session("s1").await.unwrap().unwrap().pwd_last_set, None);
        assert!(store.session_password_checked("s1", Some("2000"), NOW + 74, Some(NOW + 73)).await.unwrap());
        assert_eq!(store.session("s1").await.unwrap().unwrap().pwd_last_set.as_deref(), Some("2000"));
        // Moved to a new id (after a change or re-authentication): the old id ends, all else stays.
        let before = store.session("s1").await.unwrap().unwrap();
        assert!(store.move_session("s1", "s1b").await.unwrap());
        assert!(store.session("s1").await.unwrap().is_none(), "the old id ends");
        let moved = store.session("s1b").await.unwrap().expect("under the new id");
        assert_eq!(stjarna::storage::SessionRecord { id_hash: "s1".into(), ..moved }, before);
        assert!(!store.move_session("s1", "s1c").await.unwrap(), "gone: nothing to move");
        assert!(store.move_session("s1b", "s1").await.unwrap());
        store.delete_user_sessions("u1", Some("s1")).await.unwrap();
        assert!(store.session("s2").await.unwrap().is_none(), "the user's other session ended");
        assert!(store.session("s1").await.unwrap().is_some(), "the kept one lives");
        store.delete_expired_sessions(NOW + 1, 0).await.unwrap();
        assert!(store.session("s3").await.unwrap().is_none(), "an idle session is purged");
        store.delete_session("s1").await.unwrap();
        assert!(store.session("s1").await.unwrap().is_none(), "logged out");

        assert!(store.enrolments("u").await.unwrap().is_empty());
        assert!(store.bankid_enrolment("u").await.unwrap().is_none());
        assert!(store.enrol_bankid(&bankid_of("u"), EnrolMode::Add).await.unwrap());
        assert_eq!(store.enrolments("u").await.unwrap().len(), 1);
        assert!(store.bankid_enrolment("u").await.unwrap().is_some());
        // Lifted on a proof made after the enrolment; not on one made before it (a service added
        // or replaced since the caller was verified keeps cooling).
        assert_eq!(
            store.lift_cooldown("u", "bankid", NOW - 1, (NOW - 100, i64::MIN), NOW + 5).await.unwrap(),
            0,
            "enrolled after the proof"
        );
        assert_eq!(
            store.lift_cooldown("u", "bankid", NOW, (NOW, i64::MIN), NOW + 5).await.unwrap(),
            0,
            "no longer cooling"
        );
        assert_eq!(
            store.lift_cooldown("u", "sms", NOW, (NOW - 100, i64::MIN), NOW + 5).await.unwrap(),
            0,
            "another service"
        );
        assert_eq!(store.enrolments("u").await.unwrap()[0].cooldown_lifted_at, None);
        assert_eq!(store.lift_cooldown("u", "bankid", NOW, (NOW - 100, i64::MIN), NOW + 5).await.unwrap(), 1);
        assert_eq!(store.enrolments("u").await.unwrap()[0].cooldown_lifted_at, Some(NOW + 5));
        assert_eq!(
            store.lift_cooldown("u", "bankid", NOW, (NOW - 100, NOW + 5), NOW + 6).await.unwrap(),
            0,
            "lifted already"
        );
        // A lift older than a password set since no longer holds: it is lifted again.
        assert_eq!(store.lift_cooldown("u", "bankid", NOW, (NOW - 100, NOW + 6), NOW + 7).await.unwrap(), 1);
        assert_eq!(store.enrolments("u").await.unwrap()[0].cooldown_lifted_at, Some(NOW + 7));
        store.touch_enrolment("u", "bankid", NOW + 6).await.unwrap();
        assert_eq!(store.enrolments("u").await.unwrap()[0].last_used_at, Some(NOW + 6));
        store.revoke_enrolment("u", None, None).await.unwrap();
        assert!(store.enrolments("u").await.unwrap().is_empty(), "revoked");
        assert!(store.bankid_enrolment("u").await.unwrap().is_none());

        // A left page's order: kept when collected since, cancelled (once) when not.
        store.insert_bankid_flow(&order("g")).await.unwrap();
        assert!(store.claim_bankid_collect("g", NOW + 2, NOW).await.unwrap());
        assert!(!store.cancel_unwatched_bankid_flow("g", NOW + 2, NOW + 9).await.unwrap(), "collected since");
        assert_eq!(store.bankid_flow("g").await.unwrap().unwrap().state, "pending");
        let cancels = join_all((0..4).map(|_| store.cancel_unwatched_bankid_flow("g", NOW + 3, NOW + 9))).await;
        assert_eq!(cancels.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1, "cancelled once");
        assert_eq!(store.bankid_flow("g").await.unwrap().unwrap().state, "cancelled");

        store.insert_bankid_flow(&order("f")).await.unwrap();
        assert_eq!(store.bankid_flow("f").await.unwrap().unwrap().last_collect_at, None);
        assert!(store.claim_bankid_collect("f", NOW + 2, NOW).await.unwrap());
        assert_eq!(store.bankid_flow("f").await.unwrap().unwrap().last_collect_at, Some(NOW + 2));
        store.note_bankid_pending("f", "userSign", NOW + 3).await.unwrap();
        assert_eq!(store.bankid_flow("f").await.unwrap().unwrap().hint_code.as_deref(), Some("userSign"));
        store.set_bankid_mode("f", "autostart").await.unwrap();
        assert_eq!(store.bankid_flow("f").await.unwrap().unwrap().mode, "autostart");
        assert!(store.finish_bankid_flow("f", "complete", None, Some("u"), NOW + 4).await.unwrap());
        assert_eq!(store.bankid_flow("f").await.unwrap().unwrap().state, "complete");
        assert!(store.consume_bankid_flow("f").await.unwrap());
        assert_eq!(store.bankid_flow("f").await.unwrap().unwrap().state, "consumed");
        store.delete_bankid_flows_before(NOW + 1).await.unwrap();
        assert!(store.bankid_flow("f").await.unwrap().is_none(), "purged");
    }
}

/// An order opened in the app on this device is taken (and counts for its reset) only after the app
/// sent the user back to its browser, within a while of completing; parallel returns mark it once.
#[tokio::test]
async fn an_order_opened_on_this_device_is_taken_only_after_the_way_back() {
    for (store, _dir) in backends().await {
        let opened = |id: &str, purpose: &str| {
            let mut o = order(id);
            o.purpose = purpose.into();
            o.context = Some("r".into());
            o.return_nonce_hash = Some("h".into());
            o
        };
        store.insert_bankid_flow(&opened("a", "login")).await.unwrap();
        store.set_bankid_mode("a", "autostart").await.unwrap();
        assert!(store.finish_bankid_flow("a", "complete", None, Some("u"), NOW + 4).await.unwrap());
        assert!(!store.consume_bankid_flow("a").await.unwrap(), "not back yet");
        assert!(store.mark_bankid_returned("a", NOW + 5, NOW).await.unwrap());
        assert!(!store.mark_bankid_returned("a", NOW + 6, NOW).await.unwrap(), "once");
        store.insert_bankid_flow(&opened("c", "login")).await.unwrap();
        store.set_bankid_mode("c", "autostart").await.unwrap();
        let marks = join_all((0..4).map(|_| store.mark_bankid_returned("c", NOW + 5, NOW))).await;
        assert_eq!(marks.into_iter().filter(|m| *m.as_ref().unwrap()).count(), 1, "marked once");
        assert!(store.consume_bankid_flow("a").await.unwrap());

        // Too late: the app's way back lasts a while after completion, no longer.
        store.insert_bankid_flow(&opened("e", "login")).await.unwrap();
        store.set_bankid_mode("e", "autostart").await.unwrap();
        assert!(store.finish_bankid_flow("e", "complete", None, Some("u"), NOW + 4).await.unwrap());
        assert!(!store.mark_bankid_returned("e", NOW + 200, NOW + 80).await.unwrap(), "too late");
        assert!(!store.consume_bankid_flow("e").await.unwrap());
        store.set_bankid_mode("e", "qr").await.unwrap();
        assert_eq!(store.bankid_flow("e").await.unwrap().unwrap().mode, "autostart", "an ended flow keeps its mode");

        // A reset's step: not its proof until back.
        store.insert_bankid_flow(&opened("b", "reset-step")).await.unwrap();
        store.set_bankid_mode("b", "autostart").await.unwrap();
        assert!(store.finish_bankid_flow("b", "complete", None, None, NOW + 4).await.unwrap());
        assert!(store.bankid_flow_for_context("r", "reset-step").await.unwrap().is_none());
        assert!(store.mark_bankid_returned("b", NOW + 5, NOW).await.unwrap());
        assert_eq!(store.bankid_flow_for_context("r", "reset-step").await.unwrap().unwrap().id, "b");

        // A QR order (or one without a return URL) is taken as before.
        store.insert_bankid_flow(&opened("d", "login")).await.unwrap();
        assert!(store.finish_bankid_flow("d", "complete", None, Some("u"), NOW + 4).await.unwrap());
        assert!(store.consume_bankid_flow("d").await.unwrap());
    }
}

/// Several instances on one PostgreSQL: what one of them keeps in memory follows what another
/// writes (NOTIFY from the database's triggers). It takes milliseconds; the test allows seconds,
/// since a loaded CI machine is no measure of speed (the benchmark is).
#[tokio::test]
async fn another_instances_writes_reach_what_this_one_keeps() {
    let Some(url) = crate::helpers::postgres_database().await else { return };
    let a = stjarna::storage::open(&url, 2, None).await.unwrap();
    let b = stjarna::storage::open(&url, 2, None).await.unwrap();
    // Until A listens, memory does not serve; give it a moment to start.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    b.insert_session(&session("s", "u")).await.unwrap();
    b.insert_bankid_flow(&order("f")).await.unwrap();
    assert!(a.session("s").await.unwrap().is_some());
    assert!(a.enrolments("u").await.unwrap().is_empty());
    assert_eq!(a.bankid_flow("f").await.unwrap().unwrap().state, "pending");

    b.insert_session(&session("m", "u")).await.unwrap();
    assert!(a.session("m").await.unwrap().is_some());
    b.delete_session("s").await.unwrap();
    assert!(b.move_session("m", "m2").await.unwrap());
    assert!(b.enrol_bankid(&bankid_of("u"), EnrolMode::Add).await.unwrap());
    assert!(b.finish_bankid_flow("f", "failed", Some("userCancel"), None, NOW).await.unwrap());

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ended = a.session("s").await.unwrap().is_none() && a.session("m").await.unwrap().is_none();
        let enrolled = a.enrolments("u").await.unwrap().len() == 1;
        let failed = a.bankid_flow("f").await.unwrap().unwrap().state == "failed";
        if ended && enrolled && failed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A still sees: session ended {ended}, enrolled {enrolled}, flow failed {failed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Rows gone without a row each (TRUNCATE, to log everyone out) reach A too.
    b.insert_session(&session("t", "u")).await.unwrap();
    assert!(a.session("t").await.unwrap().is_some());
    let raw = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    sqlx::query("TRUNCATE sessions").execute(&raw).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while a.session("t").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "A still serves a session truncated away");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A request that goes away in the middle of a write (a closed tab) does not leave what was
/// written unforgotten: the write finishes, and what it changed is read back as changed.
#[tokio::test]
async fn a_write_left_half_way_still_finishes_and_is_forgotten() {
    for (store, _dir) in backends().await {
        store.insert_session(&session("gone", "u")).await.unwrap();
        assert!(store.session("gone").await.unwrap().is_some(), "kept in memory");
        // Polled once, then dropped: as actix drops a handler whose client went away.
        let _ = tokio::time::timeout(std::time::Duration::ZERO, store.delete_session("gone")).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.session("gone").await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "the logout was lost or is still served from memory");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// SQLite serves one process: a second one is refused the file (it would not see the first's
/// changes, nor the first its own).
#[tokio::test]
async fn a_sqlite_file_serves_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("one.db").display());
    let first = stjarna::storage::open(&url, 1, None).await.unwrap();
    let second = stjarna::storage::open(&url, 1, None).await;
    assert!(matches!(second, Err(stjarna::storage::StorageError::InUse(_))), "a second opener is refused");
    drop(first);
    assert!(stjarna::storage::open(&url, 1, None).await.is_ok(), "free again once the first closed");
}

#[tokio::test]
async fn a_job_is_held_by_one_instance_until_its_lease_ends_and_a_reminder_goes_once() {
    for (store, _dir) in backends().await {
        let claims = (0..20).map(|_| {
            let store = store.clone();
            async move { store.claim_job("expiry", NOW, NOW + 600).await.unwrap() }
        });
        assert_eq!(join_all(claims).await.into_iter().filter(|c| *c).count(), 1, "one of twenty claims the job");
        assert!(!store.claim_job("expiry", NOW + 599, NOW + 1200).await.unwrap(), "held until the lease ends");
        assert!(store.claim_job("other", NOW, NOW + 600).await.unwrap(), "jobs are apart");
        assert!(store.claim_job("expiry", NOW + 600, NOW + 1200).await.unwrap(), "free once the lease ran out");
        store.release_job("expiry", NOW + 1000, NOW + 700).await.unwrap();
        assert!(
            !store.claim_job("expiry", NOW + 700, NOW + 1300).await.unwrap(),
            "not released by one who does not hold it"
        );
        store.release_job("expiry", NOW + 1200, NOW + 700).await.unwrap();
        assert!(!store.claim_job("expiry", NOW + 699, NOW + 1300).await.unwrap());
        assert!(store.claim_job("expiry", NOW + 700, NOW + 1300).await.unwrap(), "given back when the round ended");

        let sends = (0..20).map(|_| {
            let store = store.clone();
            async move { store.claim_expiry_reminder("u1", NOW + 7 * 86400, 7, NOW).await.unwrap() }
        });
        assert_eq!(join_all(sends).await.into_iter().filter(|c| *c).count(), 1, "one reminder of twenty tries");
        assert!(store.claim_expiry_reminder("u1", NOW + 7 * 86400, 1, NOW).await.unwrap(), "another day before");
        assert!(store.claim_expiry_reminder("u1", NOW + 50 * 86400, 7, NOW).await.unwrap(), "a new expiry time");
        assert_eq!(store.delete_expiry_reminders_before(NOW + 8 * 86400).await.unwrap(), 2);
        assert!(store.claim_expiry_reminder("u1", NOW + 7 * 86400, 7, NOW).await.unwrap(), "forgotten");
    }
}
