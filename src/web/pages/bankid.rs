//! BankID in the browser: start an order (enrol, log in, verify), show the animated QR code and
//! the status, open the app on this device, cancel, and finish.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{html, layout, see_other};
use crate::enrolment::{Change, ServiceKind};
use crate::identity::PersonalNumber;
use crate::identity::bankid::{
    Back, BankIdFlows, FlowError, FlowPurpose, FlowState, FlowUser, FlowView, Start, launch_url, markdown_escape,
};
use crate::login::LoginError;
use crate::web::context::{AppState, csrf_seed, request_id, request_lang};
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::BankIdView;
use crate::web::{Notice, Page, WebError};

/// A form with nothing but the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl CsrfField for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn flows(page: &Page) -> Result<&BankIdFlows, WebError> {
    page.state.bankid.as_deref().ok_or_else(|| page.not_found())
}

/// What the BankID app shows (simpleMarkdownV1): the action, and the account it is for; for an
/// order started in a browser, that it is to be approved only by whoever just started it there (a
/// victim shown a relayed code or link reads it before approving).
pub fn visible_text(page: &Page, purpose: FlowPurpose, account: Option<&str>) -> String {
    let key = match (purpose, account) {
        (FlowPurpose::Enrol | FlowPurpose::Replace, _) => "bankid.visible.enrol",
        (FlowPurpose::Login, _) => "bankid.visible.login",
        (FlowPurpose::Verify, _) => "bankid.visible.verify",
        (FlowPurpose::Reset | FlowPurpose::ResetStep, _) => "bankid.visible.reset",
        (FlowPurpose::Caller, _) => "bankid.visible.caller",
    };
    let portal = markdown_escape(&page.state.settings.portal.name);
    let account = markdown_escape(account.unwrap_or_default());
    let what = page.i18n().f(key, &[("portal", &portal), ("account", &account)]);
    if purpose == FlowPurpose::Caller {
        // Asked for by the service desk on the phone: its own text says so.
        return what;
    }
    let site = markdown_escape(&page.state.site);
    format!("{what}\n\n{}", page.i18n().f("bankid.visible.only_you", &[("site", &site)]))
}

/// An account as the user knows it from Windows: `EXAMPLE\anna`.
pub fn domain_account(page: &Page, account_name: &str) -> String {
    format!("{}\\{account_name}", page.state.settings.directory.netbios_domain)
}

fn title_key(purpose: FlowPurpose) -> &'static str {
    match purpose {
        FlowPurpose::Enrol | FlowPurpose::Replace => "bankid.title.enrol",
        FlowPurpose::Login => "bankid.title.login",
        FlowPurpose::Verify => "bankid.title.verify",
        FlowPurpose::Reset | FlowPurpose::ResetStep => "bankid.title.reset",
        FlowPurpose::Caller => "bankid.title.verify",
    }
}

/// Ends the flow before it started: back to the page it began on, with a message (and a
/// reference for our faults). Post/redirect/get, so a reload starts no second order.
fn refusal(
    page: &Page,
    purpose: FlowPurpose,
    message_key: &'static str,
    reference: bool,
) -> Result<HttpResponse, WebError> {
    let back = if purpose == FlowPurpose::Login { "/login" } else { "/" };
    let mut notice = Notice::error(message_key);
    if reference {
        notice = notice.reference(&page.meta.request_id);
    }
    Ok(page.redirect_with(back, &notice))
}

async fn start(page: &Page, purpose: FlowPurpose) -> Result<HttpResponse, WebError> {
    let flows = flows(page)?;
    let binding = page.binding();
    let session = page.session();
    if purpose != FlowPurpose::Login && session.is_none() {
        return Ok(super::log_in_again(page));
    }
    let change = match purpose {
        FlowPurpose::Enrol => Some(Change::Add(ServiceKind::BankId)),
        FlowPurpose::Replace => Some(Change::Replace(ServiceKind::BankId)),
        _ => None,
    };
    if let (Some(s), Some(change)) = (session, change) {
        let decision = page
            .state
            .enrolments
            .authorise_audited(&s.step_up, super::enrol::owner(s), change, &page.meta)
            .await
            .map_err(|e| page.fail(e))?;
        if let Err(refusal) = decision {
            return Ok(super::enrol::refused(page, &refusal));
        }
    }
    let mut required = None;
    if let (Some(s), Some(_)) = (session, change)
        && let Some(attr) = page.state.settings.bankid.as_ref().and_then(|b| b.personal_number_attribute.as_deref())
    {
        let value = match page.state.enrolments.ad_value(&s.user.user_dn, attr).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(reference = %page.meta.request_id, error = %e, "reading the personal number from AD");
                return refusal(page, purpose, "login.error.directory_down", true);
            }
        };
        match value.and_then(|v| PersonalNumber::parse(&v, flows.today()).ok()) {
            Some(pn) => required = Some(pn),
            None => {
                let event =
                    crate::audit::AuditEvent::new(crate::audit::EventKind::Enrol, crate::audit::Outcome::Failure)
                        .username(&s.user.account_name)
                        .user_id(&s.user.user_id)
                        .detail(crate::audit::Detail::new("no_personal_number").arg("attribute", attr));
                page.state.auditor.record(&page.meta, event).await.map_err(|e| page.fail(e))?;
                return refusal(page, purpose, "bankid.no_personal_number", false);
            }
        }
    }
    let user = session.map(|s| FlowUser {
        user_id: &s.user.user_id,
        account_name: &s.user.account_name,
        password_set: s.user.password_set.as_deref(),
    });
    let order = Start { purpose, user, required: required.as_ref(), context: None };
    let account = session.map(|s| domain_account(page, &s.user.account_name));
    match flows.start(order, binding, visible_text(page, purpose, account.as_deref()), &page.meta).await {
        Ok(flow) => Ok(see_other(&format!("/bankid/{}", flow.id)).finish()),
        Err(FlowError::BankId(e)) => {
            tracing::warn!(reference = %page.meta.request_id, error = %e, "BankID order refused");
            refusal(page, purpose, crate::identity::bankid::error_key(&e), true)
        }
        Err(FlowError::TooManyOrders { minutes }) => {
            let back = if purpose == FlowPurpose::Login { "/login" } else { "/" };
            Ok(page.redirect_with(back, &Notice::error("bankid.too_many_orders").arg("minutes", minutes)))
        }
        Err(e) => Err(page.fail(e)),
    }
}

pub async fn start_enrol(page: Page, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    start(&page, FlowPurpose::Enrol).await
}

pub async fn start_replace(page: Page, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    start(&page, FlowPurpose::Replace).await
}

pub async fn start_verify(page: Page, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    start(&page, FlowPurpose::Verify).await
}

pub async fn start_login(page: Page, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    if let Some(notice) = super::reset::too_many_starts(&page).await? {
        return Ok(page.redirect_with("/login", &notice));
    }
    start(&page, FlowPurpose::Login).await
}

/// Whether this request's session may follow a flow for `purpose` and `user_id` (its browser
/// binding checked apart): logins and resets have no session; the rest are the session user's.
fn may_follow(page: &Page, purpose: FlowPurpose, user_id: Option<&String>) -> bool {
    let anonymous = matches!(purpose, FlowPurpose::Login | FlowPurpose::Reset | FlowPurpose::ResetStep);
    anonymous || page.session().map(|s| &s.user.user_id) == user_id
}

/// The flow, if this browser (and, except for logins, this user) started it.
async fn poll(page: &Page, id: &str) -> Result<FlowView, WebError> {
    let flows = flows(page)?;
    let binding = page.binding();
    let not_found = || page.not_found();
    // Who asks is checked before anything is collected, so that no order completes for a browser
    // without the session it is for. Logins and resets have no session: the browser binding is
    // the check (a reset's user is never revealed).
    let (purpose, user_id, pending) =
        flows.about(id, binding).await.map_err(|e| page.fail(e))?.ok_or_else(not_found)?;
    if !may_follow(page, purpose, user_id.as_ref()) {
        return Err(not_found());
    }
    let session = page.session();
    // An enrolment or a replacement completes only while this session may still make it (the
    // user's enrolment may have changed since the order started).
    let change = match purpose {
        FlowPurpose::Enrol => Some(Change::Add(ServiceKind::BankId)),
        FlowPurpose::Replace => Some(Change::Replace(ServiceKind::BankId)),
        _ => None,
    };
    if let (true, Some(change), Some(s)) = (pending, change, session) {
        let owner = super::enrol::owner(s);
        let decision = page
            .state
            .enrolments
            .authorise_audited(&s.step_up, owner, change, &page.meta)
            .await
            .map_err(|e| page.fail(e))?;
        if decision.is_err() {
            flows.cancel(id, binding, &page.meta).await.map_err(|e| page.fail(e))?;
        }
    }
    let keep = page.stored_session_id();
    flows.poll(id, binding, keep.as_deref(), &page.meta).await.map_err(|e| page.fail(e))?.ok_or_else(not_found)
}

fn state_id(state: &FlowState) -> &'static str {
    match state {
        FlowState::Pending => "pending",
        FlowState::Complete => "complete",
        FlowState::Failed => "failed",
        FlowState::Cancelled => "cancelled",
    }
}

/// A finished enrolment, replacement or verification proves BankID to the session, once.
async fn take_proof(page: &Page, view: &FlowView) -> Result<(), WebError> {
    let proves = matches!(view.purpose, FlowPurpose::Enrol | FlowPurpose::Replace | FlowPurpose::Verify);
    let (true, FlowState::Complete, Some(session)) = (proves, &view.state, page.session()) else { return Ok(()) };
    let binding = page.binding();
    let taken = flows(page)?.take_proof(&view.id, binding, &session.user.user_id).await.map_err(|e| page.fail(e))?;
    if let Some(at) = taken {
        super::enrol::proved(page, ServiceKind::BankId, at).await?;
    }
    Ok(())
}

pub async fn show(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let view = poll(&page, &id).await?;
    take_proof(&page, &view).await?;
    if view.purpose == FlowPurpose::Login && view.state == FlowState::Complete {
        return finish_login(&page, &view).await;
    }
    if view.purpose == FlowPurpose::Reset && view.state == FlowState::Complete {
        return start_reset(&page, &view).await;
    }
    let qr_time = match (&view.state, view.qr) {
        (FlowState::Pending, true) => {
            flows(&page)?.qr_frame(&id, page.binding()).await.map_err(|e| page.fail(e))?.map(|(t, _)| t).unwrap_or(0)
        }
        _ => 0,
    };
    let reset_next = view.context.as_ref().map(|c| format!("/reset/{c}"));
    let (next, next_key) = match (&view.state, view.purpose) {
        (_, FlowPurpose::ResetStep) => (reset_next.as_deref().unwrap_or("/reset"), "bankid.continue"),
        (_, FlowPurpose::Reset) => ("/reset", "bankid.try_again"),
        (FlowState::Complete, _) => ("/", "bankid.continue"),
        (_, FlowPurpose::Login) => ("/login", "bankid.try_again"),
        _ => ("/", "bankid.try_again"),
    };
    let bankid_view = BankIdView {
        l: layout(&page, "/"),
        js: page.state.assets.url("bankid.js"),
        id: &view.id,
        title_key: title_key(view.purpose),
        message_key: view.message_key,
        state: state_id(&view.state),
        pending: view.state == FlowState::Pending,
        open_here: !view.returning,
        qr: view.qr,
        qr_time,
        new_tab: page.state.settings.bankid.as_ref().is_some_and(|b| b.launch_url.is_some()),
        next,
        next_key,
        reference: None,
    };
    html(&page, bankid_view)
}

/// A completed BankID login becomes a session, once.
async fn finish_login(page: &Page, view: &FlowView) -> Result<HttpResponse, WebError> {
    let flows = flows(page)?;
    let binding = page.binding();
    let Some((user_id, _)) = flows.take_login(&view.id, binding).await.map_err(|e| page.fail(e))? else {
        return Ok(see_other("/").finish());
    };
    // A BankID enrolled a short while ago (perhaps by someone with a stolen password) is no way in yet.
    if page.state.enrolments.is_cooling(&user_id, ServiceKind::BankId).await.map_err(|e| page.fail(e))? {
        return refusal(page, FlowPurpose::Login, "bankid.login_cooling", false);
    }
    let user = match page.state.login.login_verified(&user_id, "bankid", &page.meta).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return refusal(page, FlowPurpose::Login, "bankid.account_unavailable", false);
        }
        Err(LoginError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "BankID login: directory unavailable");
            return refusal(page, FlowPurpose::Login, "login.error.directory_down", true);
        }
        Err(LoginError::Storage(e)) => return Err(page.fail(e)),
    };
    super::login::start_session(page, user, crate::session::LoggedInWith::Service).await
}

/// A completed BankID reset start becomes a reset flow, once, already verified with BankID.
async fn start_reset(page: &Page, view: &FlowView) -> Result<HttpResponse, WebError> {
    let flows = flows(page)?;
    let binding = page.binding();
    let Some((user_id, proved_at)) = flows.take_login(&view.id, binding).await.map_err(|e| page.fail(e))? else {
        return Ok(see_other("/reset").finish());
    };
    let bankid = crate::enrolment::ServiceKind::BankId;
    let reset = page.state.reset.start_identified(&user_id, bankid, proved_at, binding, &page.meta).await;
    match reset {
        Ok(id) => Ok(see_other(&format!("/reset/{id}")).finish()),
        Err(crate::reset::ResetError::Storage(e)) => Err(page.fail(e)),
        Err(crate::reset::ResetError::Directory(e)) => Err(page.fail(e)),
    }
}

#[derive(Serialize)]
struct Status<'a> {
    state: &'static str,
    message: &'a str,
    qr: bool,
}

pub async fn status(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let view = poll(&page, &id).await?;
    take_proof(&page, &view).await?;
    let body = Status { state: state_id(&view.state), message: page.i18n().t(view.message_key), qr: view.qr };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

/// One frame of the animated QR code. Fetched every second while the user looks at the code, so it
/// reads no session: the browser binding (the CSRF cookie the flow was started with) is the check.
pub async fn qr(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let lang = request_lang(&req, state.default_lang);
    let not_found = || WebError::not_found(lang, &request_id(&req));
    let flows = state.bankid.as_deref().ok_or_else(not_found)?;
    let binding = csrf_seed(&req).unwrap_or_default();
    let frame =
        flows.qr_frame(&id, &binding).await.map_err(|e| WebError::internal(e.into(), lang, &request_id(&req)))?;
    let Some((_, svg)) = frame else {
        return Err(not_found());
    };
    Ok(HttpResponse::Ok().content_type("image/svg+xml").insert_header(("Cache-Control", "no-store")).body(svg))
}

/// How many seconds of frames a page without JavaScript gets, and how often it reloads.
pub const NO_SCRIPT_SECONDS: u64 = 5;

/// `GET /bankid/{id}/qr-animated.svg`: the QR code for a page without JavaScript, this second's
/// frame and the next ones, each shown for a second.
pub async fn qr_animated(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let lang = request_lang(&req, state.default_lang);
    let not_found = || WebError::not_found(lang, &request_id(&req));
    let flows = state.bankid.as_deref().ok_or_else(not_found)?;
    let binding = csrf_seed(&req).unwrap_or_default();
    let frames = flows
        .qr_frames(&id, &binding, NO_SCRIPT_SECONDS)
        .await
        .map_err(|e| WebError::internal(e.into(), lang, &request_id(&req)))?;
    let Some((_, frames)) = frames else {
        return Err(not_found());
    };
    let svg = crate::identity::bankid::qr_animation_svg(&frames);
    Ok(HttpResponse::Ok().content_type("image/svg+xml").insert_header(("Cache-Control", "no-store")).body(svg))
}

/// "Open BankID on this device": remember the mode (for the right messages), then start the app.
pub async fn open(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let view = poll(&page, &id).await?;
    let flows = flows(&page)?;
    let binding = page.binding();
    let token = flows.autostart(&view.id, binding).await.map_err(|e| page.fail(e))?.unwrap_or_default();
    let template = page.state.settings.bankid.as_ref().and_then(|b| b.launch_url.as_deref());
    Ok(see_other(&launch_url(&token, &page.meta.user_agent, template)).finish())
}

#[derive(Deserialize)]
pub struct BackQuery {
    #[serde(default)]
    n: String,
}

/// `GET /bankid/{id}/back?n=…`: where the app sends the user after an order opened on this device.
/// In the browser that started it, the page goes on; in another, it says to go back there (and
/// what to do if the user did not start this: a relayed link).
pub async fn back(page: Page, id: web::Path<String>, q: web::Query<BackQuery>) -> Result<HttpResponse, WebError> {
    let flows = flows(&page)?;
    match flows.came_back(&id, &q.n, page.binding(), &page.meta).await.map_err(|e| page.fail(e))? {
        // `id` is a flow's own (it was found): safe in the address.
        Back::Here => Ok(see_other(&format!("/bankid/{id}")).finish()),
        Back::OtherBrowser => refusal(&page, FlowPurpose::Login, "bankid.return_other_browser", false),
        Back::Unknown => Err(page.not_found()),
    }
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
    /// "1" from the page's `pagehide` (bankid.js): the page was left, perhaps only for a reload.
    #[serde(default)]
    left: String,
}

impl CsrfField for CancelForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// "Cancel" on the page, or the page left (then the order is cancelled unless the page comes back).
pub async fn cancel(page: Page, id: web::Path<String>, form: CsrfForm<CancelForm>) -> Result<HttpResponse, WebError> {
    if form.0.left == "1" {
        // The same answer whatever the flow: the beacon reads nothing back.
        let flows = page.state.bankid.as_ref().ok_or_else(|| page.not_found())?;
        let binding = page.binding();
        let about = flows.about(&id, binding).await.map_err(|e| page.fail(e))?;
        if let Some((purpose, user_id, true)) = about
            && may_follow(&page, purpose, user_id.as_ref())
        {
            flows.leave(&id, binding, &page.meta).await.map_err(|e| page.fail(e))?;
        }
        return Ok(HttpResponse::NoContent().finish());
    }
    let view = poll(&page, &id).await?;
    let binding = page.binding();
    flows(&page)?.cancel(&view.id, binding, &page.meta).await.map_err(|e| page.fail(e))?;
    let back = match (view.purpose, view.context.as_deref()) {
        (FlowPurpose::Login, _) => "/login".to_string(),
        (FlowPurpose::ResetStep, Some(reset)) => format!("/reset/{reset}"),
        (FlowPurpose::Reset, _) => "/reset".to_string(),
        _ => "/".to_string(),
    };
    Ok(see_other(&back).finish())
}
