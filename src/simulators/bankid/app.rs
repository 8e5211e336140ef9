//! The simulated BankID app: a web page where a demo user picks an identity, scans (pastes) a QR
//! payload or follows an autostart link, and approves or cancels.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{SimState, Status};

#[derive(Template)]
#[template(path = "simulators/bankid_app.html")]
struct AppPage {
    error: Option<String>,
    order: Option<OrderView>,
    autostart: Option<String>,
    identities: Vec<(String, String)>,
    waiting: Vec<(String, String)>,
    /// Phone orders: (order ref, label, personal number called).
    calls: Vec<(String, String, String)>,
}

struct OrderView {
    order_ref: String,
    status_text: String,
    visible_text: String,
    holder: Option<String>,
    waiting: bool,
    /// Where the app sends the user back to, when it does.
    return_to: Option<String>,
}

type State = web::Data<Arc<SimState>>;

fn page(state: &SimState, error: Option<String>, order: Option<OrderView>, autostart: Option<String>) -> HttpResponse {
    let identities = state
        .identities()
        .into_iter()
        .map(|i| {
            let label = format!("{} ({}){}", i.name(), i.personal_number, if i.blocked { " – spärrat" } else { "" });
            (i.personal_number, label)
        })
        .collect();
    let now = state.now();
    let waiting = state
        .awaiting_scan()
        .into_iter()
        .map(|o| (o.order_ref.clone(), format!("Startad för {} s sedan från {}", now - o.created_at, o.end_user_ip)))
        .collect();
    let calls = state
        .identities()
        .into_iter()
        .flat_map(|i| {
            state.phone_orders_for(&i.personal_number).into_iter().filter(|o| o.started_at.is_none()).map(move |o| {
                let label = format!("{} ({}) blir uppringd", i.name(), i.personal_number);
                (o.order_ref, label, i.personal_number.clone())
            })
        })
        .collect();
    let body =
        AppPage { error, order, autostart, identities, waiting, calls }.render().unwrap_or_else(|e| e.to_string());
    let status = if body.contains("id=\"app-error\"") { 400 } else { 200 };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[derive(Deserialize)]
pub struct Home {
    autostarttoken: Option<String>,
}

pub async fn home(state: State, q: web::Query<Home>) -> HttpResponse {
    page(&state, None, None, q.autostarttoken.clone())
}

#[derive(Deserialize)]
pub struct ScanForm {
    identity: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    order_ref: String,
}

fn to_order(state: &SimState, order_ref: &str) -> HttpResponse {
    match order_view(state, order_ref) {
        Some(view) => page(state, None, Some(view), None),
        None => page(state, Some("Ordern finns inte.".into()), None, None),
    }
}

fn order_view(state: &SimState, order_ref: &str) -> Option<OrderView> {
    let o = state.order(order_ref)?;
    let (text, waiting) = match &o.status {
        Status::Pending("userCallConfirm") => ("Bekräfta att du pratar med den som ringde".to_string(), true),
        Status::Pending(_) if o.holder.is_some() => ("Legitimera dig".to_string(), true),
        Status::Pending(_) => ("Väntar".to_string(), false),
        Status::Complete(_) => ("Klart! Du är legitimerad. Gå tillbaka till tjänsten.".to_string(), false),
        Status::Failed(h) => (format!("Avbruten ({h})"), false),
    };
    Some(OrderView {
        order_ref: o.order_ref.clone(),
        status_text: text,
        visible_text: o.visible_text.clone(),
        holder: o.holder.as_ref().map(|h| h.name()),
        waiting,
        return_to: state.return_to(order_ref),
    })
}

/// Reads a pasted payload, or (the camera) the current frame of a waiting order's QR code.
pub async fn scan(state: State, form: web::Form<ScanForm>) -> HttpResponse {
    let payload = if form.payload.trim().is_empty() {
        state.current_qr_payload(&form.order_ref).unwrap_or_default()
    } else {
        form.payload.clone()
    };
    match state.scan(&payload, &form.identity) {
        Ok(order_ref) => to_order(&state, &order_ref),
        Err(e) => page(&state, Some(e.to_string()), None, None),
    }
}

#[derive(Deserialize)]
pub struct AutostartForm {
    identity: String,
    token: String,
}

pub async fn autostart(state: State, form: web::Form<AutostartForm>) -> HttpResponse {
    match state.open_autostart(&form.token, &form.identity) {
        Ok(order_ref) => to_order(&state, &order_ref),
        Err(e) => page(&state, Some(e.to_string()), None, Some(form.token.clone())),
    }
}

pub async fn show(state: State, order_ref: web::Path<String>) -> HttpResponse {
    to_order(&state, &order_ref)
}

pub async fn approve(state: State, order_ref: web::Path<String>) -> HttpResponse {
    match state.approve(&order_ref) {
        Ok(()) => to_order(&state, &order_ref),
        Err(e) => page(&state, Some(e.to_string()), order_view(&state, &order_ref), None),
    }
}

pub async fn cancel(state: State, order_ref: web::Path<String>) -> HttpResponse {
    match state.user_cancel(&order_ref) {
        Ok(()) => to_order(&state, &order_ref),
        Err(e) => page(&state, Some(e.to_string()), order_view(&state, &order_ref), None),
    }
}

#[derive(Deserialize)]
pub struct PhoneForm {
    identity: String,
}

/// The called person opens the phone order in the app.
pub async fn answer_phone(state: State, order_ref: web::Path<String>, form: web::Form<PhoneForm>) -> HttpResponse {
    match state.answer_phone(&order_ref, &form.identity) {
        Ok(order_ref) => to_order(&state, &order_ref),
        Err(e) => page(&state, Some(e.to_string()), None, None),
    }
}
