//! Password reset and account unlock: verify with enrolled identity services until the stars
//! reach `reset_stars`, then set a new password (or only unlock) with the service account.

mod aftermath;
mod assess;
pub mod codes;
mod outcome;
pub mod policy;
mod progress;
pub mod pwned;
mod rules;
mod service;
mod state;
mod write;

pub use outcome::{ResetOutcome, ResetStep, ResetView};
pub use policy::{LocalRules, Rule, Rules};
pub use rules::{NewPasswordRules, rules_refused};
pub use service::{ResetError, ResetService};
pub use state::{Finish, NotOpen, ResetState};

#[cfg(test)]
mod tests;
