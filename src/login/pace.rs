//! When an answer to a password may be given. Never before `login.min_response_ms`. When the
//! directory is slower than that, an answer that tried an account's password comes when it comes,
//! and one that tried none (a name of nobody, an account whose own count is full, a refusal before
//! any bind) waits as long as one of the latest answers that tried an account took, drawn at
//! random: the two kinds of answer then take the same time, as a distribution, whatever AD does
//! more for an account (it checks the password and writes the account's count) or the portal
//! (a search for its policy, a statement for its count). A draw needs enough answers to draw
//! from, so that a few tries (a visitor's own) cannot set what the next visitor waits; and never
//! more than eight times the floor.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{OsRandom, Random};

/// How many of the latest answers that tried an account are kept, and for how long.
const KEPT: usize = 64;
const KEPT_FOR: Duration = Duration::from_secs(600);
/// Answers drawn from only when at least this many are kept.
const ENOUGH: usize = 16;
/// An answer waits at most this many times the configured floor.
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
    /// An account's password was tried.
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

    /// Waits until the answer may be given.
    pub(super) async fn answer(&self, watch: Watch) {
        let now = Instant::now();
        let wait = if watch.tried.load(Ordering::Relaxed) {
            self.keep(now, now - watch.started);
            self.min
        } else {
            self.drawn(now, &OsRandom)
        };
        tokio::time::sleep_until(watch.started + wait).await;
    }

    /// How long an answer that tried no password waits: one of the latest answers that tried
    /// one, at random, when there are enough; within the floor and its cap.
    fn drawn(&self, now: Instant, random: &dyn Random) -> Duration {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent.front().is_some_and(|(at, _)| now.duration_since(*at) > KEPT_FOR) {
            recent.pop_front();
        }
        if recent.len() < ENOUGH {
            return self.min;
        }
        let mut bytes = [0u8; 8];
        random.fill(&mut bytes);
        let pick = (u64::from_le_bytes(bytes) % recent.len() as u64) as usize;
        recent[pick].1.clamp(self.min, self.min.saturating_mul(CAP))
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

    /// Draws the n-th of the kept answers.
    struct Picks(u64);
    impl Random for Picks {
        fn fill(&self, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.to_le_bytes()[..buf.len()]);
        }
    }

    #[test]
    fn an_answer_that_tried_nothing_waits_as_long_as_one_that_tried_an_account() {
        let pacer = Pacer::new(100 * MS);
        let now = Instant::now();
        for _ in 0..ENOUGH - 1 {
            pacer.keep(now, 300 * MS);
        }
        assert_eq!(pacer.drawn(now, &Picks(0)), 100 * MS, "too few to draw from: a visitor's own tries set nothing");
        pacer.keep(now, 5000 * MS);
        pacer.keep(now, 50 * MS);
        assert_eq!(pacer.drawn(now, &Picks(0)), 300 * MS);
        assert_eq!(pacer.drawn(now, &Picks(ENOUGH as u64 - 1)), 800 * MS, "at most eight times the floor");
        assert_eq!(pacer.drawn(now, &Picks(ENOUGH as u64)), 100 * MS, "never below the floor");
        assert_eq!(pacer.drawn(now + KEPT_FOR + MS, &Picks(0)), 100 * MS, "ten minutes later they are forgotten");
    }

    #[tokio::test]
    async fn only_answers_that_tried_an_account_are_drawn_from() {
        let pacer = Pacer::new(10 * MS);
        for _ in 0..ENOUGH {
            let nobody = pacer.start();
            pacer.answer(nobody).await;
        }
        assert_eq!(pacer.drawn(Instant::now(), &OsRandom), 10 * MS);
        for _ in 0..ENOUGH {
            let account = pacer.start();
            account.tried();
            tokio::time::sleep(30 * MS).await;
            pacer.answer(account).await;
        }
        let drawn = pacer.drawn(Instant::now(), &OsRandom);
        assert!(drawn >= 30 * MS && drawn <= 80 * MS, "{drawn:?}");
    }

    #[test]
    fn no_floor_configured_means_none() {
        let pacer = Pacer::new(Duration::ZERO);
        for _ in 0..ENOUGH {
            pacer.keep(Instant::now(), 300 * MS);
        }
        assert_eq!(pacer.drawn(Instant::now(), &OsRandom), Duration::ZERO);
    }
}
