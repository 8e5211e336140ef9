//! Counting events per key in a sliding window: failures at guessable things, and costly sends.

use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::storage::{Storage, StorageError};

/// A limit: at most `max_failures` within `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_failures: u32,
    pub window_seconds: i64,
}

/// An attempt counted against a limit, until it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    id: i64,
    /// This was the last attempt the limit allows for now.
    pub last: bool,
}

/// What a reservation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    Granted(Attempt),
    /// The limit is reached; wait this many seconds.
    Blocked {
        wait: i64,
    },
}

#[derive(Clone)]
pub struct Throttle {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
}

impl Throttle {
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// `Some(seconds)` to wait when the key has used up its failures; `None` when it may try.
    pub async fn blocked_for(&self, scope: &str, key: &str, limit: Limit) -> Result<Option<i64>, StorageError> {
        let now = self.clock.now();
        let failures = self.store.failures_since(scope, key, now - limit.window_seconds).await?;
        let wait = wait(&failures, now, limit);
        if wait.is_some() {
            crate::monitoring::rate_limit_block(scope);
        }
        Ok(wait)
    }

    /// Record-then-decide: counts this attempt against the key unless the limit is reached, in one
    /// step, so that parallel attempts can never all slip under the limit.
    pub async fn reserve(&self, scope: &str, key: &str, limit: Limit) -> Result<Reserve, StorageError> {
        let now = self.clock.now();
        let since = now - limit.window_seconds;
        let max = limit.max_failures.max(1) as i64;
        match self.store.reserve_attempt(scope, key, now, since, max).await? {
            Some((id, position)) => Ok(Reserve::Granted(Attempt { id, last: position >= max })),
            None => {
                crate::monitoring::rate_limit_block(scope);
                let failures = self.store.failures_since(scope, key, since).await?;
                Ok(Reserve::Blocked { wait: wait(&failures, now, limit).unwrap_or(limit.window_seconds) })
            }
        }
    }

    /// Record-then-decide as AD counts bad passwords (see [`ThrottleStore::reserve_in_run`]):
    /// `limit.window_seconds` is the quiet time that starts a new run. Blocked: until the newest
    /// failure is that long ago.
    ///
    /// [`ThrottleStore::reserve_in_run`]: crate::storage::ThrottleStore::reserve_in_run
    pub async fn reserve_run(&self, scope: &str, key: &str, limit: Limit) -> Result<Reserve, StorageError> {
        let now = self.clock.now();
        let max = limit.max_failures.max(1) as i64;
        match self.store.reserve_in_run(scope, key, now, limit.window_seconds, max).await? {
            Some((id, position)) => Ok(Reserve::Granted(Attempt { id, last: position >= max })),
            None => {
                crate::monitoring::rate_limit_block(scope);
                let newest = self.store.failures_since(scope, key, now - max * limit.window_seconds).await?;
                let wait = newest.first().map(|at| at + limit.window_seconds - now).unwrap_or(limit.window_seconds);
                Ok(Reserve::Blocked { wait: wait.max(1) })
            }
        }
    }

    /// Takes an attempt back: it was no failure (the password was right).
    pub async fn release(&self, attempt: Attempt) -> Result<(), StorageError> {
        self.store.release_attempts(&[attempt.id], None).await
    }

    /// Takes attempts back and, with `clear`, forgets every failure of that (scope, key): one step.
    pub async fn release_all(&self, attempts: &[Attempt], clear: Option<(&str, &[&str])>) -> Result<(), StorageError> {
        let ids: Vec<i64> = attempts.iter().map(|a| a.id).collect();
        self.store.release_attempts(&ids, clear).await
    }

    /// Counts one event (a failure, or a text message sent) against the key.
    pub async fn fail(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        self.store.record_failure(scope, key, self.clock.now()).await
    }

    pub async fn clear(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        self.store.clear_failures(scope, key).await
    }
}

/// The key an address is counted under: an IPv4 address as it is, an IPv6 address by its /64
/// (one subscriber usually has a whole /64).
pub fn address_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        _ => address.to_string(),
    }
}

/// With failures (newest first) inside the window: how long until one more attempt is allowed.
fn wait(failures_newest_first: &[Timestamp], now: Timestamp, limit: Limit) -> Option<i64> {
    let max = limit.max_failures.max(1) as usize;
    if failures_newest_first.len() < max {
        return None;
    }
    // The attempt frees up when the max-th newest failure leaves the window.
    let pivot = failures_newest_first[max - 1];
    Some((pivot + limit.window_seconds - now).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), address_key("2001:db8:1:2:aaaa::1"));
        assert_ne!(address_key("2001:db8:1:3::1"), address_key("2001:db8:1:2::1"));
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7");
    }

    const LIMIT: Limit = Limit { max_failures: 3, window_seconds: 900 };

    #[test]
    fn under_the_limit_may_try() {
        assert_eq!(wait(&[], 1000, LIMIT), None);
        assert_eq!(wait(&[990, 980], 1000, LIMIT), None);
    }

    #[test]
    fn at_the_limit_waits_until_the_oldest_counted_failure_leaves_the_window() {
        assert_eq!(wait(&[990, 980, 700], 1000, LIMIT), Some(600));
        assert_eq!(wait(&[990, 980, 970, 200], 1000, LIMIT), Some(870));
    }

    #[test]
    fn never_says_wait_zero_seconds() {
        assert_eq!(wait(&[100, 100, 100], 1000, LIMIT), Some(1));
    }
}
