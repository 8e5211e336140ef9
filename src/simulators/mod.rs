//! Simulators of the third-party services the portal talks to, speaking their real wire protocols
//! on loopback. They ship with the product for demo mode, and the tests drive the portal through
//! them. They are never part of a production deployment.

pub mod bankid;
pub mod mail;
pub mod pwned;
pub mod sms;
pub mod tls;
