//! What the simulated BankID keeps per order, the people in its app, and the answers it gives:
//! the RP API's JSON and its refusals.

use std::time::Duration;

use base64::Engine;

use crate::clock::Timestamp;
use crate::identity::bankid::wire;

/// Seconds an unscanned order waits before it fails with `startFailed`.
pub const START_WINDOW: i64 = 30;
/// Seconds before a started order expires (`expiredTransaction`).
pub const ORDER_LIFETIME: i64 = 180;

/// A person with a BankID in the simulated app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub personal_number: String,
    pub given_name: String,
    pub surname: String,
    /// The BankID is blocked or too old: approving fails with `certificateErr`.
    pub blocked: bool,
}

impl Identity {
    pub fn new(personal_number: &str, given_name: &str, surname: &str) -> Self {
        Self {
            personal_number: personal_number.into(),
            given_name: given_name.into(),
            surname: surname.into(),
            blocked: false,
        }
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.given_name, self.surname)
    }

    /// The built-in test persons (valid test personal numbers).
    pub fn defaults() -> Vec<Identity> {
        vec![
            Identity::new("198112189876", "Anna", "Andersson"),
            Identity::new("197010632391", "Bertil", "Berg"),
            Identity::new("199001012385", "Ida", "Isaksson"),
            Identity { blocked: true, ..Identity::new("195001182046", "Gustav", "Gammal") },
        ]
    }
}

/// A fault for the next API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Maintenance,
    InternalError,
    TooManyRequests,
    Slow(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending(&'static str),
    Complete(Identity),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Order {
    pub order_ref: String,
    pub auto_start_token: String,
    pub qr_start_token: String,
    pub qr_start_secret: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub end_user_ip: String,
    pub required: Option<String>,
    /// Phone orders: the person called, and whether the RP initiated the call.
    pub phone: Option<(String, bool)>,
    pub visible_text: String,
    pub holder: Option<Identity>,
    pub status: Status,
    /// The order asked for the risk indication; the one it will get.
    pub return_risk: bool,
    pub risk: &'static str,
    /// The address the simulated app reports for the device.
    pub device_ip: String,
    pub web: Option<wire::WebDevice>,
    /// The order's `returnUrl`, and whether the app was started with its autostart token (then
    /// the app opens the URL when the user is done).
    pub return_url: Option<String>,
    pub opened_here: bool,
}

impl Order {
    pub(super) fn is_pending(&self) -> bool {
        matches!(self.status, Status::Pending(_))
    }

    /// Applies the passage of time.
    pub(super) fn age(&mut self, now: Timestamp) {
        if !self.is_pending() {
            return;
        }
        let unstarted = self.started_at.is_none() && self.phone.is_none();
        if unstarted && now - self.created_at > START_WINDOW {
            self.status = Status::Failed("startFailed".into());
        } else if now - self.created_at > ORDER_LIFETIME {
            self.status = Status::Failed("expiredTransaction".into());
        }
    }
}

/// An API refusal: HTTP status, errorCode, details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub u16, pub &'static str, pub String);

pub(super) fn invalid(details: impl Into<String>) -> ApiError {
    ApiError(400, "invalidParameters", details.into())
}

/// What the simulated app tells its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("QR-koden är inte giltig längre. Läs av den nya koden.")]
    StaleQr,
    #[error("Det finns ingen sådan legitimering. Kontrollera koden.")]
    NoSuchOrder,
    #[error("Legitimeringen är redan påbörjad eller avslutad.")]
    NotWaiting,
    #[error("Det här BankID:t har inte det personnummer som begärs.")]
    WrongPerson,
    #[error("Okänd person.")]
    UnknownIdentity,
}

/// `web` as BankID checks it: every field present and sensible, the domain a bare host name.
pub(super) fn check_web(web: &wire::WebDevice) -> Result<(), ApiError> {
    if web.device_identifier.is_empty() || web.device_identifier.len() > 256 {
        return Err(invalid("Invalid web.deviceIdentifier"));
    }
    let domain = &web.referring_domain;
    if domain.is_empty() || domain.contains(['/', ':', ' ']) {
        return Err(invalid("Invalid web.referringDomain"));
    }
    if web.user_agent.is_empty() || web.user_agent.chars().count() > 256 {
        return Err(invalid("Invalid web.userAgent"));
    }
    Ok(())
}

/// A stable identifier of the simulated device (per person), as BankID's `uhi`.
fn uhi(personal_number: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("simulated-device:{personal_number}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..20])
}

pub(super) fn decode_visible(data: Option<&str>) -> Result<String, ApiError> {
    let Some(data) = data else {
        return Ok(String::new());
    };
    if data.len() > 1500 {
        return Err(invalid("userVisibleData too long"));
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| invalid("userVisibleData is not base64"))?;
    String::from_utf8(bytes).map_err(|_| invalid("userVisibleData is not UTF-8"))
}

pub(super) fn collect_response(o: &Order) -> wire::CollectResponse {
    let (status, hint, completion) = match &o.status {
        Status::Pending(h) => ("pending", Some(h.to_string()), None),
        Status::Failed(h) => ("failed", Some(h.clone()), None),
        Status::Complete(who) => (
            "complete",
            None,
            Some(wire::CompletionData {
                user: wire::CompletionUser {
                    personal_number: who.personal_number.clone(),
                    name: who.name(),
                    given_name: who.given_name.clone(),
                    surname: who.surname.clone(),
                },
                device: Some(wire::CompletionDevice {
                    ip_address: o.device_ip.clone(),
                    uhi: Some(uhi(&who.personal_number)),
                }),
                bank_id_issue_date: Some("2024-01-01".into()),
                signature: Some(base64::engine::general_purpose::STANDARD.encode("<simulated-signature/>")),
                ocsp_response: Some(base64::engine::general_purpose::STANDARD.encode("simulated-ocsp")),
                risk: o.return_risk.then(|| o.risk.to_string()),
            }),
        ),
    };
    wire::CollectResponse {
        order_ref: o.order_ref.clone(),
        status: status.into(),
        hint_code: hint,
        completion_data: completion,
    }
}
