//! The login service against an in-memory directory ([`FakeDirectory`]).

use std::sync::Arc;

use secrecy::SecretString;

use super::{LoginOutcome, LoginService, Refusal};
use crate::audit::Auditor;
use crate::clock::{Clock, ManualClock};
use crate::directory::Directory;
use crate::directory::fake::FakeDirectory;
use crate::testing;
use crate::throttle::Throttle;

/// A login service for a domain with one user, anna, on a clock the test moves.
struct Anna {
    login: LoginService,
    manual: ManualClock,
    directory: Arc<FakeDirectory>,
    _dir: tempfile::TempDir,
}

async fn anna() -> Anna {
    anna_with(testing::settings()).await
}

/// Anna's domain, with every answer to a password taking at least `ms`.
async fn anna_with_floor(ms: u64) -> Anna {
    let mut settings = testing::settings();
    settings.login.min_response_ms = ms;
    anna_with(settings).await
}

async fn anna_with(settings: crate::config::Settings) -> Anna {
    let (store, _dir) = testing::store().await;
    let manual = ManualClock::starting_now();
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let directory = Arc::new(FakeDirectory::default());
    directory.add_user("anna", "Rätt-lösenord-1");
    let as_dyn: Arc<dyn Directory> = directory.clone();
    let auditor = Auditor::new(store.clone(), clock.clone());
    let login = LoginService::new(&settings, as_dyn, Throttle::new(store.clone(), clock.clone()), auditor, clock);
    Anna { login, manual, directory, _dir }
}

#[tokio::test]
async fn a_policy_that_cannot_be_read_allows_one_failure_per_window() {
    // AD's threshold is then unknown, and may be as low as 1 (a PSO that guards admins): the
    // portal must never be the one that locks the account.
    let Anna { login, manual, directory, _dir } = anna().await;
    directory.set_policy_unreadable(true);
    let meta = testing::meta();
    let wrong = SecretString::from("fel");
    for name in ["anna", "nobody"] {
        let first = login.login(name, &wrong, &meta).await.unwrap();
        assert!(matches!(first, LoginOutcome::Refused(Refusal::LastAttempt { .. })), "{name}: {first:?}");
        let second = login.login(name, &wrong, &meta).await.unwrap();
        assert!(matches!(second, LoginOutcome::Refused(Refusal::Throttled { .. })), "{name}: {second:?}");
    }
    // Readable again, and AD's window (with its slack) quiet: the domain's threshold (5) less
    // the margin applies.
    directory.set_policy_unreadable(false);
    manual.advance_seconds(33 * 60);
    for _ in 0..2 {
        let outcome = login.login("anna", &wrong, &meta).await.unwrap();
        assert_eq!(outcome, LoginOutcome::Refused(Refusal::InvalidCredentials));
    }
}

#[tokio::test]
async fn wrong_passwords_spaced_out_inside_ads_window_cannot_lock_the_account() {
    // AD (5 failures in 30 minutes) forgets a run of failures only after 30 quiet minutes: one
    // wrong password every ten minutes adds up to a lockout, however the portal's window slides.
    let Anna { login, manual, _dir, .. } = anna().await;
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(login.login("anna", &wrong, &meta).await.unwrap());
        manual.advance_seconds(601);
    }
    assert_eq!(outcomes[0], LoginOutcome::Refused(Refusal::InvalidCredentials));
    assert!(matches!(outcomes[2], LoginOutcome::Refused(Refusal::LastAttempt { .. })), "{outcomes:?}");
    assert!(
        outcomes[3..].iter().all(|o| matches!(o, LoginOutcome::Refused(Refusal::Throttled { .. }))),
        "{outcomes:?}"
    );
    // After AD's window of quiet (and a little), a new run.
    manual.advance_seconds(31 * 60);
    assert_eq!(login.login("anna", &wrong, &meta).await.unwrap(), LoginOutcome::Refused(Refusal::InvalidCredentials));
}

/// An account's names (its account name, its UPN) each have the count the visitor is told, as a
/// name that is no account has: three failures under one and a try under another read the same
/// for anna and for nobody (one count for all of anna's names told that they are one account).
/// AD, which counts the account whatever the name, is guarded by the account's own count: past
/// it the password is not tried, under any name.
#[tokio::test]
async fn an_accounts_names_are_not_told_apart_from_names_of_nobody() {
    let Anna { login, _dir, .. } = anna().await;
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    let mut after = vec![];
    for (a, b) in [("anna", "anna@example.test"), ("nobody", "nobody@example.test")] {
        for _ in 0..3 {
            login.login(a, &wrong, &meta).await.unwrap();
        }
        after.push(login.login(b, &wrong, &meta).await.unwrap());
    }
    assert_eq!(after[0], after[1]);
    assert_eq!(after[0], LoginOutcome::Refused(Refusal::InvalidCredentials));
    // The right password under the other name is not tried either: it reads as a wrong one.
    let right = login.login("anna@example.test", &SecretString::from("Rätt-lösenord-1"), &meta).await.unwrap();
    assert_eq!(right, LoginOutcome::Refused(Refusal::InvalidCredentials));
}

/// A user known to be themselves (re-authenticating) is told the wait when the account's count
/// is full (a stranger's failures under its other names), and the tries refused so are not held
/// against their own name: once the account's run is over, the right password is taken.
#[tokio::test]
async fn a_reauthentication_refused_for_the_accounts_count_costs_the_user_nothing() {
    let Anna { login, manual, _dir, .. } = anna().await;
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    let right = SecretString::from("Rätt-lösenord-1");
    let LoginOutcome::Success(anna) = login.login("anna", &right, &meta).await.unwrap() else { panic!("logs in") };
    for _ in 0..3 {
        login.login("anna@example.test", &wrong, &meta).await.unwrap();
    }
    manual.advance_seconds(20 * 60);
    for _ in 0..3 {
        let told = login.reauthenticate(&anna, &right, &meta).await.unwrap();
        assert!(matches!(told, super::Reauth::Refused(Refusal::Throttled { .. })), "{told:?}");
    }
    manual.advance_seconds(13 * 60);
    let later = login.reauthenticate(&anna, &right, &meta).await.unwrap();
    assert!(matches!(later, super::Reauth::Confirmed { .. }), "{later:?}");
}

/// A success under one of an account's names forgets the failures under all of them: a user who
/// mistyped under their UPN and then logged in with their account name starts afresh under both.
#[tokio::test]
async fn a_success_forgets_the_failures_under_every_name_of_the_account() {
    let Anna { login, _dir, .. } = anna().await;
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    for _ in 0..2 {
        login.login("anna@example.test", &wrong, &meta).await.unwrap();
    }
    let right = SecretString::from("Rätt-lösenord-1");
    assert!(matches!(login.login("anna", &right, &meta).await.unwrap(), LoginOutcome::Success(_)));
    // Two more mistakes under the UPN are not the third and fourth.
    assert_eq!(
        login.login("anna@example.test", &wrong, &meta).await.unwrap(),
        LoginOutcome::Refused(Refusal::InvalidCredentials)
    );
    assert_eq!(
        login.login("anna@example.test", &wrong, &meta).await.unwrap(),
        LoginOutcome::Refused(Refusal::InvalidCredentials)
    );
}

/// Every answer to a password takes at least `login.min_response_ms`, but a DC under load may take
/// longer than that to answer a bind: had a name of nobody cost no bind, an answer later than the
/// floor would say that the name is an account's. A name of nobody is answered after a bind as
/// long as an account's (for a DN that is nobody's). (The floor here is too low for the answers
/// before to raise it past the bind's time: see the next test.)
#[tokio::test]
async fn a_name_of_nobody_waits_for_a_bind_as_an_accounts_name_does() {
    let Anna { login, directory, _dir, .. } = anna_with_floor(20).await;
    let slow = std::time::Duration::from_millis(400);
    directory.set_bind_delays(slow, slow);
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    let mut took = Vec::new();
    for name in ["anna", "nobody"] {
        let started = std::time::Instant::now();
        let outcome = login.login(name, &wrong, &meta).await.unwrap();
        took.push(started.elapsed());
        assert_eq!(outcome, LoginOutcome::Refused(Refusal::InvalidCredentials), "{name}");
    }
    assert!(took[1] >= std::time::Duration::from_millis(400), "a name of nobody answered in {:?}", took[1]);
    let binds = directory.binds();
    assert_eq!(binds.len(), 2, "{binds:?}");
    let accounts = directory.all_users().await.unwrap();
    assert!(accounts.iter().all(|u| u.dn != binds[1]), "the second bind was an account's: {binds:?}");
    // A name that cannot be an account's (never looked up) costs no bind: it says nothing of anyone.
    login.login("ANNAN-DOMÄN\\anna", &wrong, &meta).await.unwrap();
    assert_eq!(directory.binds().len(), 2);

    // An account whose own count is full (its failures under another of its names) is not tried,
    // and takes as long as a name of nobody all the same.
    for _ in 0..2 {
        login.login("anna", &wrong, &meta).await.unwrap();
    }
    for name in ["anna@example.test", "nobody@example.test"] {
        let started = std::time::Instant::now();
        let outcome = login.login(name, &wrong, &meta).await.unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(400), "{name}: {:?}", started.elapsed());
        assert_eq!(outcome, LoginOutcome::Refused(Refusal::InvalidCredentials), "{name}");
    }
    let anna_dn = &binds[0];
    assert_eq!(directory.binds().iter().filter(|dn| *dn == anna_dn).count(), 3, "the full account was tried");
}

/// A DC that answers the bind as nobody otherwise than as a wrong password (a referral for a DN
/// it does not hold) must not turn a name of nobody into an error page where an account's name
/// reads "wrong password".
#[tokio::test]
async fn a_bind_as_nobody_answered_strangely_still_reads_as_a_wrong_password() {
    let Anna { login, directory, _dir, .. } = anna().await;
    directory.set_refers_strangers(true);
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    for name in ["anna", "nobody"] {
        let outcome = login.login(name, &wrong, &meta).await.expect(name);
        assert_eq!(outcome, LoginOutcome::Refused(Refusal::InvalidCredentials), "{name}");
    }
}

/// AD does more for an account's wrong password than for a DN that is nobody's (it checks it and
/// writes the account's count): under load, the bind as nobody comes back sooner. An answer that
/// reads "wrong password" waits as long as one of the latest wrong passwords of accounts took
/// (see `pace`); successes, slower for reading the roles, are not drawn from.
#[tokio::test]
async fn a_name_of_nobody_is_answered_as_late_as_wrong_passwords_lately_were() {
    let Anna { login, directory, _dir, .. } = anna_with_floor(20).await;
    let slow = std::time::Duration::from_millis(100);
    directory.set_bind_delays(slow, std::time::Duration::ZERO);
    let (meta, wrong) = (testing::meta(), SecretString::from("fel"));
    for _ in 0..16 {
        let right = SecretString::from("Rätt-lösenord-1");
        assert!(matches!(login.login("anna", &right, &meta).await.unwrap(), LoginOutcome::Success(_)));
    }
    let started = std::time::Instant::now();
    login.login("nobody", &wrong, &meta).await.unwrap();
    assert!(started.elapsed() < slow, "successes are not drawn from");
    for i in 0..16 {
        directory.add_user(&format!("user{i}"), "Rätt-lösenord-1");
        let outcome = login.login(&format!("user{i}"), &wrong, &meta).await.unwrap();
        assert_eq!(outcome, LoginOutcome::Refused(Refusal::InvalidCredentials));
    }
    let started = std::time::Instant::now();
    assert_eq!(login.login("nobody", &wrong, &meta).await.unwrap(), LoginOutcome::Refused(Refusal::InvalidCredentials));
    let took = started.elapsed();
    assert!(took >= slow, "a name of nobody answered in {took:?}");
}
