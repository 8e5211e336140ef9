//! Where a reset flow stands, as a typed state machine kept server-side.
//!
//! ```text
//! Identifying ──a service verified──▶ Verified ──claimed──▶ Writing ──AD written──▶ Done
//!                                        ▲                    │
//!                                        └── AD refused it ───┘
//!      │                                 │
//!      └──── too many failures ──▶ Failed ◀┘          any open state ──past its time──▶ Expired
//!
//!   any open state ──the password changed meanwhile (not by this flow)──▶ Superseded
//! ```
//!
//! Each transition takes `now` (or what it depends on) and returns the next state or a refusal;
//! handlers only ask questions of the state (`is_open`, `finished`), never compare strings.

use crate::clock::Timestamp;

/// How a finished flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// A new password was set (and the account unlocked, as configured).
    Reset,
    /// Only the account was unlocked.
    Unlock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetState {
    /// Nothing proved yet.
    Identifying,
    /// At least one service proved.
    Verified,
    /// One request is writing the password (or unlocking): nobody else may.
    Writing,
    Done(Finish),
    Failed,
    Expired,
    /// The account's password was changed after the flow began (by its owner, another reset, an
    /// administrator): what the flow proved is not taken as leave to overwrite it.
    Superseded,
}

/// A transition the state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reset flow is no longer open")]
pub struct NotOpen;

impl ResetState {
    /// The state as stored: the `state` column and the `outcome` column.
    pub fn stored(self) -> (&'static str, Option<&'static str>) {
        match self {
            ResetState::Identifying => ("identifying", None),
            ResetState::Verified => ("verified", None),
            ResetState::Writing => ("writing", None),
            ResetState::Done(Finish::Reset) => ("done", Some("reset")),
            ResetState::Done(Finish::Unlock) => ("done", Some("unlock")),
            ResetState::Failed => ("failed", None),
            ResetState::Expired => ("expired", None),
            ResetState::Superseded => ("superseded", None),
        }
    }

    /// Reads the stored columns back; anything unknown is a failed flow (never an open one).
    pub fn from_stored(state: &str, outcome: Option<&str>) -> ResetState {
        match (state, outcome) {
            ("identifying", _) => ResetState::Identifying,
            ("verified", _) => ResetState::Verified,
            ("writing", _) => ResetState::Writing,
            ("done", Some("unlock")) => ResetState::Done(Finish::Unlock),
            ("done", _) => ResetState::Done(Finish::Reset),
            ("expired", _) => ResetState::Expired,
            ("superseded", _) => ResetState::Superseded,
            _ => ResetState::Failed,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, ResetState::Identifying | ResetState::Verified)
    }

    pub fn finished(self) -> Option<Finish> {
        match self {
            ResetState::Done(f) => Some(f),
            _ => None,
        }
    }

    /// What time and failures have done to the flow by `now` (a write under way is left alone).
    pub fn at(self, now: Timestamp, expires_at: Timestamp, failures: i64, max_failures: i64) -> ResetState {
        match self {
            s if !s.is_open() => s,
            _ if failures >= max_failures => ResetState::Failed,
            _ if now > expires_at => ResetState::Expired,
            s => s,
        }
    }

    /// A service was proved.
    pub fn verify(self) -> Result<ResetState, NotOpen> {
        if self.is_open() { Ok(ResetState::Verified) } else { Err(NotOpen) }
    }

    /// The password changed since the flow began: it ends.
    pub fn supersede(self) -> Result<ResetState, NotOpen> {
        if self.is_open() { Ok(ResetState::Superseded) } else { Err(NotOpen) }
    }

    /// One request takes the proved flow for its write.
    pub fn claim(self) -> Result<ResetState, NotOpen> {
        if self == ResetState::Verified { Ok(ResetState::Writing) } else { Err(NotOpen) }
    }

    /// The password was set, or the account unlocked, by the request that claimed the flow.
    pub fn finish(self, how: Finish) -> Result<ResetState, NotOpen> {
        if self == ResetState::Writing { Ok(ResetState::Done(how)) } else { Err(NotOpen) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_states_read_back_the_same() {
        for s in [
            ResetState::Identifying,
            ResetState::Verified,
            ResetState::Writing,
            ResetState::Done(Finish::Reset),
            ResetState::Done(Finish::Unlock),
            ResetState::Failed,
            ResetState::Expired,
            ResetState::Superseded,
        ] {
            let (state, outcome) = s.stored();
            assert_eq!(ResetState::from_stored(state, outcome), s);
        }
        assert_eq!(ResetState::from_stored("writing?", None), ResetState::Failed, "unknown is never open");
    }

    #[test]
    fn time_and_failures_end_only_open_flows() {
        let open = ResetState::Verified;
        assert_eq!(open.at(100, 200, 0, 5), ResetState::Verified);
        assert_eq!(open.at(201, 200, 0, 5), ResetState::Expired);
        assert_eq!(open.at(100, 200, 5, 5), ResetState::Failed);
        let done = ResetState::Done(Finish::Reset);
        assert_eq!(done.at(10_000, 200, 9, 5), done, "a finished flow stays as it ended");
    }

    #[test]
    fn a_flow_finishes_once_and_only_after_a_proof() {
        assert_eq!(ResetState::Identifying.finish(Finish::Reset), Err(NotOpen));
        assert_eq!(ResetState::Identifying.claim(), Err(NotOpen));
        assert_eq!(ResetState::Verified.finish(Finish::Reset), Err(NotOpen), "only the claim's holder writes");
        let writing = ResetState::Verified.claim().unwrap();
        assert_eq!(writing.claim(), Err(NotOpen), "one claim at a time");
        assert_eq!(writing.verify(), Err(NotOpen));
        let done = writing.finish(Finish::Unlock).unwrap();
        assert_eq!(done.finished(), Some(Finish::Unlock));
        assert_eq!(done.finish(Finish::Reset), Err(NotOpen));
        assert_eq!(done.verify(), Err(NotOpen));
        assert_eq!(ResetState::Expired.verify(), Err(NotOpen));
    }

    #[test]
    fn a_flow_is_superseded_only_while_open() {
        assert_eq!(ResetState::Verified.supersede(), Ok(ResetState::Superseded));
        assert_eq!(ResetState::Identifying.supersede(), Ok(ResetState::Superseded));
        assert_eq!(ResetState::Writing.supersede(), Err(NotOpen), "its own write is under way");
        assert_eq!(ResetState::Done(Finish::Reset).supersede(), Err(NotOpen));
        assert_eq!(ResetState::Superseded.claim(), Err(NotOpen));
        assert_eq!(ResetState::Superseded.verify(), Err(NotOpen));
    }
}
