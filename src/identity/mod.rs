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

/// A request to a service that got no answer, for the log: reqwest's error with its causes,
/// without the URL (a broker's carries the order id, a webhook's may carry a token, the breach
/// check's ends in five hex digits of the new password's SHA-1).
pub fn transport_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
