//! An SMS gateway simulator: the 46elks and Twilio APIs (with their Basic authentication) and a
//! JSON webhook, on loopback over HTTP. It records every message, and shows them on a "simulated
//! phone" page for the demo.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use askama::Template;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, Random, SystemClock, format_utc};

/// A message the simulator received.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    /// `46elks`, `twilio` or `webhook`.
    pub api: String,
    pub to: String,
    pub from: String,
    pub text: String,
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsFault {
    /// HTTP 500.
    ServerError,
    /// Answer after this long.
    Slow(Duration),
}

/// The credentials the simulated gateways accept.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub elks_username: String,
    pub elks_password: String,
    pub twilio_sid: String,
    pub twilio_token: String,
    pub webhook_token: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            elks_username: "stjarna-demo".into(),
            elks_password: "simulated-secret".into(),
            twilio_sid: "ACsimulated".into(),
            twilio_token: "simulated-token".into(),
            webhook_token: "simulated-token".into(),
        }
    }
}

pub struct SmsState {
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    messages: Mutex<Vec<Message>>,
    faults: Mutex<VecDeque<SmsFault>>,
    pub credentials: Credentials,
}

impl SmsState {
    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().expect("lock").clone()
    }

    pub fn messages_to(&self, e164: &str) -> Vec<Message> {
        self.messages().into_iter().filter(|m| m.to == e164).collect()
    }

    /// The last 6-digit code sent to the number, as a person would read it off the phone.
    pub fn last_code_to(&self, e164: &str) -> Option<String> {
        self.messages_to(e164)
            .last()
            .and_then(|m| m.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_string))
    }

    /// The next `times` messages fail with `fault`.
    pub fn inject(&self, fault: SmsFault, times: usize) {
        let mut faults = self.faults.lock().expect("lock");
        faults.extend(std::iter::repeat_n(fault, times));
    }

    fn record(&self, api: &str, to: &str, from: &str, text: &str) -> Message {
        let message = Message {
            id: format!("s{}", &self.random.token()[..16]),
            api: api.into(),
            to: to.into(),
            from: from.into(),
            text: text.into(),
            at: format_utc(self.clock.now()),
        };
        self.messages.lock().expect("lock").push(message.clone());
        message
    }
}

type State = web::Data<Arc<SmsState>>;

fn basic_ok(req: &HttpRequest, user: &str, password: &str) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v == expected)
}

async fn fault(state: &SmsState) -> Option<HttpResponse> {
    let next = state.faults.lock().expect("lock").pop_front();
    match next? {
        // Real gateways quote the request in their errors; the portal must keep none of it.
        SmsFault::ServerError => {
            Some(HttpResponse::InternalServerError().body("simulated gateway failure for recipient +46701234567"))
        }
        SmsFault::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

fn e164_ok(to: &str) -> bool {
    to.len() > 5 && to.starts_with('+') && to[1..].chars().all(|c| c.is_ascii_digit())
}

fn sender_ok(from: &str) -> bool {
    e164_ok(from) || (!from.is_empty() && from.len() <= 11 && from.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[derive(Deserialize)]
struct ElksForm {
    to: String,
    from: String,
    message: String,
}

/// 46elks `POST /a1/sms`.
async fn elks(state: State, req: HttpRequest, form: web::Form<ElksForm>) -> HttpResponse {
    let c = &state.credentials;
    if !basic_ok(&req, &c.elks_username, &c.elks_password) {
        return HttpResponse::Unauthorized().body("Missing or wrong API credentials");
    }
    if let Some(res) = fault(&state).await {
        return res;
    }
    if !e164_ok(&form.to) || !sender_ok(&form.from) || form.message.is_empty() {
        return HttpResponse::BadRequest().body("Invalid to, from or message");
    }
    let m = state.record("46elks", &form.to, &form.from, &form.message);
    HttpResponse::Ok().json(serde_json::json!({
        "id": m.id, "status": "created", "direction": "outgoing", "from": m.from, "to": m.to,
        "message": m.text, "created": m.at, "cost": 3500, "estimated_cost": 3500, "parts": 1
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TwilioForm {
    to: String,
    from: String,
    body: String,
}

/// Twilio `POST /2010-04-01/Accounts/{sid}/Messages.json`.
async fn twilio(state: State, req: HttpRequest, sid: web::Path<String>, form: web::Form<TwilioForm>) -> HttpResponse {
    let c = &state.credentials;
    if *sid != c.twilio_sid || !basic_ok(&req, &c.twilio_sid, &c.twilio_token) {
        return HttpResponse::Unauthorized()
            .json(serde_json::json!({ "code": 20003, "message": "Authenticate", "status": 401 }));
    }
    if let Some(res) = fault(&state).await {
        return res;
    }
    if !e164_ok(&form.to) || !sender_ok(&form.from) || form.body.is_empty() {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({ "code": 21211, "message": "Invalid 'To' Phone Number", "status": 400 }));
    }
    let m = state.record("twilio", &form.to, &form.from, &form.body);
    HttpResponse::Created().json(serde_json::json!({
        "sid": format!("SM{}", m.id), "account_sid": c.twilio_sid, "status": "queued", "direction": "outbound-api",
        "to": m.to, "from": m.from, "body": m.text, "num_segments": "1"
    }))
}

#[derive(Deserialize)]
struct WebhookBody {
    to: String,
    from: String,
    message: String,
}

/// The generic JSON webhook.
async fn webhook(state: State, req: HttpRequest, body: web::Json<WebhookBody>) -> HttpResponse {
    let expected = format!("Bearer {}", state.credentials.webhook_token);
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return HttpResponse::Unauthorized().finish();
    }
    if let Some(res) = fault(&state).await {
        return res;
    }
    if !e164_ok(&body.to) || body.message.is_empty() {
        return HttpResponse::BadRequest().finish();
    }
    let m = state.record("webhook", &body.to, &body.from, &body.message);
    HttpResponse::Ok().json(serde_json::json!({ "id": m.id }))
}

#[derive(Template)]
#[template(path = "simulators/phone.html")]
struct PhonePage {
    to: Option<String>,
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct PhoneQuery {
    to: Option<String>,
}

/// The simulated phone: the messages received, newest first.
async fn phone(state: State, q: web::Query<PhoneQuery>) -> HttpResponse {
    let mut messages = match &q.to {
        Some(to) => state.messages_to(to.trim()),
        None => state.messages(),
    };
    messages.reverse();
    let body = PhonePage { to: q.to.clone(), messages }.render().unwrap_or_else(|e| e.to_string());
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

async fn messages(state: State) -> HttpResponse {
    HttpResponse::Ok().json(state.messages())
}

pub struct SmsSimulator {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub state: Arc<SmsState>,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SmsSimulator {
    pub async fn start(
        listen: &str,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(SmsState {
            clock,
            random,
            messages: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            credentials,
        });
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/a1/sms", web::post().to(elks))
                .route("/2010-04-01/Accounts/{sid}/Messages.json", web::post().to(twilio))
                .route("/webhook", web::post().to(webhook))
                .route("/phone", web::get().to(phone))
                .route("/messages.json", web::get().to(messages))
        })
        .workers(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Self { url: format!("http://127.0.0.1:{port}"), state, handle, task })
    }

    pub async fn start_default(listen: &str) -> std::io::Result<Self> {
        Self::start(listen, Credentials::default(), Arc::new(SystemClock), Arc::new(crate::clock::OsRandom)).await
    }

    pub async fn run_until_stopped(self) {
        let _ = self.task.await;
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}
