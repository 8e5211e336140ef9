//! SMS gateways: 46elks, Twilio, and a generic JSON webhook, with retries on server errors only.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::PhoneNumber;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    // The gateway's answer is never kept: error bodies often quote the destination number.
    #[error("the SMS gateway answered HTTP {status}")]
    Server { status: u16 },
    #[error("the SMS gateway refused the message (HTTP {status})")]
    Refused { status: u16 },
    #[error("the SMS gateway did not answer in time")]
    Timeout,
    #[error("the SMS gateway cannot be reached: {0}")]
    Transport(String),
}

#[async_trait]
pub trait SmsGateway: Send + Sync + 'static {
    /// Sends `text` to `to`; returns the gateway's message id.
    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, GatewayError>;

    /// Whether the gateway answers at all (any HTTP status will do; nothing is sent).
    async fn reachable(&self) -> Result<(), GatewayError>;
}

/// Asks `url` anything: an HTTP answer of any status means the gateway is there.
async fn answers(http: &reqwest::Client, url: &str) -> Result<(), GatewayError> {
    match http.get(url).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.is_timeout() => Err(GatewayError::Timeout),
        Err(e) => Err(GatewayError::Transport(crate::identity::transport_text(e))),
    }
}

/// A gateway whose sends are counted for monitoring: texts accepted (and what they cost), and
/// failures by kind.
pub struct Metered {
    inner: std::sync::Arc<dyn SmsGateway>,
    name: &'static str,
    cost_per_text: f64,
}

impl Metered {
    pub fn new(inner: std::sync::Arc<dyn SmsGateway>, name: &'static str, cost_per_text: f64) -> Self {
        Self { inner, name, cost_per_text }
    }
}

#[async_trait]
impl SmsGateway for Metered {
    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, GatewayError> {
        let sent = self.inner.send(to, text).await;
        let counted = match &sent {
            Ok(_) => Ok(self.cost_per_text),
            Err(GatewayError::Server { .. }) => Err("server"),
            Err(GatewayError::Refused { .. }) => Err("refused"),
            Err(GatewayError::Timeout) => Err("timeout"),
            Err(GatewayError::Transport(_)) => Err("transport"),
        };
        crate::monitoring::sms(self.name, counted);
        sent
    }

    async fn reachable(&self) -> Result<(), GatewayError> {
        self.inner.reachable().await
    }
}

/// A new connection for each request: texts are few, and a kept connection that the gateway
/// closes as it idles (a short keep-alive) failed the next send with "connection closed before
/// message completed", which a text, not idempotent, cannot simply be sent again after.
/// Fails only when its TLS cannot be set up (a start-up error).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().timeout(timeout).pool_max_idle_per_host(0).build()
}

async fn answer(res: Result<reqwest::Response, reqwest::Error>) -> Result<serde_json::Value, GatewayError> {
    let res = res.map_err(|e| {
        if e.is_timeout() { GatewayError::Timeout } else { GatewayError::Transport(crate::identity::transport_text(e)) }
    })?;
    let status = res.status().as_u16();
    match status {
        200..=299 => {
            let body = res.text().await.map_err(|e| GatewayError::Transport(crate::identity::transport_text(e)))?;
            Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
        }
        500..=599 => Err(GatewayError::Server { status }),
        _ => Err(GatewayError::Refused { status }),
    }
}

/// 46elks: `POST {url}/a1/sms`, Basic auth, form fields `to`, `from`, `message`.
pub struct Elks46 {
    http: reqwest::Client,
    url: String,
    username: String,
    password: SecretString,
    from: String,
}

impl Elks46 {
    pub fn new(url: &str, username: &str, password: SecretString, from: &str, http: reqwest::Client) -> Self {
        Self { http, url: url.trim_end_matches('/').into(), username: username.into(), password, from: from.into() }
    }
}

#[async_trait]
impl SmsGateway for Elks46 {
    async fn reachable(&self) -> Result<(), GatewayError> {
        answers(&self.http, &self.url).await
    }

    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, GatewayError> {
        let req = self
            .http
            .post(format!("{}/a1/sms", self.url))
            .basic_auth(&self.username, Some(self.password.expose_secret()))
            .form(&[("to", to.e164()), ("from", &self.from), ("message", text)]);
        let body = answer(req.send().await).await?;
        Ok(body["id"].as_str().unwrap_or_default().to_string())
    }
}

/// Twilio: `POST {url}/2010-04-01/Accounts/{sid}/Messages.json`, Basic `sid:token`, `To`, `From`, `Body`.
pub struct Twilio {
    http: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl Twilio {
    pub fn new(url: &str, account_sid: &str, auth_token: SecretString, from: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            url: url.trim_end_matches('/').into(),
            account_sid: account_sid.into(),
            auth_token,
            from: from.into(),
        }
    }
}

#[async_trait]
impl SmsGateway for Twilio {
    async fn reachable(&self) -> Result<(), GatewayError> {
        answers(&self.http, &self.url).await
    }

    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, GatewayError> {
        let req = self
            .http
            .post(format!("{}/2010-04-01/Accounts/{}/Messages.json", self.url, self.account_sid))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&[("To", to.e164()), ("From", &self.from), ("Body", text)]);
        let body = answer(req.send().await).await?;
        Ok(body["sid"].as_str().unwrap_or_default().to_string())
    }
}

/// Any other gateway: a JSON `POST` of `{"to", "from", "message"}` with a bearer token.
pub struct Webhook {
    http: reqwest::Client,
    url: String,
    token: Option<SecretString>,
    from: String,
}

impl Webhook {
    pub fn new(url: &str, token: Option<SecretString>, from: &str, http: reqwest::Client) -> Self {
        Self { http, url: url.into(), token, from: from.into() }
    }
}

#[async_trait]
impl SmsGateway for Webhook {
    async fn reachable(&self) -> Result<(), GatewayError> {
        answers(&self.http, &self.url).await
    }

    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<String, GatewayError> {
        let mut req =
            self.http.post(&self.url).json(&serde_json::json!({ "to": to.e164(), "from": self.from, "message": text }));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        let body = answer(req.send().await).await?;
        Ok(body["id"].as_str().unwrap_or_default().to_string())
    }
}

/// Sends, retrying with backoff (200 ms, 400 ms) when the gateway answers a server error. Refusals
/// and timeouts are not retried: a timed-out message may still arrive, and must not arrive twice.
pub async fn with_retries(gateway: &dyn SmsGateway, to: &PhoneNumber, text: &str) -> Result<String, GatewayError> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match gateway.send(to, text).await {
            Err(GatewayError::Server { status }) if attempt < 3 => {
                tracing::warn!(status, attempt, "SMS gateway server error; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}
