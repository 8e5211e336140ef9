//! Unit tests of the service desk's side: judging a caller's proof, lifting a cooling-off.

use super::*;
use crate::clock::ManualClock;
use crate::directory::DirectoryError;
use crate::storage::{BankIdEnrolmentRecord, EnrolMode, EnrolWrite};

const HOUR: i64 = 3600;

/// A mobile number whose lookup hash is `number_hash`, enrolled by `user` at `at`.
fn sms(user: &str, number_hash: &str, at: Timestamp) -> crate::storage::SmsEnrolmentRecord {
    crate::storage::SmsEnrolmentRecord {
        user_id: user.into(),
        number_encrypted: "x".into(),
        number_hash: number_hash.into(),
        number_masked: "m".into(),
        enrolled_at: at,
    }
}

/// A BankID of the personal number whose lookup hash is `pn_hash`, enrolled by `user` at `at`.
fn bankid(user: &str, pn_hash: &str, at: Timestamp) -> BankIdEnrolmentRecord {
    BankIdEnrolmentRecord {
        user_id: user.into(),
        pn_encrypted: "x".into(),
        pn_hash: pn_hash.into(),
        pn_masked: "m".into(),
        name: "n".into(),
        enrolled_at: at,
    }
}

/// A proof the service desk saw is judged as of the moment it was made: a service still
/// cooling off then proves nothing (whoever had the password for a moment could have enrolled
/// it), even when the page is shown again after the cooling-off ended; one removed or replaced
/// since proves nothing either.
#[tokio::test]
async fn a_callers_proof_is_judged_as_of_when_it_was_made() {
    let (store, _dir) = crate::testing::store().await;
    let clock = ManualClock::starting_now();
    let clock: Arc<dyn Clock> = Arc::new(clock);
    let auditor = Auditor::new(store.clone(), clock.clone());
    let service = Desk::new(store.clone(), clock.clone(), auditor, 600, 24 * HOUR);
    let t0 = clock.now();
    let record = |at| bankid("u", "h", at);
    assert!(store.enrol_bankid(&record(t0), EnrolMode::Add).await.unwrap());
    let u = Owner { user_id: "u", account_name: "u", password_set: None };
    let standing = async |at| service.proof_standing(u, ServiceKind::BankId, at).await.unwrap();
    assert_eq!(standing(t0 + HOUR).await, ProofStanding::Cooling);
    assert_eq!(standing(t0 + 25 * HOUR).await, ProofStanding::Trusted);
    // The password set at t0 + 20 h (AD's FILETIME): cooling off again, the BankID proves
    // nothing at t0 + 25 h; a proof made before the change is judged without it.
    let filetime = ((t0 + 20 * HOUR + 11_644_473_600) * 10_000_000).to_string();
    let changed = Owner { password_set: Some(&filetime), ..u };
    assert_eq!(
        service.proof_standing(changed, ServiceKind::BankId, t0 + 25 * HOUR).await.unwrap(),
        ProofStanding::Cooling
    );
    assert_eq!(
        service.proof_standing(changed, ServiceKind::BankId, t0 + 19 * HOUR).await.unwrap(),
        ProofStanding::Cooling
    );
    assert_eq!(
        service.proof_standing(changed, ServiceKind::BankId, t0 + 45 * HOUR).await.unwrap(),
        ProofStanding::Trusted
    );
    assert_eq!(standing(t0 - 1).await, ProofStanding::Gone, "made before this enrolment");
    assert_eq!(service.proof_standing(u, ServiceKind::Sms, t0 + 25 * HOUR).await.unwrap(), ProofStanding::Gone);
    // Lifted at t0 + 2 h: a proof after that counts, one before it still does not.
    assert_eq!(
        store.lift_cooldown("u", "sms", t0 + 2 * HOUR, (t0 - HOUR, i64::MIN), t0 + 2 * HOUR).await.unwrap(),
        0,
        "not chosen"
    );
    assert_eq!(
        store.lift_cooldown("u", "bankid", t0 + 2 * HOUR, (t0 - HOUR, i64::MIN), t0 + 2 * HOUR).await.unwrap(),
        1
    );
    assert_eq!(
        store.lift_cooldown("u", "bankid", t0 + 2 * HOUR, (t0 - HOUR, i64::MIN), t0 + 2 * HOUR).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(standing(t0 + 3 * HOUR).await, ProofStanding::Trusted);
    assert_eq!(standing(t0 + HOUR).await, ProofStanding::Cooling);
    // Replaced at t0 + 30 h: a proof made the day before was the old one's.
    assert!(store.enrol_bankid(&record(t0 + 30 * HOUR), EnrolMode::Replace).await.unwrap());
    assert_eq!(standing(t0 + 25 * HOUR).await, ProofStanding::Gone);
    // Removed: nothing it proved stands.
    store.revoke_enrolment("u", Some("bankid"), None).await.unwrap();
    assert_eq!(standing(t0 + 31 * HOUR).await, ProofStanding::Gone);
}

/// An agent's second account (their admin account, with the same BankID) is their own too:
/// they cannot verify "the caller" with their own BankID and lift its cooling-off.
#[tokio::test]
async fn an_agent_cannot_lift_an_account_that_has_their_bankid() {
    let (store, _dir) = crate::testing::store().await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
    let auditor = Auditor::new(store.clone(), clock.clone());
    let service = Desk::new(store.clone(), clock.clone(), auditor, 600, 24 * HOUR);
    let t0 = clock.now() - 48 * HOUR;
    let record = |user: &str, hash: &str| bankid(user, hash, t0);
    for (user, hash) in [("agent", "same"), ("agent-adm", "same"), ("other", "else")] {
        assert!(store.enrol_bankid(&record(user, hash), EnrolMode::Add).await.unwrap());
    }
    let agent = Owner { user_id: "agent", account_name: "agent", password_set: None };
    let lift = async |user| {
        let proof = Some((ServiceKind::BankId, clock.now()));
        let target = Owner { user_id: user, account_name: user, password_set: None };
        service.lift_cooldown(agent, false, target, proof, &[ServiceKind::Sms], &crate::testing::meta()).await.unwrap()
    };
    assert_eq!(lift("agent-adm").await, Lift::OwnAccount);
    assert_eq!(lift("agent").await, Lift::OwnAccount);
    // Another's is not refused as the agent's own (their BankID, out of its cooling-off, had
    // nothing to lift).
    assert_eq!(lift("other").await, Lift::NothingLifted);
}

/// The personal numbers AD holds, by account id (a fake of `identity::bankid::DirectoryPersonalNumbers`);
/// every read fails when `down`.
struct AdNumbers {
    hashes: std::collections::HashMap<&'static str, &'static str>,
    down: bool,
}

#[async_trait::async_trait]
impl crate::enrolment::PersonalNumbers for AdNumbers {
    async fn hash_of(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        if self.down {
            return Err(DirectoryError::Timeout { url: "ldaps://dc".into(), seconds: 5 });
        }
        Ok(self.hashes.get(user_id).map(|h| h.to_string()))
    }
}

/// An agent whose staff account has nothing enrolled is known by the personal number AD holds
/// for it: they cannot lift the cooling-off of their everyday account, which has the BankID of
/// that number. An agent the portal cannot compare with an account at all lifts nothing on it,
/// nor does one whose AD does not answer; each refusal is audited.
#[tokio::test]
async fn an_agent_with_nothing_enrolled_is_known_by_their_personal_number_in_ad() {
    let (store, _dir) = crate::testing::store().await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
    let auditor = Auditor::new(store.clone(), clock.clone());
    let service = |numbers: Option<AdNumbers>| {
        let s = Desk::new(store.clone(), clock.clone(), auditor.clone(), 600, 24 * HOUR);
        match numbers {
            Some(n) => s.with_personal_numbers(Arc::new(n)),
            None => s,
        }
    };
    let t0 = clock.now() - 48 * HOUR;
    let record = |user: &str, hash: &str| bankid(user, hash, t0);
    for (user, hash) in [("everyday", "agents-pn"), ("other", "others-pn")] {
        assert!(store.enrol_bankid(&record(user, hash), EnrolMode::Add).await.unwrap());
    }
    let agent = Owner { user_id: "agent-staff", account_name: "agent-staff", password_set: None };
    let lift = async |service: &Desk, user| {
        let proof = Some((ServiceKind::BankId, clock.now()));
        let target = Owner { user_id: user, account_name: user, password_set: None };
        service.lift_cooldown(agent, false, target, proof, &[ServiceKind::Sms], &crate::testing::meta()).await.unwrap()
    };
    // Without personal numbers from AD, nothing to compare the staff account with.
    let plain = service(None);
    assert_eq!(lift(&plain, "everyday").await, Lift::CannotTell);
    assert_eq!(lift(&plain, "other").await, Lift::CannotTell);
    let ad = AdNumbers { hashes: [("agent-staff", "agents-pn"), ("other", "others-pn")].into(), down: false };
    let with_ad = service(Some(ad));
    assert_eq!(lift(&with_ad, "everyday").await, Lift::OwnAccount);
    // Another person's account is not refused as the agent's own (its BankID, out of its
    // cooling-off, had nothing to lift).
    assert_eq!(lift(&with_ad, "other").await, Lift::NothingLifted);
    let down = service(Some(AdNumbers { hashes: Default::default(), down: true }));
    assert_eq!(lift(&down, "other").await, Lift::DirectoryDown);
    let audit = store.recent_audit(50).await.unwrap();
    for why in ["@lift_own?", "@lift_cannot_tell?", "@lift_directory_down?"] {
        assert!(
            audit.iter().any(|a| a.outcome == "blocked" && a.detail.as_deref().unwrap_or("").contains(why)),
            "{why} audited: {audit:?}"
        );
    }
}

/// The service desk does not lift a privileged account's cooling-off (adminCount=1 here, or in
/// a protected group); an administrator does. When AD cannot tell, nothing is lifted, and that
/// is what is said; an id of no account is not verified. Before a verification of the caller,
/// nothing is said of the account at all.
#[tokio::test]
async fn only_an_administrator_lifts_a_privileged_accounts_cooling_off() {
    let (store, _dir) = crate::testing::store().await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
    let auditor = Auditor::new(store.clone(), clock.clone());
    let directory = Arc::new(crate::directory::fake::FakeDirectory::default());
    let (boss, clerk) = (directory.add_user("boss", "x"), directory.add_user("clerk", "x"));
    directory.set_attribute(&boss.dn, "adminCount", "1");
    let privileged = crate::directory::Privileged::new(directory.clone(), Vec::new());
    let service =
        Desk::new(store.clone(), clock.clone(), auditor, 600, 24 * HOUR).with_privileged(privileged).without_bankid();
    let record = |user: &str, number: &str| sms(user, number, clock.now() - 48 * HOUR);
    // "gone": enrolled, then gone from AD.
    let users = [("agent", "agents"), (boss.id.as_str(), "boss's"), (clerk.id.as_str(), "clerk's"), ("gone", "gone's")];
    for (user, number) in users {
        assert_eq!(store.enrol_sms(&record(user, number), EnrolMode::Add, None).await.unwrap(), EnrolWrite::Done);
    }
    // The boss's BankID, enrolled an hour ago, cools off.
    assert!(store.enrol_bankid(&bankid(&boss.id, "boss-pn", clock.now() - HOUR), EnrolMode::Add).await.unwrap());
    let agent = Owner { user_id: "agent", account_name: "agent", password_set: None };
    let lift = async |admin, user: &str, proved: bool| {
        let proof = proved.then(|| (ServiceKind::Sms, clock.now()));
        let target = Owner { user_id: user, account_name: user, password_set: None };
        service
            .lift_cooldown(agent, admin, target, proof, &[ServiceKind::BankId], &crate::testing::meta())
            .await
            .unwrap()
    };
    assert_eq!(lift(false, &boss.id, false).await, Lift::NotVerified, "nothing told before a verification");
    assert_eq!(lift(false, &boss.id, true).await, Lift::Privileged);
    assert_eq!(lift(false, &clerk.id, true).await, Lift::NothingLifted, "not privileged: the lift goes on");
    assert_eq!(lift(false, "gone", true).await, Lift::NotVerified);
    assert_eq!(lift(true, &boss.id, true).await, Lift::Lifted(1), "an administrator lifts it");
    // What the verdict page offers.
    assert_eq!(service.may_lift(false, &boss.id).await, Some(false));
    assert_eq!(service.may_lift(true, &boss.id).await, Some(true));
    assert_eq!(service.may_lift(false, &clerk.id).await, Some(true));
    directory.set_down(true);
    assert_eq!(lift(false, &clerk.id, true).await, Lift::DirectoryDown, "AD cannot tell");
    assert_eq!(service.may_lift(false, &clerk.id).await, None);
    let audit = store.recent_audit(50).await.unwrap();
    for why in ["@lift_privileged?", "@lift_no_account?", "@lift_directory_down?"] {
        assert!(
            audit.iter().any(|a| a.outcome == "blocked" && a.detail.as_deref().unwrap_or("").starts_with(why)),
            "{why} audited"
        );
    }
}

/// A service cooling off again only because the portal kept a password set that AD no longer
/// tells (a later set hid it) is lifted like any other: the desk's window follows what was kept.
#[tokio::test]
async fn the_desk_lifts_a_cooling_off_started_again_by_a_kept_set() {
    let (store, _dir) = crate::testing::store().await;
    let manual = ManualClock::starting_now();
    let clock: Arc<dyn Clock> = Arc::new(manual.clone());
    let auditor = Auditor::new(store.clone(), clock.clone());
    let t0 = clock.now() - 25 * HOUR;
    let service = Desk::new(store.clone(), clock.clone(), auditor, 600, 24 * HOUR).without_bankid();
    for (user, number) in [("agent", "agents"), ("u", "users")] {
        let record = sms(user, number, t0 - 48 * HOUR);
        assert_eq!(store.enrol_sms(&record, EnrolMode::Add, None).await.unwrap(), EnrolWrite::Done);
    }
    assert!(store.enrol_bankid(&bankid("u", "h", t0), EnrolMode::Add).await.unwrap());
    assert!(store.record_restart("u", "bankid", t0, t0 + 3 * HOUR).await.unwrap());
    // AD now tells a later set, a day after the BankID was enrolled.
    let ad_set = crate::directory::filetime_of(t0 + 25 * HOUR - 60).to_string();
    let agent = Owner { user_id: "agent", account_name: "agent", password_set: None };
    let target = Owner { user_id: "u", account_name: "u", password_set: Some(&ad_set) };
    let proof = Some((ServiceKind::Sms, clock.now()));
    let meta = crate::testing::meta();
    let lift = service.lift_cooldown(agent, false, target, proof, &[ServiceKind::BankId], &meta);
    assert_eq!(lift.await.unwrap(), Lift::Lifted(1));
}
