//! Stjärna: self-service password reset and enrolment for Active Directory.
//!
//! [`Application::build`] wires the services together and binds the listener; `main.rs` only
//! parses the command line (see [`cli`]).

/// `Debug` for a type that holds a personal number, a token or a secret: only the fields named
/// are shown, the rest is `..`, so that no `{:?}` in a log line or a panic prints them.
macro_rules! debug_showing {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))$(.field(stringify!($field), &self.$field))*.finish_non_exhaustive()
            }
        }
    };
}

pub mod admin;
pub mod audit;
pub mod change;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod enrolment;
pub mod expiry;
pub mod health;
pub mod i18n;
pub mod identity;
pub mod janitor;
pub mod login;
pub mod mail;
pub mod monitoring;
pub mod reset;
pub mod session;
pub mod simulators;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod throttle;
pub mod web;

mod app;

pub use app::{Application, Dependencies, StartupError};
