//! CSRF protection for every POST: a signed double-submit token.
//!
//! Each browser gets a random `stjarna_csrf` cookie (HttpOnly, SameSite=Lax). Forms carry
//! HMAC(key, cookie) in a hidden `csrf` field; a POST whose field does not match is refused. The
//! cookie is replaced at login, so a token planted before login is worthless after it.
//!
//! Lax, not Strict: a browser that follows a link from elsewhere (a reminder opened in webmail)
//! sends no Strict cookie, and the new one this answer would set replaces the browser's, ending
//! every flow, order and open form bound to it. A cross-site POST still lacks the token, and a
//! cross-site subresource cannot set or read the cookie.

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::context::{AppState, request_id, request_lang};
use super::{CookieNames, WebError};

use crate::clock::Random;

#[derive(Clone)]
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    pub fn new(key: Vec<u8>) -> Self {
        Self(key)
    }

    fn mac(&self, seed: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"stjarna-csrf\0");
        mac.update(seed.as_bytes());
        mac
    }

    pub fn token_for(&self, seed: &str) -> String {
        hex::encode(self.mac(seed).finalize().into_bytes())
    }

    /// Constant-time comparison of `token` with the token for `seed`.
    pub fn verify(&self, seed: &str, token: &str) -> bool {
        hex::decode(token).is_ok_and(|bytes| self.mac(seed).verify_slice(&bytes).is_ok())
    }

    fn receipt_mac(&self, seed: &str, what: &str, at: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"stjarna-receipt\0");
        mac.update(what.as_bytes());
        mac.update(b"\0");
        mac.update(seed.as_bytes());
        mac.update(b"\0");
        mac.update(at.to_string().as_bytes());
        mac
    }

    /// Post/redirect/get: a receipt that `what` happened at `at` in the browser with `seed`, for
    /// the address the POST redirects to. Only that browser's page shows the outcome; a link made
    /// by someone else proves nothing.
    pub fn receipt(&self, seed: &str, what: &str, at: i64) -> String {
        format!("{at}.{}", hex::encode(self.receipt_mac(seed, what, at).finalize().into_bytes()))
    }

    /// Whether `receipt` is this browser's for `what`, made at most `max_age` seconds before `now`.
    pub fn verify_receipt(&self, seed: &str, what: &str, receipt: &str, now: i64, max_age: i64) -> bool {
        let Some((at, mac)) = receipt.split_once('.') else { return false };
        let Ok(at) = at.parse::<i64>() else { return false };
        (now - max_age..=now).contains(&at)
            && hex::decode(mac).is_ok_and(|bytes| self.receipt_mac(seed, what, at).verify_slice(&bytes).is_ok())
    }
}

#[cfg(test)]
mod receipt_tests {
    use super::CsrfKey;

    #[test]
    fn a_receipt_holds_for_its_browser_its_outcome_and_a_while_only() {
        let key = CsrfKey::new(b"key".to_vec());
        let r = key.receipt("seed-a", "change-done", 1000);
        assert!(key.verify_receipt("seed-a", "change-done", &r, 1000, 600));
        assert!(key.verify_receipt("seed-a", "change-done", &r, 1600, 600));
        assert!(!key.verify_receipt("seed-a", "change-done", &r, 1601, 600), "too old");
        assert!(!key.verify_receipt("seed-b", "change-done", &r, 1000, 600), "another browser");
        assert!(!key.verify_receipt("seed-a", "other", &r, 1000, 600), "another outcome");
        assert!(!key.verify_receipt("seed-a", "change-done", "1000.00", 1000, 600));
        assert!(
            !key.verify_receipt("seed-a", "change-done", &r.replace("1000.", "1001."), 1001, 600),
            "time is signed"
        );
    }
}

/// The CSRF cookie value made for a browser that had none, kept for this request's handlers.
#[derive(Clone)]
pub struct CsrfSeed(pub String);

pub fn csrf_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value).path("/").http_only(true).secure(secure).same_site(SameSite::Lax).finish()
}

/// Gives every page request a CSRF cookie if it has none.
pub async fn csrf_cookie_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let path = req.path();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let name = state.as_ref().map(|s| s.cookies.csrf).unwrap_or(CookieNames::PLAIN.csrf);
    let needs = req.cookie(name).is_none()
        && !path.starts_with("/static/")
        && !path.starts_with("/favicon.")
        && path != "/health";
    let made = if needs {
        let secure = state.as_ref().is_none_or(|s| s.secure_cookies);
        let seed = crate::clock::OsRandom.token();
        req.extensions_mut().insert(CsrfSeed(seed.clone()));
        Some((seed, secure))
    } else {
        None
    };
    let mut res = next.call(req).await?;
    if let Some((seed, secure)) = made {
        // A handler that rotated the cookie (login) has set its own.
        let already = res.response().cookies().any(|c| c.name() == name);
        if !already {
            res.response_mut().add_cookie(&csrf_cookie(name, seed, secure))?;
        }
    }
    Ok(res)
}

/// A form with a `csrf` field.
pub trait CsrfField {
    fn csrf(&self) -> &str;
}

/// A form, accepted only with a valid CSRF token.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + CsrfField + 'static> FromRequest for CsrfForm<T> {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let form = web::Form::<T>::from_request(&req, payload);
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().cloned().expect("AppState registered");
            let lang = request_lang(&req, state.default_lang);
            let rid = request_id(&req);
            let frame = super::context::anonymous_frame(&state, &req);
            let form = form.await.map_err(|e| {
                tracing::info!(error = %e, "unreadable form");
                WebError::bad_form(lang, &rid).framed(frame.clone())
            })?;
            let seed = req.cookie(state.cookies.csrf).map(|c| c.value().to_string());
            let valid = seed.is_some_and(|seed| state.csrf.verify(&seed, form.csrf()));
            if !valid {
                tracing::warn!(path = req.path(), "CSRF token missing or wrong; request refused");
                return Err(WebError::csrf(lang, &rid).framed(frame));
            }
            Ok(CsrfForm(form.into_inner()))
        })
    }
}
