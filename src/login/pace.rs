//! When an answer to a password may be given: never before `login.min_response_ms`, and, when the
//! directory is slower than that, not before the answers that tried an account's password lately
//! took (the slowest tenth of them aside), so that nothing an account costs more than a name of
//! nobody (the DC's work on a wrong password, a search for its policy, a statement for its count)
//! shows in the time. At most eight times the configured floor: a DC slower than that shows.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How many of the latest answers that tried an account are kept, and for how long.
const KEPT: usize = 64;
const KEPT_FOR: Duration = Duration::from_secs(600);
/// The floor grows to at most this many times the configured one.
const CAP: u32 = 8;

pub(super) struct Pacer {
    min: Duration,
    recent: Mutex<VecDeque<(Instant, Duration)>>,
}

/// One answer's clock, from when the password came.
pub(super) struct Watch {
    started: Instant,
    tried: AtomicBool,
}

impl Watch {
    /// An account's password was tried (the answer is one a name of nobody must not be told from).
    pub(super) fn tried(&self) {
        self.tried.store(true, Ordering::Relaxed);
    }
}

impl Pacer {
    pub(super) fn new(min: Duration) -> Self {
        Self { min, recent: Mutex::new(VecDeque::with_capacity(KEPT)) }
    }

    pub(super) fn start(&self) -> Watch {
        Watch { started: Instant::now(), tried: AtomicBool::new(false) }
    }

    /// Waits until the answer may be given; an answer that tried an account's password is kept
    /// for the answers after it.
    pub(super) async fn answer(&self, watch: Watch) {
        let now = Instant::now();
        let floor = self.floor(now);
        if watch.tried.load(Ordering::Relaxed) {
            self.keep(now, now - watch.started);
        }
        tokio::time::sleep_until(watch.started + floor).await;
    }

    fn floor(&self, now: Instant) -> Duration {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent.front().is_some_and(|(at, _)| now.duration_since(*at) > KEPT_FOR) {
            recent.pop_front();
        }
        let mut took: Vec<Duration> = recent.iter().map(|(_, d)| *d).collect();
        drop(recent);
        if took.is_empty() {
            return self.min;
        }
        took.sort_unstable();
        let ninetieth = took[(took.len() * 9 / 10).min(took.len() - 1)];
        ninetieth.clamp(self.min, self.min * CAP)
    }

    fn keep(&self, at: Instant, took: Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back((at, took));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn the_floor_follows_the_answers_that_tried_an_account_within_limits() {
        let pacer = Pacer::new(100 * MS);
        let now = Instant::now();
        assert_eq!(pacer.floor(now), 100 * MS, "nothing tried yet");
        pacer.keep(now, 50 * MS);
        assert_eq!(pacer.floor(now), 100 * MS, "never below the configured floor");
        for _ in 0..9 {
            pacer.keep(now, 300 * MS);
        }
        pacer.keep(now, 5000 * MS);
        // Eleven kept: the tenth of them that were slowest (one) aside.
        assert_eq!(pacer.floor(now), 300 * MS);
        pacer.keep(now, 5000 * MS);
        assert_eq!(pacer.floor(now), 800 * MS, "at most eight times the configured floor");
        // Ten minutes later they are forgotten.
        assert_eq!(pacer.floor(now + KEPT_FOR + MS), 100 * MS);
    }

    #[tokio::test]
    async fn only_answers_that_tried_an_account_count() {
        let pacer = Pacer::new(10 * MS);
        let nobody = pacer.start();
        tokio::time::sleep(200 * MS).await;
        pacer.answer(nobody).await;
        assert_eq!(pacer.floor(Instant::now()), 10 * MS);
        let account = pacer.start();
        account.tried();
        tokio::time::sleep(200 * MS).await;
        pacer.answer(account).await;
        assert_eq!(pacer.floor(Instant::now()), 80 * MS);
    }

    #[tokio::test]
    async fn no_floor_configured_means_none() {
        let pacer = Pacer::new(Duration::ZERO);
        pacer.keep(Instant::now(), 300 * MS);
        assert_eq!(pacer.floor(Instant::now()), Duration::ZERO);
    }
}
