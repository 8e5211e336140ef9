//! The reset service against an in-memory directory ([`FakeDirectory`]): what it decides when AD
//! does not answer a password write it may have made (Samba cannot be made to do that on cue).

use std::sync::Arc;

use secrecy::SecretString;

use super::{ResetOutcome, ResetService, ResetState, ResetView};
use crate::audit::Auditor;
use crate::clock::{Clock, ManualClock, OsRandom};
use crate::directory::fake::{FakeDirectory, Writes};
use crate::enrolment::{ServiceKind, catalogue_from};
use crate::mail::Outbox;
use crate::session::{LoggedInWith, Lookup, Roles, SessionUser, Sessions};
use crate::storage::{BankIdEnrolmentRecord, EnrolMode};
use crate::testing;

/// A flow verified with BankID for Anna, who is logged in elsewhere.
struct Verified {
    store: Arc<dyn crate::storage::Storage>,
    directory: Arc<FakeDirectory>,
    service: ResetService,
    sessions: Sessions,
    token: String,
    id: String,
    user: crate::directory::DirectoryUser,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn verified(resets_per_day: u32) -> Verified {
    let mut settings = testing::settings();
    settings.reset.resets_per_day = resets_per_day;
    let (store, dir) = testing::store().await;
    let manual = Arc::new(ManualClock::starting_now());
    let clock: Arc<dyn Clock> = manual.clone();
    let directory = Arc::new(FakeDirectory::default());
    let user = directory.add_user("anna", "Gamla-lösenordet-1");
    let (auditor, outbox) =
        (Auditor::new(store.clone(), clock.clone()), Outbox::new(store.clone(), clock.clone(), "Stjärna", ""));
    let service = ResetService::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        Arc::new(OsRandom),
        auditor,
        outbox,
        catalogue_from(&settings.services),
        settings.enrolment.reset_stars,
        "EXAMPLE",
        Arc::new(super::NewPasswordRules::new(directory.clone(), &settings.password).unwrap()),
        settings.reset.clone(),
    );
    let enrolment = BankIdEnrolmentRecord {
        user_id: user.id.clone(),
        pn_encrypted: "unused".into(),
        pn_hash: "unused".into(),
        pn_masked: "19811218-****".into(),
        name: "Anna".into(),
        enrolled_at: clock.now() - 3600,
    };
    assert!(store.enrol_bankid(&enrolment, EnrolMode::Add).await.unwrap());
    // The user (or someone with their old password) is logged in.
    let sessions = Sessions::new(store.clone(), clock.clone(), Arc::new(OsRandom), 15, 480);
    let session = SessionUser {
        user_id: user.id.clone(),
        user_dn: user.dn.clone(),
        account_name: user.account_name.clone(),
        display_name: user.name_to_show().to_string(),
        is_admin: false,
        roles: Roles::default(),
        password_set: user.password_set.clone(),
    };
    let token = sessions.start(session, None, LoggedInWith::Password).await.unwrap();

    let meta = testing::meta();
    let id = service.start("anna", "browser", &meta).await.unwrap();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    service.verified(&view, ServiceKind::BankId, &meta).await.unwrap();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert!(view.enough, "BankID's stars open the password step: {view:?}");
    Verified { store, directory, service, sessions, token, id, user, clock: manual, _dir: dir }
}

#[tokio::test]
async fn a_reset_made_without_an_answer_ends_the_sessions_tells_the_user_and_counts() {
    // One reset a day: the unconfirmed write must count as one.
    let Verified { store, directory, service, sessions, token, id, user, .. } = verified(1).await;
    let meta = testing::meta();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    directory.set_writes(Writes::MadeUnanswered);
    let first = SecretString::from("Tre-glada-kor-på-bete7");
    assert_eq!(service.set_password(&view, &first, &first, &meta).await.unwrap(), ResetOutcome::Unconfirmed);
    assert!(directory.has_password(&user.dn, "Tre-glada-kor-på-bete7"), "the fake made it, as AD may have");
    assert!(
        matches!(sessions.lookup(&token).await.unwrap(), Lookup::None),
        "the sessions end as after a reset: it may have been made"
    );
    let audit = store.recent_audit(10).await.unwrap();
    assert!(
        audit.iter().any(|a| a.event == "password-reset"
            && a.outcome == "failure"
            && a.detail.as_deref().is_some_and(|d| d.contains("unconfirmed"))),
        "{audit:?}"
    );

    assert_eq!(store.outbox_backlog().await.unwrap().0, 1, "a mail says it may have been changed");

    // The password step is open again, and the day's one reset is used up.
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert_eq!(view.state, ResetState::Verified);
    directory.set_writes(Writes::Answered);
    let second = SecretString::from("Fyra-glada-kor-på-bete8");
    assert_eq!(service.set_password(&view, &second, &second, &meta).await.unwrap(), ResetOutcome::DailyLimit);
    assert!(!directory.has_password(&user.dn, "Fyra-glada-kor-på-bete8"));
}

#[tokio::test]
async fn an_unlock_made_without_an_answer_is_told_and_audited_and_can_be_repeated() {
    let Verified { store, directory, service, sessions, token, id, .. } = verified(1).await;
    let meta = testing::meta();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();

    directory.set_writes(Writes::MadeUnanswered);
    assert_eq!(service.unlock(&view, &meta).await.unwrap(), ResetOutcome::UnlockUnconfirmed);
    let audit = store.recent_audit(10).await.unwrap();
    assert!(
        audit.iter().any(|a| a.event == "unlock"
            && a.outcome == "failure"
            && a.detail.as_deref().is_some_and(|d| d.contains("unlock_unconfirmed"))),
        "{audit:?}"
    );
    // As after an unlock: the sessions end (an attacker's among them) and the owner is told.
    assert!(matches!(sessions.lookup(&token).await.unwrap(), Lookup::None));
    assert_eq!(store.outbox_backlog().await.unwrap().0, 1);

    // The flow and the day's one try were given back: unlocking again works.
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert_eq!(view.state, ResetState::Verified);
    directory.set_writes(Writes::Answered);
    assert_eq!(service.unlock(&view, &meta).await.unwrap(), ResetOutcome::Done(super::Finish::Unlock));
}

#[tokio::test]
async fn a_write_that_cannot_reach_ad_is_audited_and_gives_the_flow_and_the_days_count_back() {
    let Verified { store, directory, service, id, user, .. } = verified(1).await;
    let meta = testing::meta();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    directory.set_writes(Writes::Unreachable);
    let new = SecretString::from("Tre-glada-kor-på-bete7");
    assert!(service.set_password(&view, &new, &new, &meta).await.is_err(), "an error page, with its reference");
    assert!(service.unlock(&view, &meta).await.is_err());
    let audit = store.recent_audit(10).await.unwrap();
    for event in ["password-reset", "unlock"] {
        assert!(
            audit.iter().any(|a| a.event == event
                && a.outcome == "failure"
                && a.detail.as_deref().is_some_and(|d| d.contains("directory_failed"))),
            "{event}: {audit:?}"
        );
    }
    directory.set_writes(Writes::Answered);
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert_eq!(service.set_password(&view, &new, &new, &meta).await.unwrap(), ResetOutcome::Done(super::Finish::Reset));
    assert!(directory.has_password(&user.dn, "Tre-glada-kor-på-bete7"));
}

/// A new password set from a page read as `view` is refused, and AD keeps `kept`.
async fn refused_keeping(service: &ResetService, directory: &FakeDirectory, view: &ResetView, dn: &str, kept: &str) {
    let new = SecretString::from("Nie-geschrieben-Lösen-42");
    let outcome = service.set_password(view, &new, &new, &testing::meta()).await.unwrap();
    assert_eq!(outcome, ResetOutcome::NotAllowed);
    assert!(directory.has_password(dn, kept), "not written: {kept} kept");
}

#[tokio::test]
async fn a_password_changed_elsewhere_meanwhile_ends_the_flow_unwritten() {
    let Verified { store, directory, service, id, user, .. } = verified(3).await;
    let meta = testing::meta();
    directory.set_elsewhere(&user.dn, "Ägarens-nya-lösen-9");
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    refused_keeping(&service, &directory, &view, &user.dn, "Ägarens-nya-lösen-9").await;
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert_eq!(view.state, ResetState::Superseded);
    let audit = store.recent_audit(10).await.unwrap();
    assert!(
        audit.iter().any(|a| a.outcome == "blocked" && a.detail.as_deref() == Some("@changed_meanwhile")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_change_made_after_the_flows_own_unconfirmed_write_is_not_overwritten() {
    let Verified { directory, service, id, user, .. } = verified(3).await;
    let meta = testing::meta();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    directory.set_writes(Writes::MadeUnanswered);
    let first = SecretString::from("Tre-glada-kor-på-bete7");
    assert_eq!(service.set_password(&view, &first, &first, &meta).await.unwrap(), ResetOutcome::Unconfirmed);
    directory.set_writes(Writes::Answered);
    // The owner changes the password ten minutes later.
    let later = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 600;
    directory.set_elsewhere_at(&user.dn, "Ägarens-nya-lösen-9", later);
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    refused_keeping(&service, &directory, &view, &user.dn, "Ägarens-nya-lösen-9").await;
    assert_eq!(service.view(&id, "browser", &meta).await.unwrap().unwrap().state, ResetState::Superseded);
}

#[tokio::test]
async fn a_flow_being_written_is_not_ended_by_an_older_read_of_it() {
    let Verified { store, directory, service, id, user, clock, .. } = verified(3).await;
    let meta = testing::meta();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    // Another request claimed the flow and wrote; this one read it before.
    assert!(store.claim_reset_flow(&id, clock.now(), 5).await.unwrap());
    directory.set_elsewhere(&user.dn, "Det-andra-flikens-lösen-3");
    assert!(service.rules(&view, &meta).await.unwrap().is_none());
    assert_eq!(service.view(&id, "browser", &meta).await.unwrap().unwrap().state, ResetState::Writing);
}

/// Audited as the unlock it refused (not as a reset).
#[tokio::test]
async fn no_unlock_once_the_password_was_changed_elsewhere() {
    let Verified { store, directory, service, id, user, .. } = verified(3).await;
    let meta = testing::meta();
    directory.set_elsewhere(&user.dn, "Ägarens-nya-lösen-9");
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert_eq!(service.unlock(&view, &meta).await.unwrap(), ResetOutcome::NotAllowed);
    assert_eq!(service.view(&id, "browser", &meta).await.unwrap().unwrap().state, ResetState::Superseded);
    let audit = store.recent_audit(1).await.unwrap();
    let last = &audit[0];
    assert_eq!((last.event.as_str(), last.outcome.as_str()), ("unlock", "blocked"), "{audit:?}");
    assert!(last.detail.as_deref().is_some_and(|d| d.contains("changed_meanwhile")), "{audit:?}");
}

#[tokio::test]
async fn a_service_replaced_after_the_flow_began_does_not_count_in_it() {
    let Verified { store, service, id, user, .. } = verified(3).await;
    let meta = testing::meta();
    // With no cooling-off (or one the service desk lifted): the flow proved the BankID replaced.
    let now = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert!(now.enough);
    let replacement = BankIdEnrolmentRecord {
        user_id: user.id.clone(),
        pn_encrypted: "unused".into(),
        pn_hash: "another".into(),
        pn_masked: "19900101-****".into(),
        name: "Someone".into(),
        enrolled_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 5,
    };
    assert!(store.enrol_bankid(&replacement, EnrolMode::Replace).await.unwrap());
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert!(!view.enough, "{view:?}");
    assert_eq!((view.changed_since, view.cooling), (vec![ServiceKind::BankId], vec![]), "said as such, not as cooling");
}

#[tokio::test]
async fn an_enrolment_removed_while_the_password_page_was_answered_stops_the_write() {
    let Verified { store, directory, service, id, user, .. } = verified(3).await;
    let meta = testing::meta();
    // The page was read with BankID's stars; then the owner removed BankID (a stolen phone).
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert!(view.enough);
    store.revoke_enrolment(&user.id, Some("bankid"), None).await.unwrap();
    refused_keeping(&service, &directory, &view, &user.dn, "Gamla-lösenordet-1").await;
    let after = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    assert_eq!(after.state, ResetState::Verified, "given back, not left taken");
    assert!(!after.enough);
    assert_eq!(service.unlock(&view, &meta).await.unwrap(), ResetOutcome::NotAllowed, "nor an unlock");
}

#[tokio::test]
async fn a_flow_past_its_time_is_not_written_from_a_page_read_in_time() {
    let Verified { directory, service, id, user, clock, .. } = verified(3).await;
    let meta = testing::meta();
    let view = service.view(&id, "browser", &meta).await.unwrap().unwrap();
    clock.advance_seconds(testing::settings().reset.flow_minutes as i64 * 60 + 1);
    refused_keeping(&service, &directory, &view, &user.dn, "Gamla-lösenordet-1").await;
    assert_eq!(service.view(&id, "browser", &meta).await.unwrap().unwrap().state, ResetState::Expired);
}

#[tokio::test]
async fn a_bankid_reset_start_begins_when_bankid_proved_it_not_when_it_was_taken() {
    let Verified { store, service, user, clock, .. } = verified(3).await;
    let meta = testing::meta();
    // BankID proved the account; the order was taken two minutes later, and in between the
    // account's BankID was replaced (the order proved the one replaced).
    let proved_at = clock.now();
    clock.advance_seconds(120);
    let replacement = BankIdEnrolmentRecord {
        user_id: user.id.clone(),
        pn_encrypted: "other".into(),
        pn_hash: "other".into(),
        pn_masked: "19900101-****".into(),
        name: "Någon".into(),
        enrolled_at: clock.now() - 60,
    };
    assert!(store.enrol_bankid(&replacement, EnrolMode::Replace).await.unwrap());
    let id = service.start_identified(&user.id, ServiceKind::BankId, proved_at, "b2", &meta).await.unwrap();
    let view = service.view(&id, "b2", &meta).await.unwrap().unwrap();
    assert_eq!(view.changed_since, vec![ServiceKind::BankId], "{view:?}");
    assert!(!view.enough);
    // Taken before any change, it counts.
    let id = service.start_identified(&user.id, ServiceKind::BankId, clock.now(), "b3", &meta).await.unwrap();
    assert!(service.view(&id, "b3", &meta).await.unwrap().unwrap().enough);
}
