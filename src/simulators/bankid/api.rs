//! The simulator's API: BankID RP API v6.0 (mutual TLS) and the IDkollen v3 broker (Basic auth).

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiError, Fault, SimState, Status};
use crate::identity::bankid::IdkollenAuth;
use crate::identity::bankid::wire::{self, ErrorResponse};

pub type State = web::Data<Arc<SimState>>;

fn error(e: ApiError) -> HttpResponse {
    let ApiError(status, code, details) = e;
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a valid status"));
    if status == 429 {
        res.insert_header(("RateLimit-Limit", "10"))
            .insert_header(("RateLimit-Remaining", "0"))
            .insert_header(("RateLimit-Reset", "1"));
    }
    res.json(ErrorResponse { error_code: code.into(), details })
}

/// Applies an injected fault, if one is waiting: an error answer, or a delay before the real one.
async fn fault(state: &SimState) -> Option<HttpResponse> {
    match state.take_fault()? {
        Fault::Maintenance => Some(error(ApiError(503, "maintenance", "Simulated maintenance".into()))),
        Fault::InternalError => Some(error(ApiError(500, "internalError", "Simulated internal error".into()))),
        Fault::TooManyRequests => Some(error(ApiError(429, "tooManyRequests", "Simulated rate limit".into()))),
        Fault::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

/// JSON bodies only, as BankID requires; a missing or wrong field is `invalidParameters`.
fn parse<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, HttpResponse> {
    let json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(error(ApiError(415, "unsupportedMediaType", "Content-Type must be application/json".into())));
    }
    serde_json::from_slice(body).map_err(|e| error(ApiError(400, "invalidParameters", e.to_string())))
}

macro_rules! guard {
    ($state:expr, $req:expr, $body:expr) => {{
        if let Some(res) = fault(&$state).await {
            return res;
        }
        match parse(&$req, &$body) {
            Ok(v) => v,
            Err(res) => return res,
        }
    }};
}

pub async fn rp_auth(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let request: wire::AuthRequest = guard!(state, req, body);
    match state.auth(&request) {
        Ok(r) => HttpResponse::Ok().json(r),
        Err(e) => error(e),
    }
}

pub async fn rp_phone_auth(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let request: wire::PhoneAuthRequest = guard!(state, req, body);
    match state.phone_auth(&request) {
        Ok(order_ref) => HttpResponse::Ok().json(wire::PhoneAuthResponse { order_ref }),
        Err(e) => error(e),
    }
}

pub async fn rp_collect(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let request: wire::OrderRefRequest = guard!(state, req, body);
    match state.collect(&request.order_ref) {
        Ok(r) => HttpResponse::Ok().json(r),
        Err(e) => error(e),
    }
}

pub async fn rp_cancel(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let request: wire::OrderRefRequest = guard!(state, req, body);
    match state.cancel(&request.order_ref) {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({})),
        Err(e) => error(e),
    }
}

/// The broker's credentials.
#[derive(Clone)]
pub struct BrokerAccount {
    pub account_id: String,
    pub secret_key: String,
}

fn authorised(req: &HttpRequest, account: &BrokerAccount) -> bool {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", account.account_id, account.secret_key));
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v == expected)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStart {
    ssn: Option<String>,
    ip_address: Option<String>,
    call_initiator: Option<String>,
    intent: Option<String>,
}

fn broker_error(e: ApiError) -> HttpResponse {
    let status = if e.1 == "alreadyInProgress" { 409 } else { e.0 };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a valid status"))
        .json(serde_json::json!({ "error": e.1, "message": e.2 }))
}

fn visible(intent: &Option<String>) -> Option<String> {
    intent.as_ref().map(|t| base64::engine::general_purpose::STANDARD.encode(t.as_bytes()))
}

pub async fn broker_auth(
    state: State,
    account: web::Data<BrokerAccount>,
    req: HttpRequest,
    body: web::Json<BrokerStart>,
) -> HttpResponse {
    if !authorised(&req, &account) {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": "UNAUTHORIZED" }));
    }
    if let Some(res) = fault(&state).await {
        return res;
    }
    let request = wire::AuthRequest {
        end_user_ip: body.ip_address.clone().unwrap_or_else(|| "127.0.0.1".into()),
        requirement: body.ssn.clone().map(|pn| wire::Requirement { personal_number: Some(pn), pin_code: None }),
        user_visible_data: visible(&body.intent),
        user_visible_data_format: None,
        return_url: None,
        return_risk: None,
        web: None,
    };
    match state.auth(&request) {
        Ok(r) => HttpResponse::Created().json(IdkollenAuth {
            id: r.order_ref,
            status: "PENDING".into(),
            auto_start_token: Some(r.auto_start_token),
            qr_start_token: Some(r.qr_start_token),
            qr_start_secret: Some(r.qr_start_secret),
            hint_code: Some("outstandingTransaction".into()),
            ..IdkollenAuth::default()
        }),
        Err(e) => broker_error(e),
    }
}

pub async fn broker_phone_auth(
    state: State,
    account: web::Data<BrokerAccount>,
    req: HttpRequest,
    body: web::Json<BrokerStart>,
) -> HttpResponse {
    if !authorised(&req, &account) {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": "UNAUTHORIZED" }));
    }
    let initiator = match body.call_initiator.as_deref() {
        Some("RP") => "RP",
        Some("USER") => "user",
        _ => {
            return broker_error(ApiError(400, "INVALID_REQUEST", "callInitiator must be USER or RP".into()));
        }
    };
    let request = wire::PhoneAuthRequest {
        personal_number: body.ssn.clone().unwrap_or_default(),
        call_initiator: initiator.into(),
        requirement: None,
        user_visible_data: visible(&body.intent),
        user_visible_data_format: None,
    };
    match state.phone_auth(&request) {
        Ok(id) => HttpResponse::Created().json(IdkollenAuth {
            id,
            status: "PENDING".into(),
            hint_code: Some("outstandingTransaction".into()),
            ..IdkollenAuth::default()
        }),
        Err(e) => broker_error(e),
    }
}

/// `GET /v3/bankid-se/auth/{id}`: at most one call a second per order, 404 once expired.
pub async fn broker_status(
    state: State,
    account: web::Data<BrokerAccount>,
    limiter: web::Data<std::sync::Mutex<Vec<(String, Instant)>>>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !authorised(&req, &account) {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": "UNAUTHORIZED" }));
    }
    {
        let mut calls = limiter.lock().expect("lock");
        let now = Instant::now();
        calls.retain(|(_, at)| now.duration_since(*at).as_secs() < 5);
        if calls.iter().any(|(i, at)| *i == *id && now.duration_since(*at).as_millis() < 950) {
            return HttpResponse::TooManyRequests().json(serde_json::json!({ "error": "TOO_MANY_REQUESTS" }));
        }
        calls.push((id.to_string(), now));
        state.note_broker_status_call(&id);
    }
    let Some(order) = state.order(&id) else {
        return HttpResponse::NotFound().finish();
    };
    let base = IdkollenAuth { id: id.to_string(), ..IdkollenAuth::default() };
    let body = match order.status {
        Status::Pending(hint) => IdkollenAuth { status: "PENDING".into(), hint_code: Some(hint.into()), ..base },
        Status::Complete(who) => IdkollenAuth {
            status: "COMPLETED".into(),
            ssn: Some(who.personal_number.clone()),
            name: Some(who.name()),
            given_name: Some(who.given_name),
            surname: Some(who.surname),
            ..base
        },
        Status::Failed(hint) if hint == "expiredTransaction" || hint == "startFailed" => {
            return HttpResponse::NotFound().finish();
        }
        Status::Failed(hint) => {
            let error = match hint.as_str() {
                "userCancel" | "cancelled" | "userDeclinedCall" => "CANCELLED",
                "certificateErr" => "INVALID_ID",
                "notSupportedByUserApp" => "UNSUPPORTED_CLIENT",
                _ => "AUTH_FAILED",
            };
            IdkollenAuth { status: "FAILED".into(), error: Some(error.into()), ..base }
        }
    };
    HttpResponse::Ok().json(body)
}

pub async fn broker_cancel(
    state: State,
    account: web::Data<BrokerAccount>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if !authorised(&req, &account) {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": "UNAUTHORIZED" }));
    }
    match state.cancel(&id) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(_) => HttpResponse::NotFound().finish(),
    }
}
