//! The storage contract for enrolments: what proves a user changes once, and the user's other
//! sessions end in the same transaction; tried with real parallel tasks on every backend.

use futures_util::future::join_all;
use stjarna::storage::{BankIdEnrolmentRecord, EnrolMode, EnrolWrite};

use crate::contract::{NOW, backends, bankid_of, order, session};

/// A revocation sent twice at once (a double click) removes the enrolment once: only one of
/// them is audited and mailed; the user's sessions end with it, and not when nothing was removed.
#[tokio::test]
async fn of_parallel_revocations_one_removes_the_enrolment() {
    for (store, _dir) in backends().await {
        assert!(store.enrol_bankid(&bankid_of("r"), EnrolMode::Add).await.unwrap());
        store.insert_session(&session("rs", "r")).await.unwrap();
        let done = join_all((0..10).map(|_| store.revoke_enrolment("r", Some("bankid"), None))).await;
        let done: Vec<(u64, u64)> = done.into_iter().map(Result::unwrap).collect();
        assert_eq!(done.iter().filter(|(removed, _)| *removed > 0).count(), 1, "{done:?}");
        assert!(done.contains(&(1, 1)), "the one that removed it ended the session: {done:?}");
        assert!(store.enrolments("r").await.unwrap().is_empty());
        assert!(store.session("rs").await.unwrap().is_none());
        store.insert_session(&session("rs2", "r")).await.unwrap();
        assert_eq!(store.revoke_enrolment("r", None, None).await.unwrap(), (0, 0), "nothing to revoke");
        assert!(store.session("rs2").await.unwrap().is_some(), "nothing removed, no session ended");
        // The user's own removal: the session that asked stays, every other one ends with it
        // (read first, so that a copy kept in memory would show).
        assert!(store.enrol_bankid(&bankid_of("r"), EnrolMode::Add).await.unwrap());
        store.insert_session(&session("rs3", "r")).await.unwrap();
        assert!(store.session("rs3").await.unwrap().is_some());
        assert_eq!(store.revoke_enrolment("r", Some("bankid"), Some("rs2")).await.unwrap(), (1, 1));
        assert!(store.session("rs2").await.unwrap().is_some(), "the session that asked stays");
        assert!(store.session("rs3").await.unwrap().is_none(), "another one ends");
        // A session that has ended removes nothing.
        assert!(store.enrol_bankid(&bankid_of("r"), EnrolMode::Add).await.unwrap());
        assert_eq!(store.revoke_enrolment("r", Some("bankid"), Some("rs3")).await.unwrap(), (0, 0));
        assert!(store.bankid_enrolment("r").await.unwrap().is_some(), "an ended session removed nothing");
    }
}

/// The owner and a thief, each with a proof in their own session, remove a service each at the
/// same moment: the first removal ends the other session, which then removes nothing. The user
/// is never left with neither service by two sessions racing.
#[tokio::test]
async fn of_two_sessions_removing_at_once_only_one_removes() {
    for (store, _dir) in backends().await {
        for round in 0..20 {
            let user = format!("two-{round}");
            assert!(store.enrol_bankid(&bankid_of(&user), EnrolMode::Add).await.unwrap());
            let sms = stjarna::storage::SmsEnrolmentRecord {
                user_id: user.clone(),
                number_encrypted: "x".into(),
                number_hash: format!("nr-{user}"),
                number_masked: "m".into(),
                enrolled_at: NOW,
            };
            assert_eq!(store.enrol_sms(&sms, EnrolMode::Add, None).await.unwrap(), EnrolWrite::Done);
            let (owner, thief) = (format!("{user}-owner"), format!("{user}-thief"));
            store.insert_session(&session(&owner, &user)).await.unwrap();
            store.insert_session(&session(&thief, &user)).await.unwrap();
            let (a, b) = tokio::join!(
                store.revoke_enrolment(&user, Some("sms"), Some(&owner)),
                store.revoke_enrolment(&user, Some("bankid"), Some(&thief)),
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(matches!((a, b), ((1, 1), (0, 0)) | ((0, 0), (1, 1))), "round {round}: {a:?} {b:?}");
            assert_eq!(store.enrolments(&user).await.unwrap().len(), 1, "round {round}: one service stays");
            let left = [&owner, &thief].map(|s| s.as_str());
            let mut alive = 0;
            for s in left {
                alive += usize::from(store.session(s).await.unwrap().is_some());
            }
            assert_eq!(alive, 1, "round {round}: the session that removed stays, the other ended");

            // The thief replaces the number while the owner removes the BankID: one of the two
            // changes is made, by the session that goes on.
            let user = format!("two-r-{round}");
            assert!(store.enrol_bankid(&bankid_of(&user), EnrolMode::Add).await.unwrap());
            let sms = stjarna::storage::SmsEnrolmentRecord { user_id: user.clone(), ..sms.clone() };
            assert_eq!(store.enrol_sms(&sms, EnrolMode::Add, None).await.unwrap(), EnrolWrite::Done);
            let (owner, thief) = (format!("{user}-owner"), format!("{user}-thief"));
            store.insert_session(&session(&owner, &user)).await.unwrap();
            store.insert_session(&session(&thief, &user)).await.unwrap();
            let swapped = stjarna::storage::SmsEnrolmentRecord { number_masked: "thief".into(), ..sms.clone() };
            let (removed, replaced) = tokio::join!(
                store.revoke_enrolment(&user, Some("bankid"), Some(&owner)),
                store.enrol_sms(&swapped, EnrolMode::Replace, Some(&thief)),
            );
            let (removed, replaced) = (removed.unwrap(), replaced.unwrap());
            let number = store.sms_enrolment(&user).await.unwrap().unwrap().number_masked;
            let bankid = store.bankid_enrolment(&user).await.unwrap();
            let (owner_on, thief_on) =
                (store.session(&owner).await.unwrap().is_some(), store.session(&thief).await.unwrap().is_some());
            match (removed, replaced) {
                ((1, 1), EnrolWrite::SessionEnded) => {
                    assert!(bankid.is_none() && number == "m" && owner_on && !thief_on, "round {round}")
                }
                ((0, 0), EnrolWrite::Done) => {
                    assert!(bankid.is_some() && number == "thief" && !owner_on && thief_on, "round {round}")
                }
                other => panic!("round {round}: both or neither made: {other:?}"),
            }
        }
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
        for s in ["u-tab1", "u-tab2", "u-thief"] {
            store.insert_session(&session(s, "u")).await.unwrap();
            assert!(store.session(s).await.unwrap().is_some(), "read, so that a copy in memory would show");
        }
        // Two polls (from two sessions here) complete the order at once: one wins.
        let anna = bankid("anna");
        let (a, b) = tokio::join!(
            store.complete_bankid_enrolment("a", &anna, EnrolMode::Add, NOW, Some("u-tab1")),
            store.complete_bankid_enrolment("a", &anna, EnrolMode::Add, NOW, Some("u-tab2"))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let (winner, loser) = if a == Some(EnrolWrite::Done) { ("u-tab1", b) } else { ("u-tab2", a) };
        assert!(a == Some(EnrolWrite::Done) || b == Some(EnrolWrite::Done), "{a:?} {b:?}");
        assert!(matches!(loser, None | Some(EnrolWrite::SessionEnded)), "the order completes once: {a:?} {b:?}");
        // What proves the user changed: their other sessions ended with it (the loser's too).
        for s in ["u-tab1", "u-tab2", "u-thief"] {
            assert_eq!(store.session(s).await.unwrap().is_some(), s == winner, "{s}");
        }
        // A second BankID is refused and its order stays pending (the caller fails it); nothing
        // changed, so no session ends.
        store.insert_session(&session("u-other", "u")).await.unwrap();
        assert_eq!(
            store.complete_bankid_enrolment("b", &bankid("bertil"), EnrolMode::Add, NOW, None).await.unwrap(),
            Some(EnrolWrite::Refused)
        );
        assert!(store.session("u-other").await.unwrap().is_some(), "a refused enrolment ends no session");
        assert_eq!(store.bankid_flow("b").await.unwrap().unwrap().state, "pending");
        assert_eq!(store.bankid_enrolment("u").await.unwrap().unwrap().pn_hash, "anna");
        // Collects are claimed once per interval.
        let claims = join_all((0..10).map(|_| store.claim_bankid_collect("b", NOW, NOW - 2))).await;
        assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
    }
}

/// A number enrolled or replaced ends the user's other sessions in the same transaction; a
/// refused one (a second number) ends none.
#[tokio::test]
async fn a_number_enrolled_or_replaced_ends_the_other_sessions() {
    for (store, _dir) in backends().await {
        let number = |n: &str| stjarna::storage::SmsEnrolmentRecord {
            user_id: "n".into(),
            number_encrypted: "x".into(),
            number_hash: format!("nr-{n}"),
            number_masked: n.into(),
            enrolled_at: NOW,
        };
        for s in ["n-asks", "n-1", "n-2"] {
            store.insert_session(&session(s, "n")).await.unwrap();
            assert!(store.session(s).await.unwrap().is_some());
        }
        assert_eq!(store.enrol_sms(&number("a"), EnrolMode::Add, Some("n-asks")).await.unwrap(), EnrolWrite::Done);
        assert!(store.session("n-asks").await.unwrap().is_some(), "the session that asked goes on");
        assert!(store.session("n-1").await.unwrap().is_none(), "another session ended");
        assert!(store.session("n-2").await.unwrap().is_none(), "and another");
        store.insert_session(&session("n-3", "n")).await.unwrap();
        let second = store.enrol_sms(&number("b"), EnrolMode::Add, Some("n-asks")).await.unwrap();
        assert_eq!(second, EnrolWrite::Refused, "a second number");
        assert!(store.session("n-3").await.unwrap().is_some(), "a refused enrolment ends no session");
        // A session ended meanwhile changes nothing, and ends nothing.
        let late = store.enrol_sms(&number("x"), EnrolMode::Replace, Some("n-1")).await.unwrap();
        assert_eq!(late, EnrolWrite::SessionEnded);
        assert!(store.session("n-3").await.unwrap().is_some());
        assert_eq!(store.sms_enrolment("n").await.unwrap().unwrap().number_masked, "a");
        assert_eq!(store.enrol_sms(&number("c"), EnrolMode::Replace, Some("n-asks")).await.unwrap(), EnrolWrite::Done);
        assert!(store.session("n-3").await.unwrap().is_none(), "a replacement ends the others");
        assert_eq!(store.sms_enrolment("n").await.unwrap().unwrap().number_masked, "c");
    }
}

/// A password set that started a cooling-off again is kept once, a later one replaces it, an
/// earlier one does not, read back at once (no copy kept in memory hides it), and a
/// replacement of the service forgets it. Parallel rounds keep the latest.
#[tokio::test]
async fn a_restart_is_kept_for_the_enrolment_it_started() {
    for (store, _dir) in backends().await {
        assert!(store.enrol_bankid(&bankid_of("k"), EnrolMode::Add).await.unwrap());
        let enrolled_at = store.enrolments("k").await.unwrap()[0].enrolled_at;
        assert!(store.record_restart("k", "bankid", enrolled_at, NOW + 10).await.unwrap());
        assert_eq!(store.enrolments("k").await.unwrap()[0].restarted_at, Some(NOW + 10));
        assert!(!store.record_restart("k", "bankid", enrolled_at, NOW + 10).await.unwrap(), "once");
        assert!(!store.record_restart("k", "bankid", enrolled_at, NOW + 5).await.unwrap(), "not an earlier one");
        assert!(!store.record_restart("k", "bankid", enrolled_at - 1, NOW + 20).await.unwrap(), "another enrolment");
        assert!(!store.record_restart("k", "sms", enrolled_at, NOW + 20).await.unwrap(), "another service");
        let sets = join_all((0..10).map(|i| store.record_restart("k", "bankid", enrolled_at, NOW + 20 + i))).await;
        assert!(sets.into_iter().all(|r| r.is_ok()));
        assert_eq!(store.enrolments("k").await.unwrap()[0].restarted_at, Some(NOW + 29), "the latest wins");
        let replacement = BankIdEnrolmentRecord { enrolled_at: NOW + 100, ..bankid_of("k") };
        assert!(store.enrol_bankid(&replacement, EnrolMode::Replace).await.unwrap());
        assert_eq!(store.enrolments("k").await.unwrap()[0].restarted_at, None, "a new enrolment");
    }
}
