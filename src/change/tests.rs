//! The change service against an in-memory directory ([`FakeDirectory`]) and a throwaway SQLite
//! file: what the service decides, without a DC. The integration suite runs the same against
//! Samba.

use std::sync::Arc;

use secrecy::SecretString;

use super::{ChangeRefusal, ChangeRequest, ChangeService, Changed};
use crate::audit::Auditor;
use crate::clock::{Clock, ManualClock, OsRandom};
use crate::directory::fake::{FakeDirectory, Writes};
use crate::directory::{Directory, DirectoryUser};
use crate::login::LoginService;
use crate::mail::Outbox;
use crate::session::{CHECK_INTERVAL, LoggedInWith, Lookup, MAX_UNCHECKED, Roles, SessionUser, Sessions};
use crate::storage::Storage;
use crate::testing;
use crate::throttle::Throttle;

const OLD: &str = "Gamla-lösenordet-1";
const NEW: &str = "Tre-glada-kor-på-bete7";

struct Harness {
    directory: Arc<FakeDirectory>,
    store: Arc<dyn Storage>,
    sessions: Sessions,
    clock: ManualClock,
    service: ChangeService,
    user: DirectoryUser,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let settings = testing::settings();
    let (store, dir) = testing::store().await;
    let manual = ManualClock::starting_now();
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let directory = Arc::new(FakeDirectory::default());
    let user = directory.add_user("anna", OLD);
    let as_dyn: Arc<dyn Directory> = directory.clone();
    let auditor = Auditor::new(store.clone(), clock.clone());
    let throttle = Throttle::new(store.clone(), clock.clone());
    let login = Arc::new(LoginService::new(&settings, as_dyn.clone(), throttle, auditor.clone(), clock.clone()));
    let sessions = Sessions::new(store.clone(), clock.clone(), Arc::new(OsRandom), 15, 480)
        .checked_in(as_dyn.clone(), Default::default());
    let outbox = Outbox::new(store.clone(), clock.clone(), "Stjärna", "");
    let rules = Arc::new(crate::reset::NewPasswordRules::new(as_dyn.clone(), &settings.password).unwrap());
    let service = ChangeService::new(login, as_dyn, rules, sessions.clone(), outbox, auditor);
    Harness { directory, store, sessions, clock: manual, service, user, _dir: dir }
}

impl Harness {
    async fn log_in(&self) -> String {
        let u = &self.user;
        let user = SessionUser {
            user_id: u.id.clone(),
            user_dn: u.dn.clone(),
            account_name: u.account_name.clone(),
            display_name: u.name_to_show().to_string(),
            is_admin: false,
            roles: Roles::default(),
            password_set: u.password_set.clone(),
        };
        self.sessions.start(user, None, LoggedInWith::Password).await.unwrap()
    }

    async fn change(&self, keep: Option<&str>) -> Result<Changed, ChangeRefusal> {
        let (current, new) = (SecretString::from(OLD), SecretString::from(NEW));
        let request = ChangeRequest { typed: "anna", current: &current, new: &new, repeat: &new, keep_session: keep };
        self.service.change(request, &testing::meta()).await.expect("no storage or directory error")
    }

    /// Changes the password in session `token`; the session's new cookie value.
    async fn changed_in(&self, token: &str) -> String {
        match self.change(Some(token)).await {
            Ok(Changed { session: Some(renewed) }) => renewed,
            other => panic!("changed, session renewed: {other:?}"),
        }
    }

    async fn alive(&self, token: &str) -> bool {
        matches!(self.sessions.lookup(token).await.unwrap(), Lookup::Active(_))
    }

    async fn audit(&self) -> Vec<(String, String, Option<String>)> {
        let records = self.store.recent_audit(100).await.unwrap();
        records.into_iter().map(|r| (r.event, r.outcome, r.detail)).collect()
    }

    /// Mail queued and not sent yet.
    async fn mails(&self) -> i64 {
        self.store.outbox_backlog().await.unwrap().0
    }
}

#[tokio::test]
async fn a_change_is_made_ends_the_other_sessions_and_is_told_by_mail() {
    let h = harness().await;
    let (mine, other) = (h.log_in().await, h.log_in().await);
    let renewed = h.changed_in(&mine).await;
    assert!(h.directory.has_password(&h.user.dn, NEW));
    assert!(h.alive(&renewed).await && !h.alive(&other).await, "only the session that changed it goes on");
    assert!(!h.alive(&mine).await, "under a new cookie value: a copy of the old one (a thief's) ends");
    assert_eq!(h.mails().await, 1);
    assert!(h.audit().await.iter().any(|(e, o, _)| e == "password-change" && o == "success"));
}

#[tokio::test]
async fn a_change_made_without_an_answer_is_neither_done_nor_refused() {
    let h = harness().await;
    let (mine, other) = (h.log_in().await, h.log_in().await);
    h.directory.set_writes(Writes::MadeUnanswered);
    let Err(ChangeRefusal::Unconfirmed { session: Some(renewed) }) = h.change(Some(&mine)).await else {
        panic!("unconfirmed, session renewed")
    };
    assert!(h.directory.has_password(&h.user.dn, NEW), "the fake made it, as AD may have");
    assert!(h.alive(&renewed).await && !h.alive(&mine).await, "the session that changed it goes on, renewed");
    assert!(!h.alive(&other).await, "an attacker's session does not outlive a change that may have been made");
    assert_eq!(h.mails().await, 1, "a mail says it may have been changed");
    let audit = h.audit().await;
    assert!(
        audit.iter().any(|(e, o, d)| e == "password-change"
            && o == "failure"
            && d.as_deref().is_some_and(|d| d.contains("unconfirmed"))),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_password_set_elsewhere_ends_the_session_within_the_check_interval() {
    let h = harness().await;
    let session = h.log_in().await;
    h.directory.set_elsewhere(&h.user.dn, "Satt-vid-skrivbordet-9");
    assert!(h.alive(&session).await, "checked at login, not again before the interval");
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(matches!(h.sessions.lookup(&session).await.unwrap(), Lookup::Revoked(_)));
    assert!(!h.alive(&session).await, "and it stays ended");
}

#[tokio::test]
async fn a_disabled_account_ends_the_session_and_an_unchanged_one_goes_on() {
    let h = harness().await;
    let session = h.log_in().await;
    for _ in 0..3 {
        h.clock.advance_seconds(CHECK_INTERVAL);
        assert!(h.alive(&session).await, "nothing changed: the checks keep it");
    }
    h.directory.disable(&h.user.dn);
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(!h.alive(&session).await);
}

#[tokio::test]
async fn the_session_that_changed_the_password_survives_the_check() {
    let h = harness().await;
    let (mine, other) = (h.log_in().await, h.log_in().await);
    let mine = h.changed_in(&mine).await;
    assert!(!h.alive(&other).await);
    for _ in 0..2 {
        h.clock.advance_seconds(CHECK_INTERVAL);
        assert!(h.alive(&mine).await, "its own change does not end it");
    }
    h.directory.set_elsewhere(&h.user.dn, "Satt-vid-skrivbordet-9");
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(!h.alive(&mine).await, "a later change elsewhere still does");
}

#[tokio::test]
async fn a_change_elsewhere_soon_after_one_here_still_ends_the_session() {
    let h = harness().await;
    let mine = h.changed_in(&h.log_in().await).await;
    // Before the session's next check, someone sets it again at a DC, ten minutes on by AD's clock.
    let later = h.clock.now() + 600;
    h.directory.set_elsewhere_at(&h.user.dn, "Satt-vid-skrivbordet-9", later);
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(!h.alive(&mine).await, "the change here does not cover one made later elsewhere");
}

#[tokio::test]
async fn a_directory_that_cannot_be_asked_ends_nothing_for_ten_minutes_and_is_not_asked_on_every_page() {
    let h = harness().await;
    let session = h.log_in().await;
    h.directory.set_down(true);
    h.clock.advance_seconds(CHECK_INTERVAL);
    let before = h.directory.lookups();
    for _ in 0..3 {
        assert!(h.alive(&session).await, "a DC outage does not log everyone out at once");
    }
    assert_eq!(h.directory.lookups() - before, 1, "asked once, then again only after a pause");
    // Still no answer ten minutes after the last check: the session ends.
    h.clock.advance_seconds(MAX_UNCHECKED);
    assert!(!h.alive(&session).await);
}

#[tokio::test]
async fn a_dc_the_change_has_not_reached_neither_ends_the_session_nor_is_believed() {
    // Another instance, without this one's pin, may ask a DC that has not replicated the change.
    let h = harness().await;
    let changed_at = h.clock.now();
    let mine = h.changed_in(&h.log_in().await).await;
    h.directory.set_elsewhere_at(&h.user.dn, NEW, changed_at - 86_400); // yesterday's value
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(h.alive(&mine).await, "the old value is not the session's end");
    let asked = h.directory.lookups();
    assert!(h.alive(&mine).await);
    assert_eq!(h.directory.lookups(), asked + 1, "nor adopted: asked again at the next request");
    // The change arrives: adopted, and from then on checked once a minute.
    h.directory.set_elsewhere_at(&h.user.dn, NEW, changed_at);
    assert!(h.alive(&mine).await);
    let asked = h.directory.lookups();
    assert!(h.alive(&mine).await);
    assert_eq!(h.directory.lookups(), asked, "checked: not asked again within the minute");
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(h.alive(&mine).await, "the change here is the session's own");
}

#[tokio::test]
async fn a_dc_that_never_has_the_change_ends_the_session_after_ten_minutes() {
    let h = harness().await;
    let changed_at = h.clock.now();
    let mine = h.changed_in(&h.log_in().await).await;
    h.directory.set_elsewhere_at(&h.user.dn, NEW, changed_at - 86_400);
    for _ in 0..(MAX_UNCHECKED / CHECK_INTERVAL - 1) {
        h.clock.advance_seconds(CHECK_INTERVAL);
        assert!(h.alive(&mine).await);
    }
    h.clock.advance_seconds(CHECK_INTERVAL);
    assert!(!h.alive(&mine).await, "unconfirmed for ten minutes: as when no DC answers");
}

/// The account's count full (a stranger's failures under its UPN): a logged-in user changing
/// their password is told the wait, as at a re-authentication; a visitor is told what any name's
/// try would get (the password is not tried either way).
#[tokio::test]
async fn a_full_count_of_the_account_is_told_as_a_wait_to_the_logged_in_user() {
    let h = harness().await;
    let token = h.log_in().await;
    let (current, wrong) = (SecretString::from("fel"), SecretString::from(NEW));
    for _ in 0..3 {
        let request = ChangeRequest {
            typed: "anna@example.test",
            current: &current,
            new: &wrong,
            repeat: &wrong,
            keep_session: None,
        };
        h.service.change(request, &testing::meta()).await.unwrap().unwrap_err();
    }
    let known = h.change(Some(&token)).await.unwrap_err();
    assert!(matches!(known, ChangeRefusal::Current(crate::login::Refusal::Throttled { .. })), "{known:?}");
    let anonymous = h.change(None).await.unwrap_err();
    assert_eq!(anonymous, ChangeRefusal::Current(crate::login::Refusal::InvalidCredentials));
    assert!(h.directory.has_password(&h.user.dn, OLD), "not changed");
}
