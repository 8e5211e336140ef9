//! When an answer to a password may be given. Never before `login.min_response_ms`. When the
//! directory is slower than that, an account's wrong password waits until its own time or the
//! time one of the latest wrong passwords of an account took, drawn at random, whichever is later;
//! an answer that reads the same without an account's password tried (a name of nobody, an account
//! whose own count is full) until the latest of its own time and two such draws, which is how the
//! first is distributed. The two then take the same time as a distribution, whatever AD does more
//! for an account (it checks the password and writes the account's count) or the portal (a search
//! for its policy, a statement for its count). Only wrong passwords of accounts are kept to draw
//! from (a success reads the user's roles, and is slower). Each costs its account a try, but
//! sixteen names are enough to fill the pool; with AD slowed on purpose, every wrong password
//! then waits up to the cap (eight times the floor) for ten minutes. While fewer than sixteen are
//! kept (a quiet instance), nothing is drawn, and what AD does more shows when it is slower than
//! the floor. Other answers (a success, a refusal only the right password gets, a logged-in user's
//! own) wait the floor.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{OsRandom, Random};

/// How many of the latest wrong passwords are kept, and for how long.
const KEPT: usize = 64;
const KEPT_FOR: Duration = Duration::from_secs(600);
/// Drawn from only when at least this many are kept.
const ENOUGH: usize = 16;
/// An answer waits at most this many times the configured floor.
const CAP: u32 = 8;

/// What an answer to a password turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// No account's password was tried (a name of nobody, an account whose own count is full).
    NothingTried,
    /// An account's password was tried and was wrong, and the answer says only that.
    Wrong,
    /// An account's password was tried and the answer says more (a success, an expired
    /// password), or it goes to someone who need not be kept from it (a logged-in user).
    Other,
}

pub(super) struct Pacer {
    min: Duration,
    recent: Mutex<VecDeque<(Instant, Duration)>>,
}

/// One answer's clock, from when the password came, and what the answer turned out to be.
pub(super) struct Watch {
    started: Instant,
    answer: Answer,
}

impl Watch {
    /// See [`Answer::Wrong`].
    pub(super) fn wrong(&mut self) {
        self.answer = Answer::Wrong;
    }

    /// See [`Answer::Other`].
    pub(super) fn other(&mut self) {
        self.answer = Answer::Other;
    }
}

impl Pacer {
    pub(super) fn new(min: Duration) -> Self {
        Self { min, recent: Mutex::new(VecDeque::with_capacity(KEPT)) }
    }

    pub(super) fn start(&self) -> Watch {
        Watch { started: Instant::now(), answer: Answer::NothingTried }
    }

    /// Waits until the answer may be given.
    pub(super) async fn answer(&self, watch: Watch) {
        let now = Instant::now();
        let wait = self.wait(watch.answer, now, &OsRandom);
        if watch.answer == Answer::Wrong {
            self.keep(now, now - watch.started);
        }
        tokio::time::sleep_until(watch.started + wait).await;
    }

    /// How long an answer waits from its start, by what it turned out to be.
    fn wait(&self, answer: Answer, now: Instant, random: &dyn Random) -> Duration {
        match answer {
            Answer::Other => self.min,
            Answer::Wrong => self.drawn(now, random),
            Answer::NothingTried => self.drawn(now, random).max(self.drawn(now, random)),
        }
    }

    /// How long a "wrong password" waits from its start: one of the latest wrong passwords' time,
    /// at random, when there are enough; within the floor and its cap.
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
    fn a_wrong_password_waits_as_long_as_one_drawn_from_the_latest() {
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
    async fn only_wrong_passwords_of_accounts_are_drawn_from() {
        let pacer = Pacer::new(10 * MS);
        for _ in 0..ENOUGH {
            let nobody = pacer.start();
            pacer.answer(nobody).await;
            let mut success = pacer.start();
            success.other();
            tokio::time::sleep(30 * MS).await;
            pacer.answer(success).await;
        }
        assert_eq!(pacer.drawn(Instant::now(), &OsRandom), 10 * MS);
        for _ in 0..ENOUGH {
            let mut account = pacer.start();
            account.wrong();
            tokio::time::sleep(30 * MS).await;
            pacer.answer(account).await;
        }
        let drawn = pacer.drawn(Instant::now(), &OsRandom);
        assert!(drawn >= 30 * MS && drawn <= 80 * MS, "{drawn:?}");
    }

    /// Draws the kept answers in turn.
    struct InTurn(std::sync::atomic::AtomicU64);
    impl Random for InTurn {
        fn fill(&self, buf: &mut [u8]) {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            buf.copy_from_slice(&n.to_le_bytes()[..buf.len()]);
        }
    }

    /// An account's wrong password ends at the later of its own time and a draw; an answer with
    /// no account's password tried (its own time short) at the later of two draws, which is
    /// distributed as the first.
    #[test]
    fn an_answer_with_nothing_tried_waits_the_later_of_two_draws() {
        let pacer = Pacer::new(10 * MS);
        let now = Instant::now();
        for n in 1..=ENOUGH as u32 {
            pacer.keep(now, 10 * n * MS);
        }
        let turn = InTurn(std::sync::atomic::AtomicU64::new(0));
        assert_eq!(pacer.wait(Answer::Wrong, now, &turn), 10 * MS);
        assert_eq!(pacer.wait(Answer::NothingTried, now, &turn), 30 * MS, "the second and third kept");
        assert_eq!(pacer.wait(Answer::Other, now, &turn), 10 * MS);
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
