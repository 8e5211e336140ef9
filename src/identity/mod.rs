//! Identity services: the ways a user proves who they are (Mobile BankID, and later SMS codes),
//! and the personal data they involve.

pub mod bankid;
mod notice;
pub mod personnummer;
pub mod protect;
pub mod sms;

pub use crate::enrolment::ChangeNotifier;
pub use notice::ChangeNotices;
pub use personnummer::{PersonalNumber, PersonalNumberError};
pub use protect::DataKey;
