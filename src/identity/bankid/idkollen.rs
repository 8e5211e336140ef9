//! The IDkollen v3 BankID broker: HTTP Basic auth, and at most one status call per second per order.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::rp::{SetupError, transport, unreadable};
use super::{AuthOrder, BankId, BankIdError, Collect, CompletedUser, OrderStart, PhoneOrder};

pub struct IdkollenClient {
    http: reqwest::Client,
    base: String,
    account_id: String,
    secret_key: SecretString,
    last_status: Mutex<HashMap<String, Instant>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ssn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_initiator: Option<&'a str>,
    intent: &'a str,
}

/// Every answer of the broker, by status.
#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdkollenAuth {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_start_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_start_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_start_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The broker's failure codes, as the RP API's hint codes (so one RFA table serves both).
fn hint_for(error: &str) -> &'static str {
    match error {
        "CANCELLED" => "userCancel",
        "INVALID_ID" => "certificateErr",
        "SESSION_TIMEOUT" => "expiredTransaction",
        "UNSUPPORTED_CLIENT" => "notSupportedByUserApp",
        _ => "unknown",
    }
}

impl IdkollenClient {
    pub fn new(
        base_url: &str,
        account_id: &str,
        secret_key: SecretString,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let mut builder =
            reqwest::Client::builder().timeout(timeout).https_only(true).pool_idle_timeout(crate::identity::KEEP_IDLE);
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).map_err(|e| SetupError::File {
                what: "CA",
                path: ca.display().to_string(),
                reason: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| SetupError::File {
                what: "CA",
                path: ca.display().to_string(),
                reason: e.to_string(),
            })?;
            builder = builder.tls_certs_only([cert]);
        }
        let http = builder.build().map_err(|e| SetupError::Http(e.to_string()))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            account_id: account_id.to_string(),
            secret_key,
            last_status: Mutex::new(HashMap::new()),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, String), BankIdError> {
        let res =
            req.basic_auth(&self.account_id, Some(self.secret_key.expose_secret())).send().await.map_err(transport)?;
        let status = res.status().as_u16();
        let body = res.text().await.map_err(transport)?;
        Ok((status, body))
    }

    async fn start(&self, path: &str, body: &StartRequest<'_>) -> Result<IdkollenAuth, BankIdError> {
        let (status, text) = self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await?;
        match status {
            200 | 201 => serde_json::from_str(&text).map_err(|e| unreadable(status, &e)),
            _ => Err(http_error(status, &text)),
        }
    }

    /// Waits until a second has passed since the last status call for this order.
    async fn pace(&self, id: &str) {
        let wait = {
            let mut last = self.last_status.lock().await;
            let now = Instant::now();
            let next = last.get(id).map(|t| *t + Duration::from_secs(1)).filter(|t| *t > now);
            last.insert(id.to_string(), next.unwrap_or(now));
            last.retain(|_, t| now.duration_since(*t) < Duration::from_secs(600));
            next
        };
        if let Some(at) = wait {
            tokio::time::sleep_until(at).await;
        }
    }
}

fn http_error(status: u16, body: &str) -> BankIdError {
    match status {
        401 | 403 => BankIdError::Unauthorized,
        404 => BankIdError::NotFound,
        409 => BankIdError::AlreadyInProgress,
        429 => BankIdError::TooManyRequests,
        503 => BankIdError::Maintenance,
        500..=599 => BankIdError::InternalError,
        400 if body.to_ascii_lowercase().contains("alreadyinprogress") => BankIdError::AlreadyInProgress,
        // The broker's error text is not kept: it may quote the personal number sent.
        400 => BankIdError::InvalidParameters("(the broker's text is not kept)".into()),
        _ => BankIdError::Unexpected { status, body: "(the broker's text is not kept)".into() },
    }
}

#[async_trait]
impl BankId for IdkollenClient {
    async fn auth(&self, order: &AuthOrder) -> Result<OrderStart, BankIdError> {
        let body = StartRequest {
            ssn: order.personal_number.as_deref(),
            ip_address: Some(&order.end_user_ip),
            call_initiator: None,
            intent: &order.user_visible_data,
        };
        let r = self.start("/v3/bankid-se/auth", &body).await?;
        let missing =
            || BankIdError::Unexpected { status: 201, body: "an order without QR or autostart tokens".into() };
        Ok(OrderStart {
            auto_start_token: r.auto_start_token.ok_or_else(missing)?,
            qr_start_token: r.qr_start_token.ok_or_else(missing)?,
            qr_start_secret: r.qr_start_secret.ok_or_else(missing)?,
            order_ref: r.id,
        })
    }

    async fn phone_auth(&self, order: &PhoneOrder) -> Result<String, BankIdError> {
        let body = StartRequest {
            ssn: Some(&order.personal_number),
            ip_address: None,
            call_initiator: Some(if order.call_initiator_rp { "RP" } else { "USER" }),
            intent: &order.user_visible_data,
        };
        Ok(self.start("/v3/bankid-se/phone/auth", &body).await?.id)
    }

    async fn collect(&self, id: &str) -> Result<Collect, BankIdError> {
        self.pace(id).await;
        let (status, text) = self.send(self.http.get(format!("{}/v3/bankid-se/auth/{id}", self.base))).await?;
        match status {
            200 => {}
            // Gone: the session expired.
            404 => return Ok(Collect::Failed("expiredTransaction".into())),
            _ => return Err(http_error(status, &text)),
        }
        let r: IdkollenAuth = serde_json::from_str(&text).map_err(|e| unreadable(status, &e))?;
        match r.status.as_str() {
            "PENDING" => Ok(Collect::Pending(r.hint_code.unwrap_or_default())),
            "FAILED" => Ok(Collect::Failed(hint_for(r.error.as_deref().unwrap_or_default()).into())),
            "COMPLETED" => Ok(Collect::Complete(CompletedUser {
                personal_number: r.ssn.unwrap_or_default(),
                name: r.name.unwrap_or_default(),
                given_name: r.given_name.unwrap_or_default(),
                surname: r.surname.unwrap_or_default(),
                // The broker gives neither a risk indication nor the device's address.
                risk: None,
                device_ip: None,
            })),
            other => Err(BankIdError::Unexpected { status, body: format!("unknown status {other}") }),
        }
    }

    async fn cancel(&self, id: &str) -> Result<(), BankIdError> {
        let (status, text) = self.send(self.http.delete(format!("{}/v3/bankid-se/auth/{id}", self.base))).await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(http_error(status, &text)),
        }
    }
}
