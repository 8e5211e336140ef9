//! Stjärna: self-service password reset and enrolment for Active Directory.
//!
//! [`Application::build`] wires the services together and binds the listener; `main.rs` only
//! parses the command line (see [`cli`]).

pub mod admin;
pub mod audit;
pub mod change;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod enrolment;
pub mod expiry;
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
