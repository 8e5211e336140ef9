//! BankID's RP API v6.0 over mutual TLS, with BankID's root CA pinned.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{
    AuthRequest, AuthResponse, CollectResponse, ErrorResponse, OrderRefRequest, PhoneAuthRequest, PhoneAuthResponse,
    Requirement,
};
use super::{AuthOrder, BankId, BankIdError, Collect, CompletedUser, OrderStart, PhoneOrder};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the BankID {what} file {path} cannot be used: {reason}")]
    File { what: &'static str, path: String, reason: String },
    #[error("the BankID client certificate and key do not go together: {0}")]
    Tls(String),
    #[error("the BankID HTTP client cannot be built: {0}")]
    Http(String),
}

pub struct RpClient {
    http: reqwest::Client,
    base: String,
}

fn file_error(what: &'static str, path: &Path, reason: impl ToString) -> SetupError {
    SetupError::File { what, path: path.display().to_string(), reason: reason.to_string() }
}

/// The client certificate chain and key: PKCS#12 (`.p12`/`.pfx`, with a password) or PEM.
pub fn load_client_identity(
    cert_file: &Path,
    key_file: Option<&Path>,
    password: Option<&SecretString>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SetupError> {
    let bytes = std::fs::read(cert_file).map_err(|e| file_error("client certificate", cert_file, e))?;
    if bytes.starts_with(b"-----") {
        let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| file_error("client certificate", cert_file, e))?;
        if chain.is_empty() {
            return Err(file_error("client certificate", cert_file, "it holds no PEM certificate"));
        }
        let key = match key_file {
            Some(k) => PrivateKeyDer::from_pem_file(k).map_err(|e| file_error("client key", k, e))?,
            None => {
                PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| file_error("client certificate", cert_file, e))?
            }
        };
        return Ok((chain, key));
    }
    let password = password.map(|p| p.expose_secret().to_string()).unwrap_or_default();
    let store = p12_keystore::KeyStore::from_pkcs12(&bytes, &password)
        .map_err(|e| file_error("client certificate (PKCS#12)", cert_file, format!("{e} (wrong password?)")))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| file_error("client certificate (PKCS#12)", cert_file, "it holds no private key"))?;
    let certs = chain.chain().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().to_vec()));
    Ok((certs, key))
}

/// A root store holding only the pinned CA.
pub fn pinned_roots(ca_file: &Path) -> Result<RootCertStore, SetupError> {
    let mut roots = RootCertStore::empty();
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| file_error("CA", ca_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("CA", ca_file, e))?;
    for cert in certs {
        roots.add(cert).map_err(|e| file_error("CA", ca_file, e))?;
    }
    if roots.is_empty() {
        return Err(file_error("CA", ca_file, "it holds no PEM certificate"));
    }
    Ok(roots)
}

impl RpClient {
    pub fn new(
        base_url: &str,
        ca_file: &Path,
        cert_file: &Path,
        key_file: Option<&Path>,
        password: Option<&SecretString>,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let (chain, key) = load_client_identity(cert_file, key_file, password)?;
        let tls = ClientConfig::builder()
            .with_root_certificates(pinned_roots(ca_file)?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| SetupError::Tls(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .https_only(true)
            .pool_idle_timeout(crate::identity::KEEP_IDLE)
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        let base = if base_url.ends_with('/') { base_url.to_string() } else { format!("{base_url}/") };
        Ok(Self { http, base })
    }

    async fn post<Req: Serialize, Res: DeserializeOwned>(&self, path: &str, body: &Req) -> Result<Res, BankIdError> {
        let res = self.http.post(format!("{}{path}", self.base)).json(body).send().await.map_err(transport)?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(transport)?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| unreadable(status, &e));
        }
        // An answer that is not BankID's error (a proxy's page, say) is not kept.
        let err: ErrorResponse = serde_json::from_str(&text)
            .unwrap_or(ErrorResponse { error_code: String::new(), details: "(not an RP API error)".into() });
        Err(BankIdError::from_code(status, &err.error_code, &err.details))
    }
}

/// A request that got no answer (for the log, see [`crate::identity::transport_text`]).
pub fn transport(e: reqwest::Error) -> BankIdError {
    BankIdError::Transport(crate::identity::transport_text(e))
}

/// An answer that does not parse, for the log: the kind of error and where, never serde's own
/// text, which quotes the value it choked on (the answer may hold the personal number).
pub fn unreadable(status: u16, e: &serde_json::Error) -> BankIdError {
    BankIdError::Unexpected {
        status,
        body: format!("unreadable answer: {:?} error at line {}, column {}", e.classify(), e.line(), e.column()),
    }
}

pub(crate) fn visible_data(text: &str) -> Option<String> {
    Some(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
}

pub(crate) fn collect_from(r: CollectResponse) -> Result<Collect, BankIdError> {
    let hint = r.hint_code.unwrap_or_default();
    match r.status.as_str() {
        "pending" => Ok(Collect::Pending(hint)),
        "failed" => Ok(Collect::Failed(hint)),
        "complete" => {
            let data = r.completion_data.ok_or_else(|| BankIdError::Unexpected {
                status: 200,
                body: "a complete order without completionData".into(),
            })?;
            Ok(Collect::Complete(CompletedUser {
                personal_number: data.user.personal_number,
                name: data.user.name,
                given_name: data.user.given_name,
                surname: data.user.surname,
                risk: data.risk.as_deref().and_then(super::Risk::parse),
                device_ip: data.device.map(|d| d.ip_address),
            }))
        }
        other => Err(BankIdError::Unexpected { status: 200, body: format!("unknown status {other}") }),
    }
}

#[async_trait]
impl BankId for RpClient {
    async fn auth(&self, order: &AuthOrder) -> Result<OrderStart, BankIdError> {
        let body = AuthRequest {
            end_user_ip: order.end_user_ip.clone(),
            requirement: order
                .personal_number
                .as_ref()
                .map(|pn| Requirement { personal_number: Some(pn.clone()), pin_code: None }),
            user_visible_data: visible_data(&order.user_visible_data),
            user_visible_data_format: Some("simpleMarkdownV1".into()),
            return_url: order.return_url.clone(),
            return_risk: Some(true),
            web: order.web.clone(),
        };
        let r: AuthResponse = self.post("auth", &body).await?;
        Ok(OrderStart {
            order_ref: r.order_ref,
            auto_start_token: r.auto_start_token,
            qr_start_token: r.qr_start_token,
            qr_start_secret: r.qr_start_secret,
        })
    }

    fn sends_return_url(&self) -> bool {
        true
    }

    async fn phone_auth(&self, order: &PhoneOrder) -> Result<String, BankIdError> {
        let body = PhoneAuthRequest {
            personal_number: order.personal_number.clone(),
            call_initiator: if order.call_initiator_rp { "RP".into() } else { "user".into() },
            requirement: None,
            user_visible_data: visible_data(&order.user_visible_data),
            user_visible_data_format: Some("simpleMarkdownV1".into()),
        };
        let r: PhoneAuthResponse = self.post("phone/auth", &body).await?;
        Ok(r.order_ref)
    }

    async fn collect(&self, order_ref: &str) -> Result<Collect, BankIdError> {
        let r: CollectResponse = self.post("collect", &OrderRefRequest { order_ref: order_ref.into() }).await?;
        collect_from(r)
    }

    async fn cancel(&self, order_ref: &str) -> Result<(), BankIdError> {
        let _: serde_json::Value = self.post("cancel", &OrderRefRequest { order_ref: order_ref.into() }).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_answer_is_logged_without_what_it_held() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Answer {
            status: String,
        }
        let e = serde_json::from_str::<Answer>(r#"{"status": 199001011239}"#).unwrap_err();
        assert!(e.to_string().contains("199001011239"), "serde quotes the value: {e}");
        let logged = unreadable(200, &e).to_string();
        assert!(!logged.contains("199001011239"), "{logged}");
        assert!(logged.contains("line 1"), "{logged}");
    }
}
