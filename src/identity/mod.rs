//! Identity services: the ways a user proves who they are (Mobile BankID, and later SMS codes),
//! and the personal data they involve.

pub mod bankid;
pub mod personnummer;
pub mod protect;
pub mod sms;

pub use personnummer::{PersonalNumber, PersonalNumberError};
pub use protect::DataKey;
