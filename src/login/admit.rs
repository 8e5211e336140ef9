//! Admitting a password try, before the password is tried: the address's and the name's limits
//! (counted first, decided after), the look-up, and the account's own count that keeps AD from
//! locking; and giving the counts back, or adding to them, after it.

use secrecy::SecretString;

use super::outcome::{Admit, Counted, LoginOutcome, Refusal, UserKeys};
use super::{LoginError, LoginService, entry};
use crate::audit::{Detail, Outcome, RequestMeta};
use crate::directory::{DirectoryError, PasswordPolicy, Username};
use crate::storage::StorageError;
use crate::throttle::{Limit, Reserve};

/// The scope a user's login failures are counted under.
pub const USER_SCOPE: &str = "login-user";
/// AD counts a failure when the bind reaches it, by its own clock: a quiet time that ends a run
/// of failures is taken as this much longer than AD's window.
const AD_CLOCK_SLACK: i64 = 120;
const IP_SCOPE: &str = "login-ip";

/// AD's default lockout observation window: the window counted over when the policy is unknown.
const UNKNOWN_WINDOW_SECONDS: i64 = 30 * 60;

impl LoginService {
    /// Failures allowed per user: the configured number, but always `lockout_margin` short of AD's
    /// threshold (the user's fine-grained one where a PSO applies), counted as AD counts them: a
    /// run of failures ends only after a quiet time longer than AD's observation window (the
    /// limit's window; [`Throttle::reserve_run`]), so failures spaced out just inside it cannot
    /// add up to a lockout. A policy that could not be read allows one failure per window (AD's
    /// threshold might be as low as that).
    pub(super) fn user_limit(&self, policy: Option<&PasswordPolicy>) -> Limit {
        let Some(policy) = policy else {
            let window = self.window_seconds.max(UNKNOWN_WINDOW_SECONDS) + AD_CLOCK_SLACK;
            return Limit { max_failures: 1, window_seconds: window };
        };
        let mut max = self.max_per_user;
        if policy.lockout_threshold > 0 {
            max = max.min(policy.lockout_threshold.saturating_sub(self.margin).max(1));
        }
        // AD locks nothing with a threshold of 0: its window does not matter then.
        let ad_window = if policy.lockout_threshold > 0 { policy.lockout_window_minutes as i64 * 60 } else { 0 };
        Limit { max_failures: max, window_seconds: self.window_seconds.max(ad_window) + AD_CLOCK_SLACK }
    }

    /// Everything before the password is tried: the address and user limits, and the look-up.
    /// The try is counted first and decided after (so that a burst of parallel tries can never all
    /// slip under the limit); unknown names count and read exactly like wrong passwords, and take
    /// as long: `password` is tried against a DN that is nobody's, so that a DC slower to answer
    /// than `login.min_response_ms` delays them as it delays an account's wrong password. None:
    /// the name is a logged-in user's own, and nothing is hidden from them.
    pub(super) async fn admit(
        &self,
        typed: &str,
        password: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<Admit, LoginError> {
        let name = Username::parse(typed, &self.netbios_domain);
        // What a name that matches no account is audited and counted under (as its tag): one
        // name however it is written (`EXAMPLE\x`, `x`).
        let said = name.as_ref().map(Username::key).unwrap_or_else(|_| typed.to_string());
        let ip_limit = Limit { max_failures: self.max_per_ip, window_seconds: self.window_seconds };
        let ip_key = crate::throttle::address_key(&meta.source_ip);
        let ip = match self.throttle.reserve(IP_SCOPE, &ip_key, ip_limit).await? {
            Reserve::Granted(attempt) => attempt,
            Reserve::Blocked { wait } => {
                self.auditor
                    .record(meta, entry(Outcome::Blocked, Detail::new("throttled_address")).typed(&said))
                    .await?;
                return Ok(Admit::Stop(throttled(wait)));
            }
        };

        let user = match &name {
            Ok(name) => self.directory.find_user(name).await?,
            Err(_) => None,
        };
        // Unknown names are throttled like real ones, so the limit reveals nothing; they are
        // counted under their tag, never as typed (it may be a password).
        let name_key = |name: &str| format!("name:{}", self.auditor.tag(name));
        let names = match &user {
            Some(u) => [Some(&u.account_name), u.principal_name.as_ref(), u.mail.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|n| Username::parse(n, &self.netbios_domain).ok())
                .map(|n| name_key(&n.key()))
                .collect(),
            None => Vec::new(),
        };
        let keys = UserKeys { typed: name_key(&said), account: user.as_ref().map(|u| format!("id:{}", u.id)), names };
        // What a visitor is told (the count per name as typed) follows the domain's policy, the
        // same for every name: an account's own (a fine-grained policy's lower threshold, or one
        // the service account may not read) would tell it apart from a name that is nobody's.
        // The account's own count keeps to the account's policy, and is answered as a wrong
        // password when full.
        let domain = self.directory.password_policy(None).await.ok();
        let policy = match &user {
            Some(user) => self.directory.policy_of(user).await.ok(),
            None => domain.clone(),
        };
        let limit = self.user_limit(domain.as_ref());
        let own_limit = self.user_limit(policy.as_ref());
        let window_minutes = (limit.window_seconds + 59) / 60;
        let mut counted = match self.throttle.reserve_run(USER_SCOPE, &keys.typed, limit).await? {
            Reserve::Granted(attempt) => Counted { ip, user: attempt, account: None, window_minutes },
            Reserve::Blocked { wait } => {
                // Nothing was tried: the address's count is taken back.
                self.throttle.release(ip).await?;
                let event = entry(Outcome::Blocked, Detail::new("throttled_user"));
                self.auditor
                    .record(meta, if let Some(u) = &user { event.about(u) } else { event.typed(&said) })
                    .await?;
                return Ok(Admit::Stop(throttled(wait)));
            }
        };
        if let (Some(key), Some(u)) = (&keys.account, &user) {
            match self.throttle.reserve_run(USER_SCOPE, key, own_limit).await? {
                Reserve::Granted(attempt) => counted.account = Some(attempt),
                Reserve::Blocked { wait } => {
                    // Counted as a wrong password is (an unknown name's try is one too), and as
                    // slow: the password is not tried, but a bind as nobody takes its time.
                    self.bind_as_nobody(password).await?;
                    let event = entry(Outcome::Blocked, Detail::new("throttled_account")).about(u);
                    self.auditor.record(meta, event).await?;
                    return Ok(Admit::AccountFull { told: counted.wrong(), wait, counted });
                }
            }
        }

        let Some(user) = user else {
            if name.is_ok() {
                self.bind_as_nobody(password).await?;
            }
            let why = if name.is_err() { "not_an_account_name" } else { "no_such_user" };
            self.auditor.record(meta, entry(Outcome::Failure, Detail::new(why)).typed(&said)).await?;
            return Ok(Admit::Stop(LoginOutcome::Refused(counted.wrong())));
        };
        Ok(Admit::Go { user: Box::new(user), keys, counted, policy: policy.map(Box::new) })
    }

    /// Tries `password` against a DN that is nobody's, for the time it takes. A DC that cannot be
    /// reached fails it as it would fail an account's bind; any other answer than a wrong
    /// password's (a referral, a DN refused) is logged and taken as one, so that it can never tell
    /// a name of nobody from an account's.
    async fn bind_as_nobody(&self, password: Option<&SecretString>) -> Result<(), LoginError> {
        static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let Some(password) = password else { return Ok(()) };
        match self.directory.check_password(&self.nobodys_dn, password).await {
            Ok(_) => Ok(()),
            Err(DirectoryError::Protocol(answer)) => {
                if !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(
                        dn = %self.nobodys_dn, %answer,
                        "the bind as nobody was not answered as a wrong password (told once; see check-config)"
                    );
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The try was no failure (the password was right, or AD refused for another reason that it
    /// tells only with the right password): its counts are taken back.
    pub(super) async fn uncount(&self, counted: Counted) -> Result<(), StorageError> {
        self.throttle.release_all(&counted.attempts(), None).await
    }

    /// The password was right: the try's counts are taken back and the user's failures forgotten
    /// (under the account and each of its names).
    pub(super) async fn uncount_and_clear(&self, counted: Counted, keys: &UserKeys) -> Result<(), StorageError> {
        self.throttle.release_all(&counted.attempts(), Some((USER_SCOPE, &keys.cleared()))).await
    }

    pub(super) async fn count_failure(&self, keys: &UserKeys, meta: &RequestMeta) -> Result<(), StorageError> {
        for key in keys.all() {
            self.throttle.fail(USER_SCOPE, key).await?;
        }
        self.throttle.fail(IP_SCOPE, &crate::throttle::address_key(&meta.source_ip)).await
    }
}

pub(super) fn throttled(wait_seconds: i64) -> LoginOutcome {
    let minutes = (wait_seconds + 59) / 60;
    LoginOutcome::Refused(Refusal::Throttled { minutes })
}
