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
    format!("{:#}", anyhow::Error::from(e.without_url()))
}

/// How long a kept connection to an outside service may idle before it is dropped: less than the
/// 5 s keep-alive common to web servers (Apache's, actix-web's), so that a request is not sent on a
/// connection the server is closing at that moment. That fails as "connection closed before message
/// completed", and a new order is not idempotent, so it cannot simply be sent again. BankID's
/// collect, every 2 s while a user waits, still reuses its connection.
pub const KEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(4);
