//! Several domain controllers of one domain, with failover.
//!
//! Every operation goes to the first DC in the configured order that is not marked down. A DC that
//! refuses connections or does not answer in time is marked down for `failover_seconds`, and the
//! operation goes to the next one. When every DC is marked down, all are tried again in order.
//!
//! Only what is safe to send twice moves on after it was sent: a search that timed out is asked of
//! the next DC, but a bind or a write moves on only when its connection could not be had (a bind
//! that reached a DC may have counted a wrong password there; a change that reached it may have
//! been made).
//!
//! After a password write or an unlock, the user is pinned to the DC that made it for
//! [`PIN_SECONDS`]: their next bind and writes go there first, so replication lag never tells a
//! user "wrong password" (or "locked") right after a reset. The pin is this process's; Windows DCs
//! also forward a failed bind to the PDC emulator, which has every password change at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use secrecy::SecretString;

use super::pool::{Link, PoolStatus, Pools};
use super::{DirectoryError, PasswordWriteError};
use crate::config::DirectorySettings;

/// A user DN to pin to the DC that answered, when the answer says the write was made.
type Pin<'d, T> = (&'d str, fn(&T) -> bool);

/// How long a user stays with the DC that wrote their password or unlocked them.
pub const PIN_SECONDS: u64 = 15 * 60;
const MAX_PINS: usize = 10_000;

/// One domain controller: how to reach it, its connection pools, and until when it is skipped.
pub(super) struct Dc {
    pub link: Link,
    pub pools: Pools,
    down_until: Mutex<Option<Instant>>,
}

/// How one domain controller is doing, for monitoring and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcStatus {
    pub url: String,
    /// Operations go here now (the first DC not marked down).
    pub in_use: bool,
    /// Skipped after a failure, for this many more seconds.
    pub down_for_seconds: Option<u64>,
    pub pools: PoolStatus,
}

/// Where an operation failed: before anything reached the DC (its connection could not be had), or
/// after the request was sent.
#[derive(Debug)]
pub(super) enum Tried<E> {
    Before(E),
    After(E),
}

impl<E> Tried<E> {
    pub fn into_inner(self) -> E {
        match self {
            Tried::Before(e) | Tried::After(e) => e,
        }
    }
}

/// What an operation's error says for failover: whether the DC was unreachable, and whether the
/// request had been sent.
trait Retry {
    fn what(&self) -> (bool, bool);
    fn describe(&self) -> String;
}

impl Retry for DirectoryError {
    fn what(&self) -> (bool, bool) {
        (self.unreachable(), true)
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl<E: Unreachable + std::fmt::Display> Retry for Tried<E> {
    fn what(&self) -> (bool, bool) {
        match self {
            Tried::Before(e) => (e.unreachable(), false),
            Tried::After(e) => (e.unreachable(), true),
        }
    }
    fn describe(&self) -> String {
        match self {
            Tried::Before(e) | Tried::After(e) => e.to_string(),
        }
    }
}

/// Errors that say a DC could not be reached (refused, or no answer in time).
pub(super) trait Unreachable {
    fn unreachable(&self) -> bool;
}

impl Unreachable for DirectoryError {
    fn unreachable(&self) -> bool {
        // A certificate that fails verification is refused before anything is sent: the next DC
        // (verified too) may be fine.
        matches!(
            self,
            DirectoryError::Unreachable { .. }
                | DirectoryError::Timeout { .. }
                | DirectoryError::Dropped { .. }
                | DirectoryError::UntrustedCertificate { .. }
        )
    }
}

impl Unreachable for PasswordWriteError {
    fn unreachable(&self) -> bool {
        matches!(self, PasswordWriteError::Directory(e) if e.unreachable())
    }
}

pub(super) struct Dcs {
    dcs: Vec<Dc>,
    failover: Duration,
    /// User DN (lower case) → the DC that last wrote their password, and until when.
    pins: Mutex<HashMap<String, (usize, Instant)>>,
}

impl Dcs {
    pub fn new(s: &DirectorySettings, bind_password: SecretString) -> Result<Self, DirectoryError> {
        let mut dcs = Vec::new();
        for url in s.urls() {
            let link = Link::new(s, &url)?;
            let pools = Pools::new(&link, s, bind_password.clone());
            dcs.push(Dc { link, pools, down_until: Mutex::new(None) });
        }
        if dcs.is_empty() {
            return Err(DirectoryError::Protocol("no domain controller is configured (directory.urls)".into()));
        }
        Ok(Self { dcs, failover: Duration::from_secs(s.failover_seconds), pins: Mutex::new(HashMap::new()) })
    }

    fn down(&self, i: usize) -> Option<Duration> {
        let until = *self.dcs[i].down_until.lock().unwrap_or_else(|e| e.into_inner());
        until.and_then(|t| t.checked_duration_since(Instant::now()))
    }

    fn mark_down(&self, i: usize, e: &dyn std::fmt::Display) {
        let dc = &self.dcs[i];
        *dc.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + self.failover);
        if self.dcs.len() > 1 {
            tracing::warn!(dc = %dc.link.url, error = %e, seconds = self.failover.as_secs(),
                "a domain controller is unreachable: the next one is used for a while");
        }
    }

    fn mark_up(&self, i: usize) {
        let mut until = self.dcs[i].down_until.lock().unwrap_or_else(|e| e.into_inner());
        if until.take().is_some() && self.dcs.len() > 1 {
            tracing::info!(dc = %self.dcs[i].link.url, "a domain controller answers again");
        }
    }

    fn pinned(&self, user_dn: Option<&str>) -> Option<usize> {
        let dn = user_dn?.to_lowercase();
        let pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        pins.get(&dn).filter(|(_, until)| *until > Instant::now()).map(|(i, _)| *i)
    }

    /// The order to try the DCs in: the user's pinned DC, then the others as configured, those not
    /// marked down first.
    fn order(&self, user_dn: Option<&str>) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dcs.len()).collect();
        order.sort_by_key(|i| self.down(*i).is_some());
        if let Some(pin) = self.pinned(user_dn).filter(|i| self.down(*i).is_none()) {
            order.retain(|i| *i != pin);
            order.insert(0, pin);
        }
        order
    }

    fn pin(&self, user_dn: &str, i: usize) {
        let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if pins.len() >= MAX_PINS {
            pins.retain(|_, (_, until)| *until > now);
        }
        if pins.len() < MAX_PINS {
            pins.insert(user_dn.to_lowercase(), (i, now + Duration::from_secs(PIN_SECONDS)));
        }
    }

    /// Runs a read (safe to ask again) on the first DC that answers.
    pub async fn read<'a, T>(
        &'a self,
        user_dn: Option<&str>,
        op: impl Fn(&'a Dc) -> BoxFuture<'a, Result<T, DirectoryError>>,
    ) -> Result<T, DirectoryError> {
        self.run(user_dn, None, op, true).await.map_err(Tried::into_inner)
    }

    /// Runs a bind or a write: it moves to the next DC only when its connection could not be had
    /// (the operation says so with [`Tried::Before`]). `pin`: when the answer says the write was
    /// made, the user is pinned to the DC that made it. The error says whether the request was
    /// sent (after which a write may have been made even without an answer).
    pub async fn write<'a, T, E: Unreachable + std::fmt::Display>(
        &'a self,
        user_dn: &str,
        pin: Option<fn(&T) -> bool>,
        op: impl Fn(&'a Dc) -> BoxFuture<'a, Result<T, Tried<E>>>,
    ) -> Result<T, Tried<E>> {
        let result = self.run(Some(user_dn), pin.map(|made| (user_dn, made)), op, false).await;
        result.map_err(Tried::into_inner)
    }

    /// `op`'s errors are `Tried<E>` for writes and `E` (always after sending) for reads.
    async fn run<'a, T, R: Retry>(
        &'a self,
        user_dn: Option<&str>,
        pin: Option<Pin<'_, T>>,
        op: impl Fn(&'a Dc) -> BoxFuture<'a, Result<T, R>>,
        again_after_sending: bool,
    ) -> Result<T, Tried<R>> {
        let order = self.order(user_dn);
        let last = order.len() - 1;
        for (n, i) in order.into_iter().enumerate() {
            match op(&self.dcs[i]).await {
                Ok(value) => {
                    self.mark_up(i);
                    if let Some((dn, made)) = pin
                        && made(&value)
                    {
                        self.pin(dn, i);
                    }
                    return Ok(value);
                }
                Err(e) => {
                    let (unreachable, sent) = e.what();
                    if unreachable {
                        self.mark_down(i, &e.describe());
                    }
                    if !unreachable || (sent && !again_after_sending) || n == last {
                        return Err(Tried::After(e));
                    }
                }
            }
        }
        unreachable!("at least one domain controller is configured")
    }

    pub fn status(&self) -> Vec<DcStatus> {
        let in_use = self.order(None).first().copied();
        self.dcs
            .iter()
            .enumerate()
            .map(|(i, dc)| DcStatus {
                url: dc.link.url.clone(),
                in_use: in_use == Some(i),
                down_for_seconds: self.down(i).map(|d| d.as_secs().max(1)),
                pools: dc.pools.status(),
            })
            .collect()
    }

    /// Every DC, for a check of each.
    pub fn each(&self) -> impl Iterator<Item = &Dc> {
        self.dcs.iter()
    }
}

/// Asks one DC who we are, on a pooled service connection (which may be older than the DC's last
/// restart, so it is asked something).
pub(super) async fn who_am_i(dc: &Dc) -> Result<(), DirectoryError> {
    let mut conn = dc.pools.service().await?;
    let result = dc.link.timed(conn.extended(ldap3::exop::WhoAmI)).await;
    conn.settle(result).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn dcs(urls: &[&str]) -> Dcs {
        let list: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
        let s: DirectorySettings = toml::from_str(&format!(
            "urls = [{}]\nbind_dn = \"CN=svc\"\nbase_dn = \"DC=x\"\nnetbios_domain = \"X\"",
            list.join(", ")
        ))
        .unwrap();
        Dcs::new(&s, SecretString::from("pw")).unwrap()
    }

    fn unreachable(url: &str) -> DirectoryError {
        DirectoryError::Unreachable { url: url.into(), reason: "refused".into() }
    }

    #[test]
    fn the_first_dc_not_marked_down_is_used_and_a_pinned_user_goes_to_their_dc() {
        let d = dcs(&["ldaps://dc1", "ldaps://dc2", "ldaps://dc3"]);
        assert_eq!(d.order(None), [0, 1, 2]);
        d.mark_down(0, &"refused");
        assert_eq!(d.order(None), [1, 2, 0], "a DC marked down is tried last");
        assert!(d.status()[1].in_use && d.status()[0].down_for_seconds.is_some());
        d.pin("CN=Anna,DC=x", 2);
        assert_eq!(d.order(Some("cn=anna,dc=x")), [2, 1, 0], "the pinned DC first, whatever the case");
        d.mark_down(2, &"refused");
        assert_eq!(d.order(Some("CN=Anna,DC=x")), [1, 0, 2], "unless it is down");
        d.mark_up(0);
        assert_eq!(d.order(None), [0, 1, 2]);
    }

    #[tokio::test]
    async fn a_read_moves_on_but_a_write_that_was_sent_does_not() {
        let d = dcs(&["ldaps://dc1", "ldaps://dc2"]);
        let calls = AtomicUsize::new(0);
        let read = d
            .read(None, |dc| {
                calls.fetch_add(1, Ordering::SeqCst);
                let url = dc.link.url.clone();
                Box::pin(async move { if url.ends_with("dc1") { Err(unreachable(&url)) } else { Ok(url) } })
            })
            .await;
        assert_eq!(read.unwrap(), "ldaps://dc2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // dc1 is now marked down: writes go to dc2 first. Make dc2 time out after sending.
        let calls = AtomicUsize::new(0);
        let write: Result<(), Tried<DirectoryError>> = d
            .write("CN=Anna,DC=x", Some(|_: &_| true), |dc| {
                calls.fetch_add(1, Ordering::SeqCst);
                let url = dc.link.url.clone();
                Box::pin(async move { Err(Tried::After(DirectoryError::Timeout { url, seconds: 1 })) })
            })
            .await;
        assert!(matches!(write, Err(Tried::After(DirectoryError::Timeout { .. }))), "told it was sent");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a write that may have been made is not made again");

        // Not connected at all: the next DC is tried, and the user is pinned to the one that wrote.
        let d = dcs(&["ldaps://dc1", "ldaps://dc2"]);
        let write = d
            .write("CN=Anna,DC=x", Some(|_: &_| true), |dc| {
                let url = dc.link.url.clone();
                Box::pin(
                    async move { if url.ends_with("dc1") { Err(Tried::Before(unreachable(&url))) } else { Ok(url) } },
                )
            })
            .await;
        assert_eq!(write.unwrap(), "ldaps://dc2");
        d.mark_up(0);
        assert_eq!(d.order(Some("CN=Anna,DC=x")), [1, 0], "pinned to the DC that wrote");
        assert_eq!(d.order(None), [0, 1]);
    }

    #[tokio::test]
    async fn other_errors_never_move_on() {
        let d = dcs(&["ldaps://dc1", "ldaps://dc2"]);
        let calls = AtomicUsize::new(0);
        let read: Result<(), DirectoryError> = d
            .read(None, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Err(DirectoryError::Protocol("no such thing".into())) })
            })
            .await;
        assert!(read.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(d.order(None), [0, 1], "nothing marked down");
    }
}
