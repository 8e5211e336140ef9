//! Integration tests: the portal over HTTP against a real Samba AD DC (started by ./scripts/test).

#[macro_use]
mod helpers;

mod a11y;
mod admin;
mod after_write;
mod attacks;
mod bankid;
mod bankid_proof;
mod bankid_risk;
mod change;
mod config_check;
mod contract;
mod contract_enrolments;
mod contract_limits;
mod contract_sessions;
mod cooling;
mod credentials;
mod dc;
mod desk;
mod directory;
mod e2e;
mod expiry;
mod failover;
mod language;
mod limits;
mod login;
mod operations;
mod postgres;
mod reports;
mod reset;
mod reset_password;
mod reset_sms;
mod security;
mod session;
mod sims;
mod sms;
mod stale_proof;
mod status;
mod store;
mod walkthroughs;
