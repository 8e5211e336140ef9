//! BankID's recommended user messages (RFA), as catalogue keys.

use super::BankIdError;

/// Whether the user started the app from this device (autostart) or scans a QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    Qr,
    Autostart,
}

/// The catalogue key for a pending or failed hint code.
pub fn message_key(pending: bool, hint: &str, mode: StartMode) -> &'static str {
    match (pending, hint) {
        (true, "outstandingTransaction") if mode == StartMode::Autostart => "bankid.rfa13",
        (true, "outstandingTransaction" | "noClient") => "bankid.rfa1",
        (true, "started") => "bankid.rfa15",
        (true, "userSign") => "bankid.rfa9",
        (true, "userMrtd") => "bankid.rfa23",
        (true, "userCallConfirm") => "bankid.call_confirm",
        (true, _) => "bankid.rfa21",
        (false, "expiredTransaction") => "bankid.rfa8",
        (false, "certificateErr") => "bankid.rfa16",
        (false, "userCancel") => "bankid.rfa6",
        (false, "cancelled") => "bankid.rfa3",
        (false, "startFailed") => "bankid.rfa17",
        (false, "userDeclinedCall") => "bankid.declined_call",
        (false, "notSupportedByUserApp") => "bankid.not_supported",
        (false, _) => "bankid.rfa22",
    }
}

/// The catalogue key for an error starting or collecting an order.
pub fn error_key(e: &BankIdError) -> &'static str {
    match e {
        BankIdError::AlreadyInProgress => "bankid.rfa4",
        BankIdError::NotFound => "bankid.rfa22",
        _ => "bankid.rfa5",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_hints_to_rfa_messages() {
        assert_eq!(message_key(true, "outstandingTransaction", StartMode::Qr), "bankid.rfa1");
        assert_eq!(message_key(true, "outstandingTransaction", StartMode::Autostart), "bankid.rfa13");
        assert_eq!(message_key(true, "userSign", StartMode::Qr), "bankid.rfa9");
        assert_eq!(message_key(true, "somethingNew", StartMode::Qr), "bankid.rfa21");
        assert_eq!(message_key(false, "certificateErr", StartMode::Qr), "bankid.rfa16");
        assert_eq!(message_key(false, "somethingNew", StartMode::Qr), "bankid.rfa22");
        assert_eq!(error_key(&BankIdError::AlreadyInProgress), "bankid.rfa4");
        assert_eq!(error_key(&BankIdError::Maintenance), "bankid.rfa5");
    }

    #[test]
    fn error_codes_are_read_case_insensitively() {
        assert_eq!(BankIdError::from_code(503, "Maintenance", ""), BankIdError::Maintenance);
        assert_eq!(BankIdError::from_code(503, "maintenance", ""), BankIdError::Maintenance);
        assert_eq!(BankIdError::from_code(400, "alreadyInProgress", ""), BankIdError::AlreadyInProgress);
        assert_eq!(BankIdError::from_code(429, "", ""), BankIdError::TooManyRequests);
    }
}
