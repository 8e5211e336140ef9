//! Unit tests of the enrolment service: whether a BankID still cools off when it would log
//! someone in.

use super::*;
use crate::clock::ManualClock;
use crate::storage::{BankIdEnrolmentRecord, EnrolMode};

const HOUR: i64 = 3600;

/// A BankID login asks whether the BankID still cools off. Past its own time only a password set
/// since it was enrolled can have started it again, which only AD can tell: when AD cannot be
/// asked, the BankID counts as cooling (it logs nobody in), not as over. Past twice its time
/// nothing can have started it again, and AD is not asked.
#[tokio::test]
async fn a_bankid_counts_as_cooling_when_the_directory_cannot_say_whether_it_started_again() {
    let (store, _dir) = crate::testing::store().await;
    let manual = ManualClock::starting_now();
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let auditor = Auditor::new(store.clone(), clock.clone());
    let directory = Arc::new(crate::directory::fake::FakeDirectory::default());
    let anna = directory.add_user("anna", "Rätt-lösenord-1");
    let t0 = clock.now();
    directory.set_elsewhere_at(&anna.dn, "Rätt-lösenord-1", t0 - HOUR);
    let service = EnrolmentService::new(store.clone(), directory.clone(), clock.clone(), auditor, 600, 24 * HOUR);
    let record = BankIdEnrolmentRecord {
        user_id: anna.id.clone(),
        pn_encrypted: "x".into(),
        pn_hash: "h".into(),
        pn_masked: "m".into(),
        name: "n".into(),
        enrolled_at: t0,
    };
    assert!(store.enrol_bankid(&record, EnrolMode::Add).await.unwrap());
    let cooling = async || service.is_cooling(&anna.id, ServiceKind::BankId).await.unwrap();
    assert!(cooling().await, "within its own time");
    manual.advance_seconds(25 * HOUR);
    assert!(!cooling().await, "over");
    directory.set_down(true);
    assert!(cooling().await, "AD cannot say whether a password set since started it again");
    directory.set_down(false);
    directory.set_elsewhere_at(&anna.dn, "Nytt-lösenord-2", t0 + 20 * HOUR);
    assert!(cooling().await, "started again by the change at t0 + 20 h");
    manual.advance_seconds(24 * HOUR);
    directory.set_down(true);
    let asked = directory.lookups();
    assert!(!cooling().await, "past twice its time (and the change's 24 hours)");
    assert_eq!(directory.lookups(), asked, "AD is not asked");
}
