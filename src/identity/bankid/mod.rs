//! Mobile BankID: the RP API v6.0 and IDkollen clients, the animated QR code, and the user messages.

mod cancel;
mod flow;
mod frame;
mod idkollen;
mod in_directory;
mod limit;
mod phone;
mod policy;
mod purpose;
mod qr;
mod rfa;
mod rp;
mod same_device;
mod take;
pub mod wire;

pub use flow::{BankIdFlows, Flow, FlowError, FlowUser, Start};
pub use frame::{FrameCache, qr_animation_svg, qr_modules, qr_svg};
pub use idkollen::{IdkollenAuth, IdkollenClient};
pub use in_directory::DirectoryPersonalNumbers;
pub use limit::{ORDERS_PER_BROWSER_PER_HOUR, PHONE_ORDERS_PER_BANKID_PER_HOUR};
pub use policy::Policy;
pub use purpose::{FlowPurpose, FlowState, FlowView};
pub use qr::{launch_url, qr_auth_code, qr_payload};
pub use rfa::{StartMode, error_key, message_key};
pub use rp::{RpClient, SetupError};
pub use same_device::Back;

use async_trait::async_trait;

/// An order to start.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthOrder {
    pub end_user_ip: String,
    /// Only this person's BankID may complete the order (12 digits).
    pub personal_number: Option<String>,
    /// Shown in the app: UTF-8 text (simpleMarkdownV1).
    pub user_visible_data: String,
    /// The browser the order was started from (sent as `web`), when there is one.
    pub web: Option<wire::WebDevice>,
    /// Where the app sends the user when it was started on this device (`returnUrl`).
    pub return_url: Option<String>,
}

/// A phone order: the user is on the phone with the service desk.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneOrder {
    pub personal_number: String,
    /// `RP` when the service desk called the user, `user` when the user called.
    pub call_initiator_rp: bool,
    pub user_visible_data: String,
}

/// A started order. `qr_start_secret` never leaves the server.
#[derive(Clone, PartialEq, Eq)]
pub struct OrderStart {
    pub order_ref: String,
    pub auto_start_token: String,
    pub qr_start_token: String,
    pub qr_start_secret: String,
}

/// Who completed an order.
#[derive(Clone, PartialEq, Eq)]
pub struct CompletedUser {
    pub personal_number: String,
    pub name: String,
    pub given_name: String,
    pub surname: String,
    /// BankID's risk indication, when asked for and given.
    pub risk: Option<Risk>,
    /// The address BankID saw the app at.
    pub device_ip: Option<String>,
}

debug_showing!(AuthOrder { end_user_ip, user_visible_data, web });
debug_showing!(PhoneOrder { call_initiator_rp, user_visible_data });
debug_showing!(OrderStart { order_ref });
debug_showing!(CompletedUser { risk, device_ip });

/// BankID's risk indication for an order (`returnRisk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Moderate,
    High,
}

impl Risk {
    pub fn parse(s: &str) -> Option<Risk> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Risk::Low),
            "moderate" => Some(Risk::Moderate),
            "high" => Some(Risk::High),
            _ => None,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Moderate => "moderate",
            Risk::High => "high",
        }
    }
}

/// Escapes text for BankID's simpleMarkdownV1, whose markup is `*bold*`, `+italic+`, `#`
/// headings, `|` tables and `\\` escapes: an account like `EXAMPLE\\anna` then shows as typed.
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '+' | '#' | '|' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_shows_no_personal_number_token_or_secret() {
        let user = super::CompletedUser {
            personal_number: "199001011239".into(),
            name: "Anna Svensson".into(),
            given_name: "Anna".into(),
            surname: "Svensson".into(),
            risk: None,
            device_ip: Some("192.0.2.1".into()),
        };
        let start = super::OrderStart {
            order_ref: "ref".into(),
            auto_start_token: "auto-start-token".into(),
            qr_start_token: "qr-start-token".into(),
            qr_start_secret: "qr-start-secret".into(),
        };
        let printed = format!("{user:?} {start:?}");
        for hidden in ["199001011239", "Svensson", "token", "secret"] {
            assert!(!printed.contains(hidden), "{hidden} in {printed}");
        }
        assert!(printed.contains("192.0.2.1") && printed.contains("ref") && printed.contains(".."), "{printed}");
    }

    #[test]
    fn markdown_markup_in_names_is_escaped() {
        assert_eq!(super::markdown_escape("EXAMPLE\\anna"), "EXAMPLE\\\\anna");
        assert_eq!(super::markdown_escape("*x* +y+ #z a|b"), "\\*x\\* \\+y\\+ \\#z a\\|b");
        assert_eq!(super::markdown_escape("anna-lena.berg"), "anna-lena.berg");
    }
}

/// The answer to `collect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collect {
    Pending(String),
    Failed(String),
    Complete(CompletedUser),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankIdError {
    #[error("an order for this personal number is already in progress")]
    AlreadyInProgress,
    #[error("BankID is in maintenance")]
    Maintenance,
    #[error("BankID reported an internal error")]
    InternalError,
    #[error("BankID timed out the request")]
    RequestTimeout,
    #[error("BankID says too many requests")]
    TooManyRequests,
    #[error("BankID refused our client certificate or credentials")]
    Unauthorized,
    #[error("BankID does not know the order")]
    NotFound,
    #[error("BankID refused our request as invalid: {0}")]
    InvalidParameters(String),
    #[error("BankID answered HTTP {status}: {body}")]
    Unexpected { status: u16, body: String },
    #[error("BankID cannot be reached: {0}")]
    Transport(String),
}

impl BankIdError {
    /// Whether BankID said, in its answer, that it made no order (so that nothing reached the
    /// user's phone). Not so for an answer we could not read or never had.
    pub fn made_no_order(&self) -> bool {
        !matches!(self, BankIdError::InternalError | BankIdError::Unexpected { .. } | BankIdError::Transport(_))
    }

    /// From an RP API error body (`errorCode` compared case-insensitively).
    pub fn from_code(status: u16, code: &str, details: &str) -> BankIdError {
        match code.to_ascii_lowercase().as_str() {
            "alreadyinprogress" => BankIdError::AlreadyInProgress,
            "maintenance" => BankIdError::Maintenance,
            "internalerror" => BankIdError::InternalError,
            "requesttimeout" => BankIdError::RequestTimeout,
            "toomanyrequests" => BankIdError::TooManyRequests,
            "unauthorized" => BankIdError::Unauthorized,
            "notfound" => BankIdError::NotFound,
            "invalidparameters" => BankIdError::InvalidParameters(details.to_string()),
            _ => match status {
                429 => BankIdError::TooManyRequests,
                503 => BankIdError::Maintenance,
                500 => BankIdError::InternalError,
                _ => BankIdError::Unexpected { status, body: format!("{code} {details}") },
            },
        }
    }
}

/// A BankID backend: the RP API directly, or a broker.
#[async_trait]
pub trait BankId: Send + Sync + 'static {
    async fn auth(&self, order: &AuthOrder) -> Result<OrderStart, BankIdError>;
    /// Returns the order reference.
    async fn phone_auth(&self, order: &PhoneOrder) -> Result<String, BankIdError>;
    async fn collect(&self, order_ref: &str) -> Result<Collect, BankIdError>;
    async fn cancel(&self, order_ref: &str) -> Result<(), BankIdError>;
    /// Whether an order's `returnUrl` reaches the app (the RP API); a broker may not pass it on.
    fn sends_return_url(&self) -> bool {
        false
    }
}
