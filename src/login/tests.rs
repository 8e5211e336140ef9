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

#[tokio::test]
async fn a_policy_that_cannot_be_read_allows_one_failure_per_window() {
    // AD's threshold is then unknown, and may be as low as 1 (a PSO that guards admins): the
    // portal must never be the one that locks the account.
    let settings = testing::settings();
    let (store, _dir) = testing::store().await;
    let manual = ManualClock::starting_now();
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let directory = Arc::new(FakeDirectory::default());
    directory.add_user("anna", "Rätt-lösenord-1");
    directory.set_policy_unreadable(true);
    let as_dyn: Arc<dyn Directory> = directory.clone();
    let auditor = Auditor::new(store.clone(), clock.clone());
    let login = LoginService::new(&settings, as_dyn, Throttle::new(store.clone(), clock.clone()), auditor, clock);
    let meta = testing::meta();
    let wrong = SecretString::from("fel");
    for name in ["anna", "nobody"] {
        let first = login.login(name, &wrong, &meta).await.unwrap();
        assert!(matches!(first, LoginOutcome::Refused(Refusal::LastAttempt { .. })), "{name}: {first:?}");
        let second = login.login(name, &wrong, &meta).await.unwrap();
        assert!(matches!(second, LoginOutcome::Refused(Refusal::Throttled { .. })), "{name}: {second:?}");
    }
    // Readable again, and the window over: the domain's threshold (5) less the margin applies.
    directory.set_policy_unreadable(false);
    manual.advance_seconds(31 * 60);
    for _ in 0..2 {
        let outcome = login.login("anna", &wrong, &meta).await.unwrap();
        assert_eq!(outcome, LoginOutcome::Refused(Refusal::InvalidCredentials));
    }
}
